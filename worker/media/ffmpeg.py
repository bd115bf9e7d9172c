"""Finding ffmpeg: the system's ``ffmpeg``/``ffprobe`` when present, else the static ffmpeg that the
``imageio-ffmpeg`` wheel ships (it has no ffprobe, so callers probe with ``ffmpeg -i`` instead)."""

from __future__ import annotations

import functools
import os
import shutil
from dataclasses import dataclass

from worker.errors import ConfigError

__all__ = ["FFmpeg", "find_ffmpeg"]


@dataclass(frozen=True)
class FFmpeg:
    ffmpeg: str
    ffprobe: str | None  # None with the imageio-ffmpeg binary


@functools.cache
def find_ffmpeg() -> FFmpeg:
    """Locate the binaries once; ``RECARCHIVE_FFMPEG`` overrides. A missing ffmpeg is a clear
    start-up error (exit 2 names what to install), never a crash in the middle of a run."""
    override = os.environ.get("RECARCHIVE_FFMPEG")
    if override:
        if not (os.path.isfile(override) and os.access(override, os.X_OK)):
            raise ConfigError(f"RECARCHIVE_FFMPEG={override} is not an executable file")
        return FFmpeg(override, shutil.which("ffprobe"))
    system = shutil.which("ffmpeg")
    if system:
        return FFmpeg(system, shutil.which("ffprobe"))
    try:
        import imageio_ffmpeg

        return FFmpeg(imageio_ffmpeg.get_ffmpeg_exe(), None)
    except (ImportError, RuntimeError) as exc:
        raise ConfigError(
            "ffmpeg not found: install ffmpeg or the imageio-ffmpeg wheel (pip install imageio-ffmpeg)"
        ) from exc
