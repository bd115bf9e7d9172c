"""Recordings as queue payloads: JSON for Celery, never carrying a signed URL or a token.

Any hint value with a query (a signed URL) or credentials is dropped and named in ``hint_dropped``;
the provider re-resolves the link when the task runs (``worker.daemon.bodies.archive_task_body``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from providers.base import Readiness, Recording
from worker.redact import scrub_record

__all__ = ["PAYLOAD_VERSION", "recording_from_payload", "recording_to_payload"]

PAYLOAD_VERSION = 1


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _parse(text: Any) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _unsafe(value: Any) -> bool:
    """A value that may carry a signed query or credentials: never sent to Redis."""
    if isinstance(value, str):
        return "?" in value or ("://" in value and "@" in value.split("://", 1)[1].split("/", 1)[0])
    if isinstance(value, Mapping):
        return any(_unsafe(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_unsafe(v) for v in value)
    return False


def recording_to_payload(recording: Recording) -> dict[str, Any]:
    """A JSON-safe dict for the queue; hint values with a query (signed URLs) are dropped."""
    hint = {k: v for k, v in recording.hint.items() if not _unsafe(v)}
    dropped = sorted(k for k in recording.hint if k not in hint)
    return {
        "v": PAYLOAD_VERSION,
        "provider": recording.provider,
        "account": recording.account,
        "recording_id": recording.recording_id,
        "started_at": _iso(recording.started_at),
        "listed_at": _iso(recording.listed_at),
        "readiness": str(recording.readiness),
        "vendor_duration_seconds": recording.vendor_duration_seconds,
        "is_video": recording.is_video,
        "expires_at": _iso(recording.expires_at),
        "source": scrub_record(dict(recording.source)),  # already scrubbed by the provider: belt and braces
        "hint": hint,
        "hint_dropped": dropped,
    }


def recording_from_payload(payload: Mapping[str, Any]) -> Recording:
    started = _parse(payload["started_at"])
    listed = _parse(payload.get("listed_at")) or started
    assert started is not None and listed is not None
    duration = payload.get("vendor_duration_seconds")
    return Recording(
        provider=str(payload["provider"]),
        account=str(payload["account"]),
        recording_id=str(payload["recording_id"]),
        started_at=started,
        listed_at=listed,
        readiness=Readiness(payload.get("readiness", Readiness.READY)),
        vendor_duration_seconds=None if duration is None else float(duration),
        is_video=bool(payload.get("is_video", False)),
        expires_at=_parse(payload.get("expires_at")),
        source=dict(payload.get("source") or {}),
        hint=dict(payload.get("hint") or {}),
    )
