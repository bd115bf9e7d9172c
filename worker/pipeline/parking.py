"""Parking a recording: the one place a failure is written down with its reason.

A parked recording no longer holds the watermark (CONTRACT §4.6); ``status`` shows it with its
reason, later passes skip it, and ``rearchive`` lifts it. ``kind="rendition"`` parks only the
rendition of a committed recording (its original is archived).
"""

from __future__ import annotations

import logging

from config.settings import AccountSettings
from config.units import utc_stamp
from providers.base import Recording
from worker.errors import ArchiverError
from worker.pipeline.context import ArchiveContext
from worker.pipeline.state import ParkedRecord
from worker.redact import mask_secrets

__all__ = ["park"]

log = logging.getLogger(__name__)


def park(ctx: ArchiveContext, account: AccountSettings, recording: Recording, error: ArchiverError, *,
         attempts: int, kind: str = "recording") -> str:
    """Record ``recording`` as parked because of ``error``; returns the (secret-free) message."""
    message = mask_secrets(error.message)
    log.warning("parked %s %s/%s after %d attempt(s): %s (%s)", kind, account.name, recording.recording_id,
                attempts, message, error.reason)
    ctx.state.park(account.name, ParkedRecord(
        recording_id=recording.recording_id, reason=error.reason, message=message,
        parked_at=utc_stamp(), attempts=attempts,
        started_at=recording.started_at.isoformat(), listed_at=recording.listed_at.isoformat(), kind=kind,
    ))
    if kind == "recording":
        ctx.hooks.parked(account, recording, error)
    return message
