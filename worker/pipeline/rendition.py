"""Producing the compact rendition: ffmpeg encodes the spooled original into the work dir, and the
result is hashed and uploaded.

The original stays exactly as served; the rendition is a convenience copy (``rendition.{ext}``) with
its own SHA-256 in ``metadata.json``. Memory stays bounded: ffmpeg reads and writes files itself.

``recarchive run`` starts the encode as soon as the spool is checked (``rendered_ahead``), in a
thread, so ffmpeg runs while the original uploads instead of after it; the rendition is stored (and
can fail, and be recorded as failed) at the commit exactly as when it is made there.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from storage.metadata import StoredObject, s3_user_metadata
from storage.placement import OtherBytes, lock_for, place_file, verified

if TYPE_CHECKING:
    from config.settings import AccountSettings
    from providers.base import Recording
    from worker.pipeline.context import ArchiveContext

__all__ = ["Rendering", "rendered_ahead", "store_rendition"]


@dataclass
class Rendering:
    """An encode of the spool running in a thread; ``wait`` gives its file and SHA-256 or raises
    what the encode raised (so a failure is handled where the rendition is stored)."""

    fmt: str
    out: Path | None = None
    sha256: str = ""
    error: BaseException | None = None
    _done: threading.Event = field(default_factory=threading.Event)

    def wait(self) -> tuple[Path, str]:
        self._done.wait()
        if self.error is not None:
            raise self.error
        assert self.out is not None
        return self.out, self.sha256


@contextlib.contextmanager
def rendered_ahead(ctx: ArchiveContext, path: Path, fmt: str) -> Iterator[Rendering]:
    """Encode ``path`` to ``fmt`` in a thread now; on exit the encode is waited for and its file
    removed (the block stores it meanwhile, or drops it when the recording needs no commit)."""
    from worker.media.inspect import RENDITION_EXT

    rendering = Rendering(fmt)
    with contextlib.ExitStack() as stack:
        try:
            rendering.out = stack.enter_context(
                ctx.workdir.temp_file(f".{RENDITION_EXT[fmt]}", expected_size=path.stat().st_size))
        except Exception as exc:  # no room, say: raised where the rendition is stored, as before
            rendering.error = exc
            rendering._done.set()
        if rendering.error is not None:
            yield rendering
            return
        worker = threading.Thread(target=_encode, args=(ctx, path, rendering), name="rendition", daemon=True)
        worker.start()
        try:
            yield rendering
        finally:
            worker.join()


def _encode(ctx: ArchiveContext, path: Path, rendering: Rendering) -> None:
    from worker.media.inspect import render_to_file

    try:
        assert rendering.out is not None
        render_to_file(path, rendering.fmt, ctx.settings.transcode.bitrate, rendering.out,
                       timeout=ctx.settings.limits.rendition_timeout.total_seconds())
        with open(rendering.out, "rb") as spool:
            rendering.sha256 = hashlib.file_digest(spool, "sha256").hexdigest()
    except BaseException as exc:  # handed to whoever stores the rendition
        rendering.error = exc
    finally:
        rendering._done.set()


def store_rendition(ctx: ArchiveContext, path: Path, prefix: str, account: AccountSettings,
                    recording: Recording, fmt: str, ahead: Rendering | None = None) -> StoredObject:
    """Transcode ``path`` to ``fmt`` and upload it as ``{prefix}rendition.{ext}``.

    ffmpeg writes the rendition into the work dir (as fast as the ffmpeg CLI alone; a pipe was
    measurably slower), then it is hashed, because every stored object carries its SHA-256 as user
    metadata, which S3 fixes when an upload starts. Raises ``TranscodeFailed`` (permanent) when
    ffmpeg fails or runs past ``limits.rendition_timeout``; nothing is uploaded then. A rendition
    already in place is never replaced (``storage.placement``); under ``[retention]`` it is written
    locked. ``ahead``: the encode already started by ``rendered_ahead`` (waited for here).
    """
    from worker.media.inspect import RENDITION_CONTENT_TYPE, RENDITION_EXT, render_to_file

    ext = RENDITION_EXT[fmt]
    key = f"{prefix}rendition.{ext}"
    content_type = RENDITION_CONTENT_TYPE[fmt]
    timeout = ctx.settings.limits.rendition_timeout.total_seconds()
    # room for the rendition first: never larger than its source at the bitrates offered (FLAC of
    # PCM, MP3/Opus of anything), so the source's size is the estimate
    with contextlib.ExitStack() as stack:
        if ahead is not None and ahead.fmt == fmt:
            spool_path, sha256 = ahead.wait()
        else:
            spool_path = stack.enter_context(ctx.workdir.temp_file(f".{ext}", expected_size=path.stat().st_size))
            render_to_file(path, fmt, ctx.settings.transcode.bitrate, spool_path, timeout=timeout)
            with open(spool_path, "rb") as spool:
                sha256 = hashlib.file_digest(spool, "sha256").hexdigest()
        size = spool_path.stat().st_size
        meta = s3_user_metadata(sha256=sha256, provider=account.provider, account=account.name,
                                recording_id=recording.recording_id)
        try:
            place_file(ctx.storage, key, spool_path, sha256=sha256, size=size, content_type=content_type,
                       metadata=meta, lock=lock_for(ctx.settings.retention))
        except OtherBytes:
            # another attempt's rendition of the same original (another ffmpeg build, say): never
            # replaced nor deleted; named as it stands once its bytes match their own sha256
            info, sha256 = verified(ctx.storage, key)
            size = info.size
    return StoredObject(ctx.storage.full_key(key), "rendition", content_type, size, sha256)
