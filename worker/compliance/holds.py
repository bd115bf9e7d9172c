"""Legal holds by query: put or lift an Object Lock legal hold on archived recordings.

A legal hold freezes an object until it is lifted, whatever its retention date. ``apply_hold`` finds
the account's archived recordings in storage alone (a hold must work when the vendor has deleted the
call or is unreachable) and sets the hold on every object each one is made of: the original, the
rendition, ``metadata.json``, and the same for every revision (``rN/``). Nothing else is touched:
not orphans of interrupted attempts, not retention (lifting a hold leaves retention running).

By id, the account's folders are listed once for all ids (storage has no index by id); by window,
only the day folders the window covers are listed, and recordings whose ``started_at`` falls in
``[since, until)`` are held.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from config.settings import AccountSettings
from storage.base import Storage
from storage.keys import sanitize_id
from worker.compliance.walker import Folder, folders, load_document, objects_of, parse_iso, window_days
from worker.errors import PermanentError

__all__ = ["HeldRecording", "HoldResult", "apply_hold", "find_archived"]


@dataclass
class HeldRecording:
    recording_id: str
    started_at: str | None
    keys: list[str] = field(default_factory=list)  # full keys the hold was set on

    def as_dict(self) -> dict[str, Any]:
        return {"recording_id": self.recording_id, "started_at": self.started_at, "objects": self.keys}


@dataclass
class HoldResult:
    account: str
    on: bool
    recordings: list[HeldRecording] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.not_found and not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account, "legal_hold": "on" if self.on else "off", "ok": self.ok,
            "recordings": [r.as_dict() for r in self.recordings],
            "objects": sum(len(r.keys) for r in self.recordings),
            "not_found": self.not_found, "errors": self.errors,
        }


@dataclass
class _Recording:
    recording_id: str
    started_at: str | None
    keys: list[str]  # relative keys: every object of every committed revision, metadata.json included


def find_archived(
    storage: Storage, account: AccountSettings, *, ids: Iterable[str] = (),
    since: datetime | None = None, until: datetime | None = None,
) -> tuple[list[_Recording], list[str]]:
    """(archived recordings matching the query, ids asked for but not archived)."""
    wanted: dict[str, str] = {}
    bad: list[str] = []
    for rid in ids:
        try:
            wanted[sanitize_id(rid)] = rid
        except PermanentError:
            bad.append(rid)
    by_id = bool(wanted) or bool(bad)
    days = None if by_id else window_days(since, until)
    found: list[_Recording] = []
    seen: set[str] = set()
    for folder in folders(storage, account, days):
        if folder.stray or (by_id and folder.folder_id not in wanted):
            continue
        recording = _recording(storage, folder)
        if recording is None:
            continue
        if not by_id:
            started = parse_iso(recording.started_at)
            if started is None or (since is not None and started < since) or (until is not None and started >= until):
                continue
        found.append(recording)
        seen.add(folder.folder_id)
    missing = [rid for safe, rid in wanted.items() if safe not in seen] + bad
    return found, missing


def _recording(storage: Storage, folder: Folder) -> _Recording | None:
    keys: list[str] = []
    rid: str | None = None
    started: str | None = None
    for meta in folder.metadata_keys:
        try:
            document = load_document(storage, meta)
            objects = objects_of(storage, meta, document)
        except FileNotFoundError:
            continue
        except ValueError:
            keys.append(meta)  # unreadable, but still part of the recording: hold what is there
            continue
        rid = rid or str(document.get("recording_id"))
        started = started or (document.get("started_at") if isinstance(document.get("started_at"), str) else None)
        keys.extend(obj.key for obj in objects if obj.key in folder.listed)
        keys.append(meta)
    if rid is None:
        return None
    return _Recording(rid, started, list(dict.fromkeys(keys)))


def apply_hold(
    storage: Storage, account: AccountSettings, *, on: bool, ids: Iterable[str] = (),
    since: datetime | None = None, until: datetime | None = None,
    progress: Callable[[str, Any], None] | None = None,
) -> HoldResult:
    """Put (``on``) or lift the legal hold on every object of the matching recordings.

    ``StorageError`` for one object is recorded and the others are still done; ``StorageUnavailable``
    stops everything (exit 3).
    """
    from worker.errors import StorageError, StorageUnavailable

    result = HoldResult(account.name, on)
    found, result.not_found = find_archived(storage, account, ids=ids, since=since, until=until)
    for recording in found:
        held = HeldRecording(recording.recording_id, recording.started_at)
        for key in recording.keys:
            try:
                storage.set_legal_hold(key, on)
            except StorageUnavailable:
                raise
            except StorageError as exc:
                result.errors.append(f"{storage.full_key(key)}: {exc}")
                continue
            held.keys.append(storage.full_key(key))
        result.recordings.append(held)
        if progress is not None:
            progress("recording", held)
    return result
