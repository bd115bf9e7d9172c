"""Object Lock on S3, in the write itself and read back: the helpers of ``storage/s3.py``.

``lock_args`` gives the ``PutObject`` / ``CreateMultipartUpload`` arguments that create an object
already locked (AWS applies them atomically with the object's creation: no unlocked window).
``missing_lock`` compares what the store reports on HEAD with what was asked, because some
S3-compatible stores (and moto) keep the headers of ``PutObject`` but drop those of
``CreateMultipartUpload``: such an object is locked at once by ``PutObjectRetention`` /
``PutObjectLegalHold``, before anything commits it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from storage._keypath import covers, whole_seconds
from storage.base import ObjectInfo, Retention, WriteLock

__all__ = ["info_from_head", "lock_args", "missing_lock"]


def lock_args(lock: WriteLock | None) -> dict[str, Any]:
    """The request arguments that create the object under ``lock`` (none without one)."""
    args: dict[str, Any] = {}
    if lock is None:
        return args
    if lock.retention is not None:
        args["ObjectLockMode"] = lock.retention.mode
        args["ObjectLockRetainUntilDate"] = whole_seconds(lock.retention.retain_until)
    if lock.legal_hold:
        args["ObjectLockLegalHoldStatus"] = "ON"
    return args


def missing_lock(info: ObjectInfo | None, lock: WriteLock) -> tuple[bool, bool]:
    """(retention missing, legal hold missing) of the object as the store reports it."""
    retention = lock.retention is not None and (info is None or not covers(info.retention, lock.retention))
    hold = lock.legal_hold and (info is None or not info.legal_hold)
    return retention, hold


def info_from_head(key: str, response: Mapping[str, Any]) -> ObjectInfo:
    """``ObjectInfo`` of a ``HeadObject`` answer; ``key`` is relative to the storage prefix."""
    retention = None
    if response.get("ObjectLockMode") and response.get("ObjectLockRetainUntilDate"):
        until = response["ObjectLockRetainUntilDate"]
        if isinstance(until, str):
            until = datetime.fromisoformat(until.replace("Z", "+00:00"))
        retention = Retention(str(response["ObjectLockMode"]), until.astimezone(UTC))
    hold = response.get("ObjectLockLegalHoldStatus")
    etag = response.get("ETag")
    return ObjectInfo(
        key=key,
        size=int(response.get("ContentLength", 0)),
        etag=str(etag).strip('"') if etag else None,
        content_type=response.get("ContentType"),
        metadata={str(k).lower(): str(v) for k, v in (response.get("Metadata") or {}).items()},
        retention=retention,
        legal_hold=None if hold is None else hold == "ON",
        last_modified=response.get("LastModified"),
    )
