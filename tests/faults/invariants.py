"""The one invariant checker every fault scenario ends with (CONTRACT §3 and §4, read from outside).

After the final pass of a scenario, against the storage as a user would find it:

- **lost**: a ready recording of the simulator with no base ``metadata.json``;
- **duplicated**: a recording committed twice (two base ``metadata.json``, e.g. under two days), a
  revision folder (``{id}/r2/``) made by a retry (allowed only for recordings the vendor served with
  other bytes, ``reprocessed``: then each revision must hold bytes no other committed original of the
  recording holds), a ``metadata.json`` listing two originals;
- **replaced**: a recording key whose bytes changed between two checks, or — when the bucket is
  versioned — any recording key written more than once (a second version or a delete marker);
- **unlocked** (with ``retention=True``): a committed object without Object Lock retention, or
  without its legal hold when ``legal_hold=True``;
- **no manifest**: a committed recording with neither a pending manifest entry nor a line in a closed
  daily manifest;
- **corrupt**: a stored original whose SHA-256 or size differs from its ``metadata.json``, or a
  ``metadata.json`` whose figures differ from the bytes the simulator serves;
- **orphaned**: an object in a recording folder that the folder's ``metadata.json`` does not list
  (or a folder with no ``metadata.json`` at all), a ``metadata.json`` listing an object that is not
  there, a commit that matches no ready recording, and a parked record left for a recording that is
  archived (an operator would chase a failure that is not one);
- **leaked**: a token of the simulator or a signed-URL query in any stored object (recordings,
  ``_state/``, ``_manifests/``) or in any text handed in (CLI output, worker logs).

One finding is counted for the record, not as a failure: incomplete multipart uploads
(``Report.open_uploads``: a process killed mid-upload cannot abort its own; they are not objects).

Objects already verified are not read again while their ETag and size stay the same, so a scenario
can check after every trial at the cost of what that trial wrote.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from providers.simulator import Simulator
from storage import Storage
from worker.compliance._manifest_layout import DAY_FILE, pending_key
from worker.compliance.walker import parse_iso

__all__ = ["SIGNED_QUERY", "ArchiveChecker", "Report", "leaks_in", "s3_open_uploads", "s3_version_counter"]

#: a signed-URL or credential query parameter with its value (``Signature=***`` is the masked form)
SIGNED_QUERY = re.compile(
    rb"(?i)[?&;](signature|x-amz-signature|x-amz-credential|awsaccesskeyid|auth_token|access_token|token|sig)"
    rb"=(?!\*\*\*)[^&\s\"'<>]{4,}")
#: ``{provider}/{account}/{YYYY}/{MM}/{DD}/{recording_id}/``: six segments
_FOLDER_DEPTH = 6
_REVISION = re.compile(r"^r\d+$")

VersionCounter = Callable[[], Mapping[str, int]]


@dataclass
class Report:
    """What one check found; every list names the keys or ids concerned."""

    recordings: int = 0
    archived: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)
    leaked: list[str] = field(default_factory=list)
    open_uploads: int = 0
    manifest_gaps: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unlocked: list[str] = field(default_factory=list)

    COLUMNS = ("lost", "duplicated", "corrupt", "replaced", "unlocked", "manifest_gaps", "orphaned", "leaked")
    #: how the table names each column
    LABELS = {"manifest_gaps": "no manifest"}

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in self.COLUMNS}

    @property
    def ok(self) -> bool:
        return not any(self.counts().values())

    def describe(self, limit: int = 8) -> str:
        parts = [f"{self.archived}/{self.recordings} archived"]
        for name in self.COLUMNS:
            items = getattr(self, name)
            if items:
                shown = ", ".join(items[:limit]) + (f" … (+{len(items) - limit})" if len(items) > limit else "")
                parts.append(f"{name} {len(items)}: {shown}")
        return "; ".join(parts)


def leaks_in(data: bytes, secrets: Iterable[str]) -> list[str]:
    """What in ``data`` is a secret or a signed query (named by kind, never by value)."""
    found = [f"token of length {len(secret)}" for secret in secrets if secret and secret.encode() in data]
    match = SIGNED_QUERY.search(data)
    if match:
        found.append(f"signed query parameter {match.group(1).decode(errors='replace')}=")
    return found


@dataclass
class _Seen:
    etag: str | None
    size: int
    sha256: str
    leaks: list[str]
    document: dict[str, Any] | None = None


class ArchiveChecker:
    """Checks one archive against one simulator; ``accounts`` maps account name -> vendor."""

    def __init__(self, storage: Storage, sim: Simulator, accounts: Mapping[str, str], *,
                 versions: VersionCounter | None = None, open_uploads: Callable[[], int] | None = None,
                 retention: bool = False, legal_hold: bool = False) -> None:
        self.storage = storage
        self.sim = sim
        self.accounts = dict(accounts)
        self.versions = versions
        self.open_uploads = open_uploads
        self.retention = retention
        self.legal_hold = legal_hold
        self.secrets = list(sim.environ().values())
        self._seen: dict[str, _Seen] = {}
        self._first: dict[str, str] = {}  # key -> SHA-256 of its bytes when first seen
        self._locked: set[str] = set()  # keys seen locked (a lock never goes away)
        self._replaced: list[str] = []  # the current check's ``replaced`` list
        #: (account, recording id) -> every SHA-256 the vendor served for it (reprocessed recordings)
        self.reprocessed: dict[tuple[str, str], set[str]] = {}

    # ----------------------------------------------------------------- reading, cached

    def _read(self, key: str, etag: str | None, size: int, *, parse: bool = False) -> _Seen:
        seen = self._seen.get(key)
        if seen is not None and seen.etag == etag and seen.size == size and etag is not None:
            return seen
        digest = hashlib.sha256()
        leaks: list[str] = []
        body = bytearray()
        tail = b""
        for chunk in self.storage.iter_bytes(key):
            digest.update(chunk)
            window = tail + chunk
            leaks.extend(leak for leak in leaks_in(window, self.secrets) if leak not in leaks)
            tail = window[-256:]
            if parse:
                body += chunk
        document: dict[str, Any] | None = None
        if parse:
            try:
                loaded = json.loads(bytes(body))
                document = loaded if isinstance(loaded, dict) else None
            except ValueError:
                document = None
        seen = _Seen(etag, size, digest.hexdigest(), leaks, document)
        self._seen[key] = seen
        first = self._first.setdefault(key, seen.sha256)
        if first != seen.sha256 and not key.startswith("_"):
            self._replaced.append(f"{key}: bytes changed since an earlier check")
        return seen

    # ----------------------------------------------------------------- the check

    def check(self, texts: Mapping[str, str] | None = None, *, versions: bool = True) -> Report:
        """The invariants now. ``versions=False`` skips the version count (a listing of every version
        of the bucket): a second version never goes away, so the final check still sees it."""
        report = Report()
        self._replaced = report.replaced
        expected = self._expected()
        report.recordings = len(expected)
        listing = {info.key: info for info in self.storage.list("")}
        folders: dict[str, list[str]] = defaultdict(list)
        parked: list[tuple[str, str]] = []
        for key, info in listing.items():
            seen = self._read(key, info.etag, info.size, parse=key.endswith(".json"))
            report.leaked.extend(f"{key}: {leak}" for leak in seen.leaks)
            parts = key.split("/")
            if parts[0].startswith("_"):
                if parts[0] == "_state" and len(parts) == 4 and parts[2] == "parked" and seen.document:
                    if seen.document.get("kind", "recording") == "recording":
                        parked.append((parts[1], str(seen.document.get("recording_id"))))
                continue
            if len(parts) <= _FOLDER_DEPTH:
                report.orphaned.append(f"{key}: outside any recording folder")
                continue
            folders["/".join(parts[:_FOLDER_DEPTH])].append("/".join(parts[_FOLDER_DEPTH:]))

        commits: Counter[tuple[str, str]] = Counter()
        for folder, names in sorted(folders.items()):
            base = [name for name in names if "/" not in name]
            self._check_folder(folder, base, listing, expected, commits, report)
            self._check_manifest_entry(folder, base, listing, report)
            self._check_lock(folder, base, listing, report)
            revisions: dict[str, list[str]] = defaultdict(list)
            for name in names:
                if "/" in name:
                    sub, rest = name.split("/", 1)
                    revisions[sub].append(rest)
            self._check_revisions(folder, dict(revisions), listing, report)
        for (account, rid), count in commits.items():
            if count > 1:
                report.duplicated.append(f"{account}/{rid}: committed {count} times")
        committed = set(commits)
        report.archived = len(committed & set(expected))
        report.lost.extend(f"{account}/{rid}" for account, rid in sorted(set(expected) - committed))
        report.orphaned.extend(f"{account}/{rid}: parked although archived"
                               for account, rid in parked if (account, rid) in committed)
        if self.versions is not None and versions:
            for key, count in sorted(self.versions().items()):
                if count > 1 and not key.startswith("_"):
                    report.replaced.append(f"{key}: {count} versions (written more than once)")
        if self.open_uploads is not None:
            report.open_uploads = self.open_uploads()
        for name, text in (texts or {}).items():
            report.leaked.extend(f"{name}: {leak}" for leak in leaks_in(text.encode(), self.secrets))
        return report

    def _check_lock(self, folder: str, names: list[str], listing: Mapping[str, Any], report: Report) -> None:
        """With retention, every object of a committed folder is locked (and held, if asked)."""
        if not self.retention or "metadata.json" not in names:
            return
        for name in names:
            key = f"{folder}/{name}"
            if key in self._locked:
                continue
            info = self.storage.head(key)
            if info is None:
                continue
            if info.retention is None:
                report.unlocked.append(f"{key}: no Object Lock retention")
            elif self.legal_hold and not info.legal_hold:
                report.unlocked.append(f"{key}: no legal hold")
            else:
                self._locked.add(key)

    def _check_revisions(self, folder: str, revisions: Mapping[str, list[str]], listing: Mapping[str, Any],
                         report: Report) -> None:
        """Revision folders: only for recordings served with other bytes, each committed, each with
        bytes the vendor served and no other committed original of the recording holds."""
        if not revisions:
            return
        provider, account = folder.split("/")[:2]
        rid = folder.split("/")[-1]
        allowed = self.reprocessed.get((account, rid))
        base = self._seen.get(f"{folder}/metadata.json")
        shas = [str(o.get("sha256")) for o in ((base.document or {}).get("objects", []) if base else [])
                if isinstance(o, dict) and o.get("role") == "original"]
        for sub, names in sorted(revisions.items()):
            where = f"{folder}/{sub}"
            if allowed is None or not _REVISION.match(sub):
                report.duplicated.append(f"{where}: revision folder (nothing changed at the vendor)")
                continue
            if "metadata.json" not in names:
                report.orphaned.extend(f"{where}/{name}: no metadata.json in its revision folder" for name in names)
                continue
            info = listing[f"{where}/metadata.json"]
            meta = self._read(f"{where}/metadata.json", info.etag, info.size, parse=True).document or {}
            originals = [o for o in meta.get("objects", []) if isinstance(o, dict) and o.get("role") == "original"]
            listed = {"metadata.json"}
            for obj in meta.get("objects", []):
                name = str(obj.get("key", "")).rsplit("/", 1)[-1]
                listed.add(name)
                stored = listing.get(f"{where}/{name}")
                if stored is None:
                    report.orphaned.append(f"{where}/{name}: listed in metadata.json but not stored")
                    continue
                seen = self._read(f"{where}/{name}", stored.etag, stored.size)
                if seen.sha256 != obj.get("sha256") or seen.size != obj.get("size"):
                    report.corrupt.append(f"{where}/{name}: stored bytes differ from metadata.json")
            report.orphaned.extend(f"{where}/{name}: not listed in metadata.json" for name in names if name not in listed)
            if len(originals) != 1 or originals[0].get("sha256") not in allowed:
                report.corrupt.append(f"{where}: revision original is not bytes the vendor served")
            elif originals[0].get("sha256") in shas:
                report.duplicated.append(f"{where}: revision of bytes already committed")
            else:
                shas.append(str(originals[0].get("sha256")))
            self._check_lock(where, names, listing, report)

    def _check_manifest_entry(self, folder: str, names: list[str], listing: Mapping[str, Any],
                              report: Report) -> None:
        meta = self._seen[f"{folder}/metadata.json"].document if "metadata.json" in names else None
        if not meta:
            return
        account = folder.split("/")[1]
        full = self.storage.full_key(f"{folder}/metadata.json")
        archived = parse_iso(meta.get("archived_at"))
        if archived is not None and pending_key(account, archived.astimezone(UTC).date(), full) in listing:
            return
        if any(full in line for line in self._closed_lines(account, listing)):
            return
        report.manifest_gaps.append(f"{folder}: no manifest entry")

    def _closed_lines(self, account: str, listing: Mapping[str, Any]) -> list[str]:
        root = f"_manifests/{account}/"
        lines: list[str] = []
        for key, info in listing.items():
            if key.startswith(root) and DAY_FILE.match(key[len(root):]):
                lines.extend(self.storage.read_bytes(key).decode(errors="replace").splitlines())
        return lines

    def _expected(self) -> dict[tuple[str, str], tuple[str, int]]:
        expected: dict[tuple[str, str], tuple[str, int]] = {}
        for account, vendor in self.accounts.items():
            for rec in self.sim.recordings(vendor):
                if rec.state == "ready":
                    expected[(account, rec.id)] = (rec.sha256, rec.size)
        return expected

    def _check_folder(self, folder: str, names: list[str], listing: Mapping[str, Any],
                      expected: Mapping[tuple[str, str], tuple[str, int]], commits: Counter[tuple[str, str]],
                      report: Report) -> None:
        revisions = sorted({name.split("/", 1)[0] for name in names if _REVISION.match(name.split("/", 1)[0])})
        if revisions:
            report.duplicated.append(f"{folder}: revision folders {', '.join(revisions)} (nothing changed at the vendor)")
        if "metadata.json" not in names:
            report.orphaned.extend(f"{folder}/{name}: no metadata.json in its folder" for name in names)
            return
        meta = self._seen[f"{folder}/metadata.json"].document
        if meta is None:
            report.corrupt.append(f"{folder}/metadata.json: not a JSON object")
            return
        provider, account = folder.split("/")[:2]
        rid = str(meta.get("recording_id"))
        if meta.get("account") != account or meta.get("provider") != provider:
            report.corrupt.append(f"{folder}/metadata.json: names {meta.get('provider')}/{meta.get('account')}")
        commits[(account, rid)] += 1
        listed: set[str] = {"metadata.json"}
        originals = [o for o in meta.get("objects", []) if isinstance(o, dict) and o.get("role") == "original"]
        if len(originals) != 1:
            report.duplicated.append(f"{folder}/metadata.json: {len(originals)} originals")
        for obj in meta.get("objects", []):
            key = str(obj.get("key", ""))
            name = key.rsplit("/", 1)[-1]
            relative = f"{folder}/{name}"
            if not key.endswith(relative):
                report.corrupt.append(f"{folder}/metadata.json: lists {key} outside its folder")
                continue
            listed.add(name)
            info = listing.get(relative)
            if info is None:
                report.orphaned.append(f"{relative}: listed in metadata.json but not stored")
                continue
            seen = self._read(relative, info.etag, info.size)
            if seen.sha256 != obj.get("sha256") or seen.size != obj.get("size"):
                report.corrupt.append(f"{relative}: stored bytes differ from metadata.json")
        for name in names:
            if name not in listed:
                report.orphaned.append(f"{folder}/{name}: not listed in metadata.json")
        want = expected.get((account, rid))
        allowed = self.reprocessed.get((account, rid))
        if want is None:
            report.orphaned.append(f"{folder}: committed, but {account} has no ready recording {rid}")
        elif allowed is not None:
            if originals and originals[0].get("sha256") not in allowed:
                report.corrupt.append(f"{folder}: archived bytes are none the vendor served")
        elif originals and (originals[0].get("sha256"), originals[0].get("size")) != want:
            report.corrupt.append(f"{folder}: archived bytes differ from the vendor's")


def s3_version_counter(client: Any, bucket: str, prefix: str) -> VersionCounter:
    """Versions (and delete markers) per key of a versioned bucket, keys relative to ``prefix``."""
    base = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def count() -> dict[str, int]:
        counts: Counter[str] = Counter()
        for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=base):
            for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                counts[item["Key"][len(base):]] += 1
        return dict(counts)
    return count


def s3_open_uploads(client: Any, bucket: str) -> Callable[[], int]:
    def count() -> int:
        return sum(len(page.get("Uploads", []))
                   for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket))
    return count
