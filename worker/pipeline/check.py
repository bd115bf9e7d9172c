"""Checking the spooled bytes before anything is stored: probe, decode check, duration flags.

A recording that does not decode at all is never stored (``CorruptMedia``, fetched once more by the
caller, then parked); one that decodes with errors, or whose measured length disagrees with the
vendor's or its own header, is archived with the finding recorded in ``metadata.json``. Media longer
than ``limits.max_duration``, or whose decode outlasts ``limits.decode_timeout``, is parked
(``TooLarge``) instead of tying a worker up (``worker.media.checks``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from providers.base import Recording
from worker.pipeline.context import ArchiveContext
from worker.pipeline.download import Downloaded
from worker.pipeline.sniff import Sniffed

__all__ = ["extension", "inspect_spool"]


def inspect_spool(ctx: ArchiveContext, path: Path, download: Downloaded,
             recording: Recording) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Probe and decode-check the spooled bytes; ``CorruptMedia`` when they do not decode at all."""
    if not ctx.check_media:
        return None, {}
    from worker.media.checks import inspect_recording

    # bounded by [limits] here, the one path of run and the daemon alike
    checked = inspect_recording(path, hint=download.sniffed.ext, vendor_seconds=recording.vendor_duration_seconds,
                                tolerance=ctx.settings.transcode.duration_tolerance, limits=ctx.settings.limits,
                                recording_id=recording.recording_id)
    return checked.media, checked.integrity


def extension(sniffed: Sniffed, media: dict[str, Any] | None) -> str:
    """The sniffed container, refined by the probe for ISO-BMFF (audio-only m4a vs video mp4)."""
    if media and sniffed.ext in ("m4a", "mp4") and media.get("container") in ("m4a", "mp4"):
        return str(media["container"])
    return sniffed.ext
