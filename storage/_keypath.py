"""Key rules shared by every backend, so a key that works on S3 works on a local folder and back.

A key is ``/``-separated, relative, made of non-empty segments, none of them ``.`` or ``..``; it holds
no NUL and no backslash (a Windows path separator), and its last segment does not start with ``.``:
names starting with a dot are the backends' own (sidecars, temporary files, probes), which is what
lets the local backend keep them next to the recordings without ever colliding with one.
The key layout of ``storage.keys`` always satisfies these rules.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.base import Retention
from worker.errors import StorageError

__all__ = ["check_key", "check_prefix", "covers", "whole_seconds"]

MAX_KEY_BYTES = 1024  # the S3 limit, applied to the key as stored by every backend


def check_key(key: str) -> list[str]:
    """The key's segments, or ``StorageError`` naming what is wrong with it."""
    if not isinstance(key, str) or not key:
        raise StorageError("storage key must be a non-empty string")
    segments = _segments(key, what="key")
    if segments[-1].startswith("."):
        raise StorageError(f"storage key {key!r}: names starting with '.' are reserved for the backend")
    return segments


def check_prefix(prefix: str) -> str:
    """A listing prefix: like a key, but may be empty or end with ``/`` (or in a partial name)."""
    if not isinstance(prefix, str):
        raise StorageError("storage prefix must be a string")
    if prefix:
        _segments(prefix.removesuffix("/"), what="prefix")
    return prefix


def _segments(key: str, *, what: str) -> list[str]:
    if "\x00" in key or "\\" in key:
        raise StorageError(f"storage {what} {key!r} holds a NUL or a backslash")
    if key.startswith("/"):
        raise StorageError(f"storage {what} {key!r} is absolute")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise StorageError(f"storage {what} is longer than {MAX_KEY_BYTES} bytes")
    segments = key.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise StorageError(f"storage {what} {key!r} has an empty, '.' or '..' segment")
    return segments


def whole_seconds(moment: datetime) -> datetime:
    """``moment`` in UTC rounded UP to the second: stores keep retention dates to the second at best,
    and rounding up never shortens what was asked for."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment


def covers(existing: Retention | None, wanted: Retention) -> bool:
    """Whether ``existing`` retention already protects the object at least as much as ``wanted``.

    COMPLIANCE is at least as strong as GOVERNANCE; a later date is at least as long.
    """
    if existing is None:
        return False
    strong_enough = existing.mode in (wanted.mode, "COMPLIANCE")
    return strong_enough and existing.retain_until >= whole_seconds(wanted.retain_until) - timedelta(
        seconds=1
    )
