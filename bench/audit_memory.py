"""Memory of the audits over a simulated archive of a million objects (issue 16, item 2).

    .venv/bin/python bench/audit_memory.py                    # 500,000 recordings = 1,000,000 objects
    .venv/bin/python bench/audit_memory.py --recordings 50000 # a quicker check

The archive is a synthetic, read-only ``Storage`` generated on the fly (``SyntheticArchive``): every
listing is produced lazily in key order, every ``metadata.json`` and original is made from its id
when read, with a correct SHA-256. Nothing is held, so what is measured is the audit code alone, not
a store: writing a million objects to a local folder or an S3 server first would take longer than
the audit itself and measure the store's memory too. Each audit runs in a child process of its own
(``--child``), calling the same functions the commands call:

- ``verify``: ``audit_targets`` (the store is walked for accounts the config does not name — here the
  config names none, as an auditor's may) then ``verify_archive``: every ``metadata.json`` read and
  every object re-hashed;
- ``verify-manifests``: the same with ``manifests=True``: the store also holds one hash-chained daily
  manifest per day (two lines per recording), joined with what was verified in a temporary SQLite file;
- ``status``: ``account_status`` (the archived count is a streamed listing of the account);
- ``show``: ``describe_recording`` of the last recording by id alone (no index entry: one HEAD per
  day folder, newest first). Its seconds are mostly the synthetic store building every manifest
  before the recording's day to know the chain's ``prev_sha256``; against a real store ``show``
  makes one listing, at most one HEAD per day and a few small reads.

Each child reports its peak RSS (``ru_maxrss``) and its RSS once the modules are imported, before
the audit. Target: ``verify`` of 1M objects under 200 MB.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage.base import ObjectInfo

PROVIDER, ACCOUNT = "convirza", "acme"
ROOT = f"{PROVIDER}/{ACCOUNT}/"
MANIFESTS = f"_manifests/{ACCOUNT}/"
TARGET_MB = 200
FIRST_DAY = date(2025, 1, 1)


def _original(rid: int) -> bytes:
    return b"RIFF" + rid.to_bytes(8, "big") * 8  # 68 bytes, unique per recording


class SyntheticArchive:
    """A read-only store of ``recordings`` recordings (original.wav + metadata.json each) of one
    account, spread over ``days`` day folders; ids are zero-padded so key order is id order."""

    url = "synthetic://bench"
    enforces_retention = False

    def __init__(self, recordings: int, days: int) -> None:
        self.recordings = recordings
        self.days = days
        self.per_day = -(-recordings // days)
        self._manifest_sha: dict[date, str] = {}

    # -- layout
    def _day_of(self, rid: int) -> date:
        return FIRST_DAY + timedelta(days=rid // self.per_day)

    def _folder(self, rid: int) -> str:
        return f"{ROOT}{self._day_of(rid):%Y/%m/%d}/{rid:09d}/"

    def _parse(self, key: str) -> tuple[int, str] | None:
        parts = key.split("/")
        if len(parts) != 7 or f"{parts[0]}/{parts[1]}/" != ROOT or not parts[5].isdigit():
            return None
        rid = int(parts[5])
        if rid >= self.recordings or self._folder(rid) != "/".join(parts[:6]) + "/":
            return None
        return rid, parts[6]

    def _metadata(self, rid: int) -> bytes:
        original = _original(rid)
        started = datetime.combine(self._day_of(rid), datetime.min.time(), tzinfo=UTC) + timedelta(seconds=rid % 86400)
        document = {
            "schema": "recarchive.recording/1", "provider": PROVIDER, "account": ACCOUNT,
            "recording_id": f"{rid:09d}", "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "vendor_duration_seconds": 1.0, "media": {"container": "wav"},
            "objects": [{"key": self._folder(rid) + "original.wav", "role": "original", "content_type": "audio/wav",
                         "size": len(original), "sha256": hashlib.sha256(original).hexdigest()}],
            "source": {}, "archived_at": self._archived_at(rid), "archiver": {"name": "recarchive", "version": "0"},
        }
        return json.dumps(document, indent=2).encode()

    def _archived_at(self, rid: int) -> str:
        return f"{self._day_of(rid):%Y-%m-%d}T23:00:00Z"

    # -- the daily manifests, hash-chained like the real ones (one per day folder)
    def _manifest_days(self) -> list[date]:
        last = self._day_of(self.recordings - 1)
        return [FIRST_DAY + timedelta(days=n) for n in range((last - FIRST_DAY).days + 1)]

    def _manifest(self, day: date) -> bytes:
        """The day's manifest; the previous one's SHA-256 from a small cache (they are read in order)."""
        from worker.compliance.walker import dumps_line

        previous = day - timedelta(days=1)
        prev_sha = None
        if previous >= FIRST_DAY:
            if previous not in self._manifest_sha:
                self._manifest(previous)
            prev_sha = self._manifest_sha[previous]
        first = (day - FIRST_DAY).days * self.per_day
        lines = []
        for rid in range(first, min(first + self.per_day, self.recordings)):
            common = {"archived_at": self._archived_at(rid), "recording_id": f"{rid:09d}",
                      "started_at": json.loads(self._metadata(rid))["started_at"]}
            meta = self._metadata(rid)
            original = _original(rid)
            lines.append({"key": self._folder(rid) + "metadata.json", "sha256": hashlib.sha256(meta).hexdigest(),
                          "size": len(meta), "role": "metadata", **common})
            lines.append({"key": self._folder(rid) + "original.wav", "sha256": hashlib.sha256(original).hexdigest(),
                          "size": len(original), "role": "original", **common})
        header = {"schema": "recarchive.manifest/1", "account": ACCOUNT, "day": f"{day:%Y-%m-%d}",
                  "prev": f"{previous:%Y-%m-%d}.jsonl" if prev_sha else None, "prev_sha256": prev_sha,
                  "objects": len(lines), "recordings": len(lines) // 2, "closed_at": "2026-11-30T00:00:00Z"}
        body = ("\n".join(dumps_line(x) for x in [header, *lines]) + "\n").encode()
        self._manifest_sha[day] = hashlib.sha256(body).hexdigest()  # one short string per day
        return body

    def _body(self, key: str) -> bytes:
        if key.startswith(MANIFESTS) and key.endswith(".jsonl"):
            try:
                day = date.fromisoformat(key[len(MANIFESTS):-len(".jsonl")])
            except ValueError:
                raise FileNotFoundError(key) from None
            if day not in self._manifest_days():
                raise FileNotFoundError(key)
            return self._manifest(day)
        parsed = self._parse(key)
        if parsed is None:
            raise FileNotFoundError(key)
        rid, name = parsed
        if name == "metadata.json":
            return self._metadata(rid)
        if name == "original.wav":
            return _original(rid)
        raise FileNotFoundError(key)

    # -- the Storage protocol's read side
    def check(self, *, need_object_lock: bool = False, write: bool = True) -> None:
        return None

    def full_key(self, key: str) -> str:
        return key

    def head(self, key: str) -> ObjectInfo | None:
        try:
            return ObjectInfo(key=key, size=len(self._body(key)))
        except FileNotFoundError:
            return None

    def read_bytes(self, key: str) -> bytes:
        return self._body(key)

    def iter_bytes(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        return iter([self._body(key)])

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return (info for info in self._all(prefix) if info.key.startswith(prefix))

    def _all(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object in key order, starting at the first day the prefix can match."""
        first = 0
        if prefix.startswith(ROOT) and len(prefix) >= len(ROOT) + 11:
            try:
                day = datetime.strptime(prefix[len(ROOT):len(ROOT) + 10], "%Y/%m/%d").date()
            except ValueError:
                return
            first = max(0, (day - FIRST_DAY).days * self.per_day)
        elif MANIFESTS.startswith(prefix) or prefix.startswith(MANIFESTS):
            for day in self._manifest_days():  # "_manifests/" sorts before "convirza/"
                key = f"{MANIFESTS}{day:%Y-%m-%d}.jsonl"
                if key.startswith(prefix):
                    yield ObjectInfo(key=key, size=1)
            if prefix:
                return
        if not (ROOT.startswith(prefix) or prefix.startswith(ROOT)):
            return
        for rid in range(first, self.recordings):
            folder = self._folder(rid)
            if folder > prefix and not folder.startswith(prefix) and not prefix.startswith(folder):
                return  # past the prefix: listings are in key order
            yield ObjectInfo(key=folder + "metadata.json", size=600)  # listing sizes are not what verify checks
            yield ObjectInfo(key=folder + "original.wav", size=68)

    def put_stream(self, *args: Any, **kwargs: Any) -> ObjectInfo:
        raise PermissionError("read-only")

    put_file = put_bytes = put_stream

    def delete(self, key: str) -> None:
        raise PermissionError("read-only")

    def set_retention(self, key: str, retention: Any) -> None:
        raise PermissionError("read-only")

    def set_legal_hold(self, key: str, on: bool) -> None:
        raise PermissionError("read-only")

    def close(self) -> None:
        return None


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def _current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(audit: str, recordings: int, days: int) -> dict[str, Any]:
    from config.settings import Settings
    from worker.cli.status import account_status
    from worker.compliance.describe import describe_recording
    from worker.compliance.verify import audit_targets, verify_archive

    store: Any = SyntheticArchive(recordings, days)
    account_table = {"name": ACCOUNT, "provider": PROVIDER, "base_url": "https://api.convirza.com",
                     "token_env": "UNUSED_TOKEN", "start": f"{FIRST_DAY:%Y-%m-%d}T00:00:00Z"}
    settings = Settings.model_validate({"storage": {"url": "file:///nonexistent"}, "accounts": [account_table]})
    nobody = Settings.model_validate({"storage": {"url": "file:///nonexistent"}})
    before = _current_rss_mb()
    started = time.monotonic()
    if audit in ("verify", "verify-manifests"):
        accounts, unconfigured = audit_targets(store, nobody)
        report = verify_archive(store, nobody, accounts, manifests=audit == "verify-manifests")
        outcome = {"recordings": report.recordings, "objects": report.objects, "ok": report.ok,
                   "failures": len(report.failures), "unconfigured": unconfigured}
    elif audit == "status":
        outcome = {"archived": account_status(settings, store, ACCOUNT)["archived"]}
    else:
        shown = describe_recording(store, settings.accounts[0], f"{recordings - 1:09d}")
        outcome = {"archived": shown["archived"], "found_by": shown["found_by"]}
    return {"audit": audit, "seconds": round(time.monotonic() - started, 1), "rss_before_mb": round(before, 1),
            "peak_rss_mb": round(_rss_mb(), 1), **outcome}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recordings", type=int, default=500_000, help="recordings (2 objects each)")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--audits", default="verify,verify-manifests,status,show")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.recordings, args.days)))
        return 0
    rows = []
    for audit in args.audits.split(","):
        proc = subprocess.run([sys.executable, __file__, "--child", audit, "--recordings", str(args.recordings),
                               "--days", str(args.days)], capture_output=True, text=True, check=True)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    objects = args.recordings * 2
    print(f"synthetic archive: {args.recordings:,} recordings, {objects:,} objects, {args.days} day folders")
    print(f"{'audit':<16} {'seconds':>8} {'RSS before':>11} {'peak RSS':>9}  outcome")
    for row in rows:
        extra = {k: v for k, v in row.items() if k not in ("audit", "seconds", "rss_before_mb", "peak_rss_mb")}
        print(f"{row['audit']:<16} {row['seconds']:>8} {row['rss_before_mb']:>9} MB {row['peak_rss_mb']:>6} MB",
              extra)
    verify_rows = [r for r in rows if r["audit"] == "verify"]
    if verify_rows:
        verdict = "met" if verify_rows[0]["peak_rss_mb"] < TARGET_MB else "NOT met"
        print(f"target: verify of {objects:,} objects under {TARGET_MB} MB: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
