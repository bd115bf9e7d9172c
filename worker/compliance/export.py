"""Hand-over of chosen recordings for an auditor or a court (``recarchive export``).

What lands in ``--out`` mirrors the store's own layout, keys relative to the storage prefix::

    {provider}/{account}/YYYY/MM/DD/{id}/original.wav, rendition.mp3, metadata.json, r2/...
    _manifests/{account}/{YYYY-MM-DD}.jsonl     each closed manifest holding the recordings' lines
    _manifests/{account}/pending/...json        the pending entry of a recording whose day is not closed
    _manifests/{account}/chain.jsonl            one line per closed manifest from the earliest exported
                                                day to the newest: name, SHA-256, prev, prev_sha256
    export.json                                 what was exported, from where, when, the chain head
    MANIFEST.sha256                             ``sha256sum -c`` format, every file above

Every byte is streamed from the store to the file through SHA-256 (never held whole) and compared on
the way out: each object with its ``metadata.json`` and with the ``sha256`` user metadata the store
keeps beside it; each ``metadata.json`` and object with its manifest line; each closed manifest with the
``prev_sha256`` the next day's manifest names. A mismatch is a problem (exit 1); the file is still
written, so what the store holds can be examined, and ``MANIFEST.sha256`` always lists what was
actually written.

Why the chain summary rather than every later manifest: a manifest is proven unaltered by the next
day's ``prev_sha256``, and that one by the next, up to the head ``verify --manifests`` reports. The
summary carries those links, each re-checked here by hashing the stored manifests as they stream by;
copying every later manifest in full would make the hand-over of one old call as large as the
archive's manifests since then.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from config.units import utc_stamp
from storage.base import Storage
from storage.keys import manifest_key
from worker.compliance._manifest_layout import DAY_FILE, root
from worker.compliance.describe import recorded_hash_agrees
from worker.compliance.lookup import (
    AuditAccount,
    Revision,
    closed_head,
    full_folder,
    locate,
    manifest_entry,
    revisions_of,
)
from worker.compliance.walker import objects_of

__all__ = ["EXPORT_SCHEMA", "ExportResult", "Problem", "export_recordings"]

EXPORT_SCHEMA = "recarchive.export/1"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Problem:
    key: str
    problem: str
    expected: str | None = None
    found: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "problem": self.problem, "expected": self.expected, "found": self.found}


@dataclass
class ExportResult:
    out: Path
    account: str
    files: dict[str, tuple[str, int]] = field(default_factory=dict)  # relative path -> (sha256, size)
    recordings: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    chain: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def bytes(self) -> int:
        return sum(size for _sha, size in self.files.values())

    def as_dict(self) -> dict[str, Any]:
        return {"schema": EXPORT_SCHEMA, "ok": self.ok, "out": str(self.out), "account": self.account,
                "files": len(self.files), "bytes": self.bytes, "recordings": self.recordings,
                "chain": self.chain, "problems": [p.as_dict() for p in self.problems]}


class _Writer:
    """Files under ``out``, created exclusively, each hashed as it is written."""

    def __init__(self, out: Path, result: ExportResult) -> None:
        self.out = out
        self.result = result

    def path(self, relative: str) -> Path:
        parts = relative.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"refusing to write {relative!r} outside the export folder")
        target = self.out.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def stream(self, relative: str, chunks: Iterable[bytes]) -> tuple[str, int]:
        digest = hashlib.sha256()
        size = 0
        with open(self.path(relative), "xb") as handle:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                handle.write(chunk)
        self.result.files[relative] = (digest.hexdigest(), size)
        return digest.hexdigest(), size

    def write(self, relative: str, body: bytes) -> tuple[str, int]:
        return self.stream(relative, [body])


def export_recordings(storage: Storage, account: AuditAccount, ids: list[str], out: Path, *,
                      progress: Progress | None = None, now: datetime | None = None) -> ExportResult:
    """Export each id's recording folders (every revision), their manifest lines and chain, then
    ``export.json`` and ``MANIFEST.sha256``. ``out`` must not exist or be an empty folder."""
    tell = progress or (lambda _text: None)
    _prepare(out)
    result = ExportResult(out, account.name)
    writer = _Writer(out, result)
    head = closed_head(storage, account.name)
    manifest_days: dict[date, set[str]] = {}
    for recording_id in ids:
        tell(f"finding {recording_id}")
        try:
            located = locate(storage, account, recording_id, progress=tell)
        except ValueError as exc:
            result.problems.append(Problem(recording_id, f"not archived: {exc}"))
            continue
        if not located.found:
            result.problems.append(Problem(recording_id, "not archived"))
            result.recordings.append({"recording_id": recording_id, "archived": False})
            continue
        entry: dict[str, Any] = {"recording_id": recording_id, "archived": True, "found_by": located.found_by,
                                 "folders": [full_folder(storage, f) for f in located.folders], "revisions": []}
        for folder in located.folders:
            tell(f"copying {folder}")
            for revision, meta_sha in _copy_folder(storage, writer, folder, result):
                where = manifest_entry(storage, account.name, revision, closed_head=head)
                entry["revisions"].append({"metadata_key": storage.full_key(revision.metadata_key),
                                           "manifest": where.key, "manifest_state": where.state,
                                           "manifest_lines": where.lines})
                _check_lines(storage, revision, meta_sha, where.lines, result)
                if where.state == "closed" and where.key is not None:
                    day = date.fromisoformat(where.key.rsplit("/", 1)[-1][:10])
                    manifest_days.setdefault(day, set()).add(recording_id)
                elif where.state == "pending" and where.key is not None:
                    _copy_small(storage, writer, _relative(storage, where.key), result)
                else:
                    result.problems.append(Problem(storage.full_key(revision.metadata_key),
                                                   "in no manifest (pending or closed)"))
        result.recordings.append(entry)
    if manifest_days:
        tell("checking the manifest chain")
        _export_chain(storage, writer, account.name, sorted(manifest_days), head, result)
    _finish(storage, writer, result, now or datetime.now(UTC))
    return result


def _prepare(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder")
    out.mkdir(parents=True, exist_ok=True)


def _relative(storage: Storage, full_key: str) -> str:
    base = storage.full_key("x")[:-1]
    return full_key[len(base):] if full_key.startswith(base) else full_key


def _copy_folder(storage: Storage, writer: _Writer, folder: str,
                 result: ExportResult) -> list[tuple[Revision, str]]:
    """Every committed revision of the folder, copied and checked; (revision, SHA-256 of its
    ``metadata.json`` as exported) each."""
    revisions, _others = revisions_of(storage, folder)
    out: list[tuple[Revision, str]] = []
    for revision in revisions:
        listed = objects_of(storage, revision.metadata_key, revision.document)
        original_sha = next((obj.sha256 for obj in listed if obj.role == "original"), None)
        meta_sha, _size = writer.stream(revision.metadata_key, storage.iter_bytes(revision.metadata_key))
        _check_recorded(storage, revision.metadata_key, "metadata", meta_sha, original_sha, result)
        for obj in listed:
            try:
                sha, size = writer.stream(obj.key, storage.iter_bytes(obj.key))
            except FileNotFoundError:
                result.problems.append(Problem(obj.full_key, "missing", expected=obj.sha256, found=None))
                continue
            if (sha, size) != (obj.sha256, obj.size):
                result.problems.append(Problem(obj.full_key, "altered", expected=f"{obj.sha256} {obj.size}",
                                               found=f"{sha} {size}"))
            _check_recorded(storage, obj.key, obj.role, obj.sha256, original_sha, result)
        out.append((revision, meta_sha))
    return out


def _check_recorded(storage: Storage, key: str, role: str, sha256: str, original_sha: str | None,
                    result: ExportResult) -> None:
    """The ``sha256`` user metadata the store keeps beside the object, against the expected hash."""
    info = storage.head(key)
    stored = (info.metadata.get("sha256") or None) if info is not None else None
    if not recorded_hash_agrees(role, stored, sha256, original_sha):
        result.problems.append(Problem(storage.full_key(key), "sha256 user metadata differs", expected=sha256,
                                       found=stored))


def _check_lines(storage: Storage, revision: Revision, meta_sha: str, lines: list[dict[str, Any]],
                 result: ExportResult) -> None:
    """Each manifest line against what was just exported (metadata.json by the hash of its bytes)."""
    meta_full = storage.full_key(revision.metadata_key)
    expected = {str(o.get("key")): str(o.get("sha256", "")).lower() for o in revision.document.get("objects", [])
                if isinstance(o, dict)}
    expected[meta_full] = meta_sha
    for line in lines:
        key = str(line.get("key"))
        wanted = expected.get(key)
        if wanted is not None and str(line.get("sha256", "")).lower() != wanted:
            result.problems.append(Problem(key, "differs from its manifest line", expected=str(line.get("sha256")),
                                           found=wanted))


def _copy_small(storage: Storage, writer: _Writer, key: str, result: ExportResult) -> None:
    if key not in result.files:
        writer.stream(key, storage.iter_bytes(key))


def _export_chain(storage: Storage, writer: _Writer, account: str, days: list[date], head: date | None,
                  result: ExportResult) -> None:
    """Copy the manifests holding the lines; hash every closed manifest from the earliest of them to
    the head, streaming, and check each day's ``prev_sha256`` against the day before it."""
    wanted = set(days)
    closed = _closed_days(storage, account, days[0])
    chain_lines: list[str] = []
    previous: tuple[str, str] | None = None
    for day in closed:
        key = manifest_key(account, day)
        name = f"{day:%Y-%m-%d}.jsonl"
        header, sha = _hash_manifest(storage, writer if day in wanted else None, key)
        if previous is not None and (header.get("prev"), header.get("prev_sha256")) != previous:
            result.problems.append(Problem(storage.full_key(key), "manifest chain broken",
                                           expected=f"{previous[0]} {previous[1]}",
                                           found=f"{header.get('prev')} {header.get('prev_sha256')}"))
        if previous is not None and day != date.fromisoformat(previous[0][:10]) + timedelta(days=1):
            result.problems.append(Problem(storage.full_key(key), f"manifest chain gap before {name}"))
        chain_lines.append(json.dumps({"manifest": name, "sha256": sha, "prev": header.get("prev"),
                                       "prev_sha256": header.get("prev_sha256"), "objects": header.get("objects"),
                                       "recordings": header.get("recordings")}, sort_keys=True))
        previous = (name, sha)
    writer.write(f"{root(account)}chain.jsonl", ("\n".join(chain_lines) + "\n").encode())
    result.chain = {"from": f"{days[0]:%Y-%m-%d}.jsonl", "head": previous[0] if previous else None,
                    "head_sha256": previous[1] if previous else None, "manifests": len(closed),
                    "newest_closed_day": f"{head:%Y-%m-%d}" if head else None}


def _closed_days(storage: Storage, account: str, first: date) -> list[date]:
    out: list[date] = []
    for info in storage.list(root(account)):
        match = DAY_FILE.match(info.key[len(root(account)):])
        if match and date.fromisoformat(match.group(1)) >= first:
            out.append(date.fromisoformat(match.group(1)))
    return sorted(out)


def _hash_manifest(storage: Storage, writer: _Writer | None, key: str) -> tuple[dict[str, Any], str]:
    """(header, SHA-256) of a stored manifest, streamed; written to the export when ``writer``."""
    digest = hashlib.sha256()
    first = bytearray()

    def tee(chunks: Iterable[bytes]) -> Iterable[bytes]:
        for chunk in chunks:
            digest.update(chunk)
            if b"\n" not in first and len(first) < 65536:
                first.extend(chunk[:65536])
            yield chunk

    chunks = tee(storage.iter_bytes(key))
    if writer is not None:
        writer.stream(key, chunks)
    else:
        for _chunk in chunks:
            pass
    try:
        header = json.loads(bytes(first).split(b"\n", 1)[0])
    except ValueError:
        header = {}
    return (header if isinstance(header, dict) else {}), digest.hexdigest()


def _finish(storage: Storage, writer: _Writer, result: ExportResult, now: datetime) -> None:
    document = {**result.as_dict(), "exported_at": utc_stamp(now),
                "storage": storage.url}
    document.pop("out")
    writer.write("export.json", (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode())
    lines = [f"{sha}  {path}\n" for path, (sha, _size) in sorted(result.files.items())]
    target = writer.path("MANIFEST.sha256")
    with open(target, "x", encoding="utf-8") as handle:
        handle.writelines(lines)
        handle.flush()
        os.fsync(handle.fileno())
