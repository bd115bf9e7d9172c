"""Putting a recording's object in place without ever replacing one: the rule every writer follows.

A key of a recording folder is written once (the backends refuse a second write: ``If-None-Match``
on S3, ``link``/``O_EXCL`` on a folder). When the key is taken, what stands there is never deleted:

- the same bytes (size and the ``sha256`` user metadata): another attempt of the same recording
  stored them (a racing worker, or one that died before its commit): they are ours too, and are
  locked now if they were written without the lock (an older version, a refused request);
- other bytes: the caller decides (``OtherBytes``): wait for that attempt's commit and store its own
  bytes as a revision, or adopt what stands there (``verified``) when it is a checked copy.

Deleting instead (what versions before 0.2 did with "uncommitted leftovers") cannot be made safe: a
leftover and the in-flight object of a live worker look the same, and that worker then commits a
``metadata.json`` whose figures no longer match the object it names.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from storage._keypath import covers
from storage.base import ObjectInfo, Retention, WriteLock
from worker.errors import ObjectExists, StorageError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from config.settings import RetentionSettings
    from storage.base import Storage

__all__ = ["OtherBytes", "Placed", "ensure_lock", "lock_for", "place_file", "same_bytes", "verified"]


def lock_for(retention: RetentionSettings | None) -> WriteLock | None:
    """The lock every object of a recording is written with under ``[retention]`` (None without)."""
    if retention is None:
        return None
    return WriteLock(Retention(retention.mode, retention.retain_until()), legal_hold=retention.legal_hold)


class Placed(StrEnum):
    STORED = "stored"  # written now
    PRESENT = "present"  # the same bytes were already there


class OtherBytes(ObjectExists):
    """The key holds an object with other bytes; ``existing`` is what the store reports of it."""

    def __init__(self, message: str, existing: ObjectInfo) -> None:
        super().__init__(message)
        self.existing = existing


def same_bytes(info: ObjectInfo | None, sha256: str, size: int) -> bool:
    return info is not None and info.size == size and info.metadata.get("sha256") == sha256


def place_file(storage: Storage, key: str, path: Path, *, sha256: str, size: int, content_type: str,
               metadata: Mapping[str, str], lock: WriteLock | None, content_md5: str | None = None) -> Placed:
    """Store ``path`` at ``key`` unless the same bytes stand there; ``OtherBytes`` if others do."""
    try:
        storage.put_file(key, path, content_type=content_type, metadata=metadata, lock=lock,
                         content_md5=content_md5, sha256=sha256)
        return Placed.STORED
    except ObjectExists:
        pass
    existing = storage.head(key)
    if existing is None:  # there a moment ago: a store that lists a delete marker; try once more
        storage.put_file(key, path, content_type=content_type, metadata=metadata, lock=lock,
                         content_md5=content_md5, sha256=sha256)
        return Placed.STORED
    if not same_bytes(existing, sha256, size):
        raise OtherBytes(f"{key} holds other bytes (sha256 {existing.metadata.get('sha256', '?')[:12]}…)",
                         existing)
    ensure_lock(storage, key, existing, lock)
    return Placed.PRESENT


def ensure_lock(storage: Storage, key: str, info: ObjectInfo | None, lock: WriteLock | None) -> bool:
    """Lock ``key`` as ``lock`` asks where ``info`` shows it is not; True when something was applied."""
    if not lock:
        return False
    applied = False
    if lock.retention is not None and (info is None or not covers(info.retention, lock.retention)):
        storage.set_retention(key, lock.retention)
        applied = True
    if lock.legal_hold and (info is None or not info.legal_hold):
        storage.set_legal_hold(key, True)
        applied = True
    return applied


def verified(storage: Storage, key: str) -> tuple[ObjectInfo, str]:
    """The object at ``key`` and the SHA-256 of its bytes as read back now, which must equal its
    ``sha256`` user metadata (``StorageError`` if not): a copy fit to be adopted."""
    info = storage.head(key)
    if info is None:
        raise FileNotFoundError(key)
    digest = hashlib.sha256()
    size = 0
    for chunk in storage.iter_bytes(key):
        digest.update(chunk)
        size += len(chunk)
    sha = digest.hexdigest()
    if sha != info.metadata.get("sha256") or size != info.size:
        raise StorageError(f"{key}: stored bytes do not match their own sha256 metadata")
    return info, sha
