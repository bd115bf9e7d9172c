"""Checking the spooled bytes before anything is stored: probe, decode check, duration flags.

A recording that does not decode at all is never stored (``CorruptMedia``, fetched once more by the
caller, then parked); one that decodes with errors, or whose measured length disagrees with the
vendor's or its own header, is archived with the finding recorded in ``metadata.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from providers.base import Recording
from worker.errors import CorruptMedia
from worker.pipeline.context import ArchiveContext
from worker.pipeline.download import Downloaded
from worker.pipeline.sniff import Sniffed

__all__ = ["extension", "inspect_spool"]


def inspect_spool(ctx: ArchiveContext, path: Path, download: Downloaded,
             recording: Recording) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Probe and decode-check the spooled bytes; ``CorruptMedia`` when they do not decode at all."""
    if not ctx.check_media:
        return None, {}
    from worker.media import inspect as media_tools

    info = media_tools.probe_media(path, hint=download.sniffed.ext)
    report = media_tools.check_decode(path)
    if not report.ok and not report.decoded_seconds:
        raise CorruptMedia(f"the {download.sniffed.ext} body does not decode: {report.message or 'no audio'}",
                           recording_id=recording.recording_id)
    integrity: dict[str, Any] = {"decode": report.as_metadata()}
    # a cut MP3 still claims its full length in its header: what decoded is the evidence
    tolerance = ctx.settings.transcode.duration_tolerance
    measured = report.decoded_seconds if report.decoded_seconds is not None else info.duration_seconds
    flag = media_tools.duration_flag(measured, recording.vendor_duration_seconds, tolerance)
    if flag is not None:
        integrity["duration_mismatch"] = flag
    header_flag = media_tools.duration_flag(report.decoded_seconds, info.duration_seconds, tolerance)
    if header_flag is not None:
        integrity["header_duration_mismatch"] = header_flag
    if not report.ok:
        integrity["decode_errors"] = True
    return info.as_metadata(), integrity


def extension(sniffed: Sniffed, media: dict[str, Any] | None) -> str:
    """The sniffed container, refined by the probe for ISO-BMFF (audio-only m4a vs video mp4)."""
    if media and sniffed.ext in ("m4a", "mp4") and media.get("container") in ("m4a", "mp4"):
        return str(media["container"])
    return sniffed.ext
