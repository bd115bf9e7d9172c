"""The checks one downloaded recording goes through before anything is stored, bounded by
``[limits]`` the same way in ``recarchive run`` and in the daemon (both call ``inspect_recording``).

- probe: what the container is; a duration past ``limits.max_duration`` is parked (``TooLarge``)
  before any decode, so a 40-hour "call" never ties a worker up for hours;
- decode check: the whole audio decoded (PCM WAV: its structure walked), within
  ``limits.decode_timeout`` and stopped at the duration cap;
- findings for ``metadata.json``'s ``integrity`` block: the decode report, the vendor's duration
  against what decoded (``duration_mismatch``), and the container's header against the bytes
  (``header_duration_mismatch``: a cut MP3 that still claims its full length, a WAV whose writer
  never filled in its sizes). Every finding ending in ``mismatch`` becomes a result flag.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from worker.errors import CorruptMedia, TooLarge
from worker.media.inspect import check_decode, duration_flag, probe_media

if TYPE_CHECKING:
    from config.settings import LimitsSettings

__all__ = ["Inspection", "inspect_recording"]


@dataclass(frozen=True)
class Inspection:
    media: dict[str, Any]  # metadata.json's ``media`` block
    integrity: dict[str, Any]  # metadata.json's ``integrity`` block


def inspect_recording(path: Path, *, hint: str | None, vendor_seconds: float | None, tolerance: float,
                      limits: LimitsSettings | None = None, recording_id: str | None = None) -> Inspection:
    """Probe and decode-check ``path``; ``CorruptMedia`` when nothing decodes, ``TooLarge`` past the
    duration cap or the decode timeout (both permanent: the same bytes would do the same again)."""
    cap = limits.max_duration.total_seconds() if limits is not None else None
    timeout = limits.decode_timeout.total_seconds() if limits is not None else None
    info = probe_media(path, hint=hint)
    if cap is not None and info.duration_seconds is not None and info.duration_seconds > cap:
        raise TooLarge(f"{hint or 'media'} of {info.duration_seconds:.0f} s is longer than "
                       f"limits.max_duration ({cap:.0f} s)", recording_id=recording_id)
    report = check_decode(path, timeout=timeout, max_seconds=cap)
    if report.capped:
        raise TooLarge(f"{hint or 'media'} decodes past limits.max_duration ({cap or 0:.0f} s)",
                       recording_id=recording_id)
    if report.timed_out:
        raise TooLarge(f"the decode check did not finish within limits.decode_timeout ({timeout or 0:.0f} s)",
                       recording_id=recording_id)
    if not report.ok and not report.decoded_seconds:
        raise CorruptMedia(f"the {hint or 'media'} body does not decode: {report.message or 'no audio'}",
                           recording_id=recording_id)
    integrity: dict[str, Any] = {"decode": report.as_metadata()}
    measured = report.decoded_seconds if report.decoded_seconds is not None else info.duration_seconds
    flag = duration_flag(measured, vendor_seconds, tolerance)
    if flag is not None:
        integrity["duration_mismatch"] = flag
    header = _header_flag(report.decoded_seconds, info.duration_seconds, report.header_seconds,
                          report.header_unfinished, tolerance)
    if header is not None:
        integrity["header_duration_mismatch"] = header
    if not report.ok:
        integrity["decode_errors"] = True
    return Inspection(info.as_metadata(), integrity)


def _header_flag(decoded: float | None, probed: float | None, declared: float | None, unfinished: bool,
                 tolerance: float) -> dict[str, Any] | None:
    """The header's duration against what decoded. For a PCM WAV the probe already measured the
    bytes, so the header's own figure (``declared``) is compared; an unfinished header is always
    flagged, whatever the difference (it says nothing true about the recording)."""
    if unfinished:
        return {"header_seconds": None if declared is None else round(declared, 2),
                "probed_seconds": None if decoded is None else round(decoded, 2),
                "header_unfinished": True}
    return duration_flag(decoded, declared if declared is not None else probed, tolerance)
