"""Tamper-evident daily manifests: what was archived each day, hash-chained day to day.

Layout, per account, under ``{prefix}/_manifests/{account}/``::

    pending/{YYYY-MM-DD}/{h}.json   one small entry per committed recording (written once, never changed)
    {YYYY-MM-DD}.jsonl              the closed manifest of that day (written once, never changed)

Why this shape: S3 has no append, and several workers archive at once. So nothing is ever appended:
right *before* a recording's commit, ``ManifestHook.committing`` writes one *entry object* of its own
(``h`` is the SHA-256 of its ``metadata.json`` key, so a retry writes the same name and a racing
duplicate is refused by the store): an intent. The day is the UTC day of the recording's
``archived_at``: a manifest is a log of what was archived when, which is what a day can be *closed* on.

An entry names a ``metadata.json``; its lines are taken, when the day closes, from that
``metadata.json`` *as committed*: an entry whose commit never happened (the process died in between)
is dropped then, and one whose commit another worker won (other bytes) lists the winner's. So a
process killed anywhere leaves no committed recording out of the manifests, and none that was not
committed in.

``close_days`` (run whenever an account's pass settles: ``ManifestHook.settled``) closes each day that ended
more than ``CLOSE_GRACE`` ago, in order and with no gap: it writes ``{day}.jsonl`` with a header line, then
one line per object (original, rendition and the ``metadata.json`` itself) sorted by key. The header carries
``prev_sha256``, the SHA-256 of the previous day's closed manifest of the account (``null`` only for the
first): a hash chain. Changing any byte of a closed manifest changes its hash and breaks the next day's
link; deleting one leaves a gap; changing an object breaks its line. Days with nothing archived get an empty
manifest, so every calendar day from the first onwards is accounted for.

Closing is lock-free: the manifest is written with no-overwrite, the previous day's manifest is
immutable, so two closers build the same chain link and one of them simply loses the write. Entries
are deleted only once they are found in the manifest as actually stored; an entry that arrives after
its day was closed (a late hook, or one that lost a closing race) stays pending and goes into the next
day that closes — there is never a second manifest for one day and no manifest is ever rewritten.
With ``[retention]`` each closed manifest gets the same Object Lock retention as the recordings.

``recarchive verify --manifests`` names any committed recording not in a manifest (one committed by
a version before 0.2 whose hook never ran).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from config.settings import AccountSettings, RetentionSettings
from storage.base import Retention, Storage
from storage.keys import manifest_key, metadata_key, recording_prefix
from storage.metadata import iso, load_metadata
from worker.compliance._manifest_layout import (
    CLOSE_GRACE,
    DAY_FILE,
    ENTRY_SCHEMA,
    MANIFEST_SCHEMA,
    closable_until,
    pending_key,
    root,
)
from worker.compliance._manifest_read import ManifestLine, ManifestSet, load_manifests
from worker.compliance.walker import dumps_line, parse_iso
from worker.errors import ArchiverError, ObjectExists, StorageUnavailable
from worker.pipeline.hooks import ArchiveHooks

__all__ = [
    "CLOSE_GRACE",
    "ENTRY_SCHEMA",
    "MANIFEST_SCHEMA",
    "ManifestHook",
    "ManifestLine",
    "ManifestSet",
    "close_days",
    "entry_lines",
    "load_manifests",
]

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------- entries


def entry_lines(storage: Storage, document: dict[str, Any],
                body: bytes | None = None) -> tuple[str, list[dict[str, Any]]]:
    """(full ``metadata.json`` key, manifest lines) of a committed recording's ``metadata.json``.

    The ``metadata.json`` line hashes the bytes as stored — ``body``, the exact bytes the pipeline
    just wrote, or else read back — so the manifest also proves the metadata unaltered.
    """
    meta_rel = _metadata_key_of(document)
    if body is None:
        body = storage.read_bytes(meta_rel)
    common = {"archived_at": document.get("archived_at"), "recording_id": document["recording_id"],
              "started_at": document.get("started_at")}
    lines = [{"key": str(obj["key"]), "sha256": str(obj["sha256"]), "size": int(obj["size"]),
              "role": str(obj.get("role", "")), **common} for obj in document.get("objects", [])]
    meta_full = storage.full_key(meta_rel)
    lines.append({"key": meta_full, "sha256": hashlib.sha256(body).hexdigest(), "size": len(body),
                  "role": "metadata", **common})
    return meta_full, sorted(lines, key=lambda line: line["key"])


def _metadata_key_of(document: dict[str, Any]) -> str:
    """The ``metadata.json`` key (relative to the storage prefix) a committed document lives at."""
    started = parse_iso(document.get("started_at"))
    if started is None:
        raise ValueError("metadata.json has no started_at")
    prefix = recording_prefix(str(document["provider"]), str(document["account"]), started,
                              str(document["recording_id"]))
    revision = document.get("revision")
    if isinstance(revision, int) and revision > 1:
        prefix += f"r{revision}/"
    return metadata_key(prefix)


class ManifestHook(ArchiveHooks):
    """Pipeline observer: one manifest entry per committed recording, and the days that ended closed
    whenever an account's pass settles — in ``recarchive run`` and in the daemon's discovery alike.

    Never raises for an entry: the recording is already committed, and a failure here must not park
    it. A missed entry is reported by ``verify --manifests``.
    """

    def __init__(self, storage: Storage, retention: RetentionSettings | None = None) -> None:
        self.storage = storage
        self.retention = retention
        # the entry this thread's ``committing`` wrote: ``committed`` for the same recording, which
        # follows in the same thread, need not write it again (one request fewer per recording)
        self._intent = threading.local()

    def settled(self, account: AccountSettings, watermark: datetime | None, *, now: datetime) -> None:
        """Close the days that ended (a storage failure other than unavailability is logged: the next
        pass closes what this one could not)."""
        try:
            close_days(self.storage, account.name, now=now, retention=self.retention)
        except StorageUnavailable:
            raise
        except ArchiverError as exc:
            log.warning("account %s: manifests not closed: %s", account.name, exc)

    def committing(self, account: AccountSettings, document: dict[str, Any], body: bytes) -> None:
        """The intent, before the commit: a failure stops the commit (raised), so that nothing is
        ever committed without its entry."""
        self._intent.key = None
        self._intent.key = write_entry(self.storage, account.name, document, body)

    def committed(self, account: AccountSettings, document: dict[str, Any], body: bytes) -> None:
        """Normally a no-op (``committing`` wrote the entry); it stays for commits made without the
        intent (an observer installed late)."""
        written, self._intent.key = getattr(self._intent, "key", None), None
        try:
            if written is not None and written == entry_key(self.storage, account.name, document):
                return
            write_entry(self.storage, account.name, document, body)
        except StorageUnavailable:
            log.warning("manifest entry for %s/%s not written: storage unavailable",
                        account.name, document.get("recording_id"))
        except (ArchiverError, OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("manifest entry for %s/%s not written: %s", account.name,
                        document.get("recording_id"), exc)


def entry_key(storage: Storage, account: str, document: dict[str, Any], meta_full: str | None = None) -> str:
    """Where the pending entry of a ``metadata.json`` document goes (its archived day, its key);
    ``meta_full``: that ``metadata.json``'s full key, when the caller has it."""
    archived = parse_iso(document.get("archived_at")) or datetime.now(UTC)
    meta_full = meta_full or storage.full_key(_metadata_key_of(document))
    return pending_key(account, archived.astimezone(UTC).date(), meta_full)


def write_entry(storage: Storage, account: str, document: dict[str, Any], body: bytes | None = None) -> str:
    meta_full, lines = entry_lines(storage, document, body)
    key = entry_key(storage, account, document, meta_full)
    entry = {"schema": ENTRY_SCHEMA, "account": account, "metadata_key": meta_full, "lines": lines}
    # ObjectExists: the same recording's entry, written by an earlier attempt of this very hook
    with contextlib.suppress(ObjectExists):
        storage.put_bytes(key, (json.dumps(entry, sort_keys=True) + "\n").encode(),
                          content_type="application/json")
    return key


# ----------------------------------------------------------------------------------- closing


@dataclass
class _Pending:
    key: str
    day: date
    metadata_key: str | None = None
    lines: list[dict[str, Any]] = field(default_factory=list)


def close_days(storage: Storage, account: str, *, now: datetime | None = None,
               retention: RetentionSettings | None = None) -> list[str]:
    """Close every closable day of ``account`` not closed yet; return the manifests written.

    Idempotent and safe to run from several processes at once (see the module docstring).
    """
    now = now or datetime.now(UTC)
    cutoff = closable_until(now)
    closed: list[date] = []
    pending: list[_Pending] = []
    for info in storage.list(root(account)):
        rest = info.key[len(root(account)):]
        match = DAY_FILE.match(rest)
        if match:
            closed.append(date.fromisoformat(match.group(1)))
        elif rest.startswith("pending/"):
            day = _day_of(rest.split("/")[1])
            if day is not None:
                pending.append(_Pending(info.key, day))
    closed.sort()
    if closed:
        start = closed[-1] + timedelta(days=1)
    elif pending:
        start = min(p.day for p in pending)
    else:
        return []
    if start > cutoff:
        return []
    due = [p for p in pending if p.day <= cutoff]
    for item in due:
        _load_entry(storage, item)
        _as_committed(storage, item)
    previous: tuple[str, bytes] | None = None
    if closed:
        prev_day = closed[-1]
        previous = (f"{prev_day:%Y-%m-%d}.jsonl", storage.read_bytes(manifest_key(account, prev_day)))
    written: list[str] = []
    day = start
    while day <= cutoff:
        previous, due = _close_one(storage, account, day, previous, due, now, retention, written)
        day += timedelta(days=1)
    return written


def _close_one(storage: Storage, account: str, day: date, previous: tuple[str, bytes] | None,
               due: list[_Pending], now: datetime, retention: RetentionSettings | None,
               written: list[str]) -> tuple[tuple[str, bytes], list[_Pending]]:
    already = _metadata_keys_in(previous[1]) if previous else set()
    chosen: dict[str, _Pending] = {}
    for item in due:
        if item.day > day or item.metadata_key is None:
            continue
        if item.metadata_key in already:
            _drop(storage, item)  # a closer died after writing the manifest, before this cleanup
            continue
        chosen.setdefault(item.metadata_key, item)
    lines = sorted((line for item in chosen.values() for line in item.lines), key=lambda x: str(x["key"]))
    header = {
        "schema": MANIFEST_SCHEMA, "account": account, "day": f"{day:%Y-%m-%d}",
        "prev": previous[0] if previous else None,
        "prev_sha256": hashlib.sha256(previous[1]).hexdigest() if previous else None,
        "objects": len(lines), "recordings": len(chosen), "closed_at": iso(now),
    }
    body = ("\n".join(dumps_line(x) for x in [header, *lines]) + "\n").encode()
    key = manifest_key(account, day)
    try:
        storage.put_bytes(key, body, content_type="application/x-ndjson")
        written.append(key)
    except ObjectExists:
        body = storage.read_bytes(key)  # another closer won: its manifest is the one that counts
    if retention is not None:
        storage.set_retention(key, Retention(retention.mode, retention.retain_until(now)))
    stored = _metadata_keys_in(body)
    remaining: list[_Pending] = []
    for item in due:
        if item.metadata_key is not None and item.metadata_key in stored:
            _drop(storage, item)
        elif item.metadata_key in already:
            continue
        else:
            remaining.append(item)
    return (f"{day:%Y-%m-%d}.jsonl", body), remaining


def _load_entry(storage: Storage, item: _Pending) -> None:
    try:
        document = json.loads(storage.read_bytes(item.key))
    except FileNotFoundError:
        return
    except ValueError:
        log.warning("unreadable manifest entry %s left in place", item.key)
        return
    if not isinstance(document, dict) or document.get("schema") != ENTRY_SCHEMA:
        log.warning("manifest entry %s is not one of ours; left in place", item.key)
        return
    lines = document.get("lines")
    if isinstance(lines, list) and isinstance(document.get("metadata_key"), str):
        item.metadata_key = document["metadata_key"]
        item.lines = [line for line in lines if isinstance(line, dict) and "key" in line]


def _as_committed(storage: Storage, item: _Pending) -> None:
    """Replace an entry's lines by those of its ``metadata.json`` as stored now: the intent may
    name a commit that never happened (dropped: its day ended over ``CLOSE_GRACE`` ago, so no
    writer is still about to make it), or one another worker made with other bytes."""
    if item.metadata_key is None:
        return
    base = storage.full_key("x")[:-1]
    if not item.metadata_key.startswith(base):
        return
    try:
        body = storage.read_bytes(item.metadata_key[len(base):])
        document = load_metadata(body)
        _, lines = entry_lines(storage, document, body)
    except FileNotFoundError:
        log.info("manifest entry %s names no commit (the writer died before it); dropped", item.key)
        _drop(storage, item)
        item.metadata_key = None
        return
    except (ValueError, KeyError, TypeError):
        return  # an unreadable metadata.json: the entry's own lines stand (verify names the file)
    item.lines = lines


def _drop(storage: Storage, item: _Pending) -> None:
    try:
        storage.delete(item.key)
    except StorageUnavailable:
        raise
    except ArchiverError as exc:
        log.warning("manifest entry %s kept: %s", item.key, exc)


def _metadata_keys_in(body: bytes) -> set[str]:
    keys: set[str] = set()
    for line in body.decode("utf-8", "replace").splitlines()[1:]:
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and item.get("role") == "metadata":
            keys.add(str(item.get("key")))
    return keys


def _day_of(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None
