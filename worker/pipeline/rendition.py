"""Producing the compact rendition: ffmpeg encodes the spooled original into the work dir, and the
result is hashed and uploaded.

The original stays exactly as served; the rendition is a convenience copy (``rendition.{ext}``) with
its own SHA-256 in ``metadata.json``. Memory stays bounded: ffmpeg reads and writes files itself.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from storage.metadata import StoredObject, s3_user_metadata
from storage.placement import OtherBytes, lock_for, place_file, verified

if TYPE_CHECKING:
    from config.settings import AccountSettings
    from providers.base import Recording
    from worker.pipeline.context import ArchiveContext

__all__ = ["store_rendition"]


def store_rendition(ctx: ArchiveContext, path: Path, prefix: str, account: AccountSettings,
                    recording: Recording, fmt: str) -> StoredObject:
    """Transcode ``path`` to ``fmt`` and upload it as ``{prefix}rendition.{ext}``.

    ffmpeg writes the rendition into the work dir (as fast as the ffmpeg CLI alone; a pipe was
    measurably slower), then it is hashed, because every stored object carries its SHA-256 as user
    metadata, which S3 fixes when an upload starts. Raises ``TranscodeFailed`` (permanent) when
    ffmpeg fails or runs past ``limits.rendition_timeout``; nothing is uploaded then. A rendition
    already in place is never replaced (``storage.placement``); under ``[retention]`` it is written
    locked.
    """
    from worker.media.inspect import RENDITION_CONTENT_TYPE, RENDITION_EXT, render_to_file

    ext = RENDITION_EXT[fmt]
    key = f"{prefix}rendition.{ext}"
    content_type = RENDITION_CONTENT_TYPE[fmt]
    timeout = ctx.settings.limits.rendition_timeout.total_seconds()
    # room for the rendition first: never larger than its source at the bitrates offered (FLAC of
    # PCM, MP3/Opus of anything), so the source's size is the estimate
    with ctx.workdir.temp_file(f".{ext}", expected_size=path.stat().st_size) as spool_path:
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
