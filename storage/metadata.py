"""``metadata.json``: the per-recording commit marker and its schema (CONTRACT §3)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from config.units import utc_stamp

__all__ = ["SCHEMA", "StoredObject", "build_metadata", "dump_metadata", "load_metadata", "s3_user_metadata"]

SCHEMA = "recarchive.recording/1"


@dataclass(frozen=True)
class StoredObject:
    key: str  # full key, as stored
    role: str  # "original" | "rendition"
    content_type: str
    size: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "role": self.role, "content_type": self.content_type,
                "size": self.size, "sha256": self.sha256}


def iso(moment: datetime) -> str:
    return utc_stamp(moment)


def s3_user_metadata(*, sha256: str, provider: str, account: str, recording_id: str) -> dict[str, str]:
    """The user metadata every stored object carries (CONTRACT §3); values must be ASCII."""
    return {
        "sha256": sha256,
        "provider": provider,
        "account": account,
        "recording-id": recording_id.encode("ascii", "backslashreplace").decode("ascii")[:512],
    }


def build_metadata(
    *,
    provider: str,
    account: str,
    recording_id: str,
    started_at: datetime,
    vendor_duration_seconds: float | None,
    media: Mapping[str, Any] | None,
    objects: list[StoredObject],
    source: Mapping[str, Any],
    archived_at: datetime,
    version: str,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "schema": SCHEMA,
        "provider": provider,
        "account": account,
        "recording_id": recording_id,
        "started_at": iso(started_at),
        "vendor_duration_seconds": vendor_duration_seconds,
        "media": dict(media) if media is not None else None,
        "objects": [obj.as_dict() for obj in objects],
        "source": dict(source),
        "archived_at": iso(archived_at),
        "archiver": {"name": "recarchive", "version": version},
    }
    if extra:
        document.update(extra)
    return document


def dump_metadata(document: Mapping[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False, default=str) + "\n").encode()


def load_metadata(data: bytes) -> dict[str, Any]:
    document = json.loads(data)
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise ValueError("not a recarchive metadata.json")
    return document
