"""The key layout of CONTRACT §3, and making vendor ids safe to put in it."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from worker.errors import BadRecordingId

__all__ = [
    "MAX_ID_LENGTH",
    "STATE_PREFIX",
    "manifest_key",
    "metadata_key",
    "recording_prefix",
    "sanitize_id",
    "state_key",
]

MAX_ID_LENGTH = 200
STATE_PREFIX = "_state"
MANIFEST_PREFIX = "_manifests"
_SAFE = re.compile(r"[A-Za-z0-9._-]")



def sanitize_id(recording_id: str) -> str:
    """Percent-encode every character outside ``[A-Za-z0-9._-]`` (UTF-8 bytes, upper-case hex).

    The result can never contain ``/`` or ``%2F``-decoding tricks that escape the recording folder;
    ``.``, ``..``, empty and over-long ids are refused (the recording is parked, never misfiled).
    """
    if not isinstance(recording_id, str):
        raise BadRecordingId(f"recording id of type {type(recording_id).__name__} is not text")
    encoded = "".join(
        ch if _SAFE.fullmatch(ch) else "".join(f"%{byte:02X}" for byte in ch.encode("utf-8", "surrogatepass"))
        for ch in recording_id
    )
    if encoded in ("", ".", "..") or set(encoded) == {"."}:
        raise BadRecordingId(f"recording id {encoded!r} cannot name a folder")
    if len(encoded) > MAX_ID_LENGTH:
        raise BadRecordingId(f"recording id is {len(encoded)} characters once encoded (limit {MAX_ID_LENGTH})")
    return encoded


def recording_prefix(provider: str, account: str, started_at: datetime, recording_id: str) -> str:
    """``{provider}/{account}/{YYYY}/{MM}/{DD}/{recording_id}/`` by the UTC start day."""
    day = started_at.date() if started_at.tzinfo is None else started_at.astimezone(UTC).date()
    return f"{provider}/{account}/{day:%Y/%m/%d}/{sanitize_id(recording_id)}/"


def metadata_key(prefix: str) -> str:
    return prefix + "metadata.json"


def state_key(account: str, name: str) -> str:
    return f"{STATE_PREFIX}/{account}/{name}"


def manifest_key(account: str, day: date) -> str:
    return f"{MANIFEST_PREFIX}/{account}/{day:%Y-%m-%d}.jsonl"

