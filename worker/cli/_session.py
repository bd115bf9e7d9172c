"""Opening an archiving session for a command: context, pre-flight checks, clean shutdown."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from config import Settings
from worker.compliance.session import open_context
from worker.pipeline.context import ArchiveContext

__all__ = ["session"]


@contextlib.contextmanager
def session(settings: Settings, *, concurrency: int = 4, check_media: bool = True, write: bool = True,
            **options: Any) -> Iterator[ArchiveContext]:
    """Pre-flight before any vendor is contacted: ffmpeg present (exit 2 if not), storage reachable
    and, with ``[retention]``, Object Lock enabled on the bucket (exit 3 if not). ``write=False``
    (``run --dry-run``) checks reading only: the storage check writes no probe either."""
    if check_media:
        from worker.media.inspect import ensure_ffmpeg

        ensure_ffmpeg(settings.transcode.rendition)
    ctx = open_context(settings, concurrency=concurrency, check_media=check_media, **options)
    try:
        ctx.storage.check(need_object_lock=settings.retention is not None, write=write)
        yield ctx
    finally:
        ctx.close()
