"""The id index: find an archived recording's folder from its account and id alone, in one listing.

Recording folders are keyed by start day (CONTRACT §3), so without a day an id could be anywhere in
the account's years of day folders. The archiver therefore writes, right after each commit, one tiny
object per recording folder::

    {prefix}/_index/{provider}/{account}/{sanitized id}/{YYYY-MM-DD}

whose body names the folder (``{provider}/{account}/YYYY/MM/DD/{id}/``). ``show`` and ``export``
list ``_index/{provider}/{account}/{sanitized id}/`` — one request, a handful of keys — and go
straight to the folder. One object per *folder*, not per id: a re-archive whose vendor start time
moved lands in another day folder, and both stay findable. Revisions (``{id}/r2/``) live inside the
folder and need no entry of their own.

Entries are written once and never changed (no-overwrite; an existing entry is the same entry
written by an earlier attempt). The index only speeds finding up: a missing entry (a recording
archived before the index existed, or a process killed between commit and hook) is found by the
slower fallbacks of ``worker.compliance.lookup``; it is never a verification failure.
"""

from __future__ import annotations

import contextlib
import json
import logging
from datetime import UTC
from typing import Any

from config.settings import AccountSettings
from storage.base import Storage
from storage.keys import recording_prefix, sanitize_id
from worker.compliance.walker import parse_iso
from worker.errors import ArchiverError, ObjectExists, StorageUnavailable
from worker.pipeline.hooks import ArchiveHooks

__all__ = ["INDEX_PREFIX", "INDEX_SCHEMA", "IndexHook", "index_folders", "index_root", "write_index"]

log = logging.getLogger(__name__)

INDEX_PREFIX = "_index"
INDEX_SCHEMA = "recarchive.index/1"


def index_root(provider: str, account: str, recording_id: str) -> str:
    """``_index/{provider}/{account}/{sanitized id}/``: every folder entry of one recording id."""
    return f"{INDEX_PREFIX}/{provider}/{account}/{sanitize_id(recording_id)}/"


def write_index(storage: Storage, document: dict[str, Any]) -> str:
    """Write the index entry of a committed recording's ``metadata.json`` document; its key."""
    started = parse_iso(document.get("started_at"))
    if started is None:
        raise ValueError("metadata.json has no started_at")
    provider, account, recording_id = str(document["provider"]), str(document["account"]), \
        str(document["recording_id"])
    folder = recording_prefix(provider, account, started, recording_id)
    key = f"{index_root(provider, account, recording_id)}{started.astimezone(UTC).date():%Y-%m-%d}"
    body = {"schema": INDEX_SCHEMA, "folder": folder, "recording_id": recording_id,
            "started_at": document.get("started_at")}
    # ObjectExists: the same entry, written by an earlier attempt or an earlier revision of this folder
    with contextlib.suppress(ObjectExists):
        storage.put_bytes(key, (json.dumps(body, sort_keys=True) + "\n").encode(), content_type="application/json")
    return key


def index_folders(storage: Storage, provider: str, account: str, recording_id: str) -> list[str]:
    """The recording folders the index names for this id (usually one; empty if it has no entry).

    The folder is rebuilt from the entry's key and checked against its body, so an entry edited to
    point elsewhere in the archive is ignored rather than followed."""
    root = index_root(provider, account, recording_id)
    out: list[str] = []
    for info in storage.list(root):
        day = info.key[len(root):]
        if len(day) != 10 or day.count("-") != 2:
            continue
        expected = f"{provider}/{account}/{day.replace('-', '/')}/{sanitize_id(recording_id)}/"
        try:
            named = json.loads(storage.read_bytes(info.key)).get("folder")
        except (FileNotFoundError, ValueError, AttributeError):
            continue
        if named == expected and expected not in out:
            out.append(expected)
    return out


class IndexHook(ArchiveHooks):
    """Pipeline observer: the index entry of every committed recording (the ``committed`` event of
    ``worker.pipeline.hooks.ArchiveHooks``). Never raises: the recording is already committed, and a
    missing entry only makes ``show`` take its slower fallback."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def committed(self, account: AccountSettings, document: dict[str, Any], body: bytes) -> None:
        try:
            write_index(self.storage, document)
        except StorageUnavailable:
            log.warning("index entry for %s/%s not written: storage unavailable", account.name,
                        document.get("recording_id"))
        except (ArchiverError, OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("index entry for %s/%s not written: %s", account.name, document.get("recording_id"), exc)
