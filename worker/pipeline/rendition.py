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
    ffmpeg fails; nothing is uploaded then.
    """
    from worker.media.inspect import RENDITION_CONTENT_TYPE, RENDITION_EXT, render_to_file

    ext = RENDITION_EXT[fmt]
    key = f"{prefix}rendition.{ext}"
    content_type = RENDITION_CONTENT_TYPE[fmt]
    with ctx.workdir.temp_file(f".{ext}") as spool_path:
        render_to_file(path, fmt, ctx.settings.transcode.bitrate, spool_path)
        with open(spool_path, "rb") as spool:
            sha256 = hashlib.file_digest(spool, "sha256").hexdigest()
        size = spool_path.stat().st_size
        meta = s3_user_metadata(sha256=sha256, provider=account.provider, account=account.name,
                                recording_id=recording.recording_id)
        if ctx.storage.head(key) is not None:
            ctx.storage.delete(key)  # uncommitted leftover of a crashed attempt
        ctx.storage.put_file(key, spool_path, content_type=content_type, metadata=meta)
    return StoredObject(ctx.storage.full_key(key), "rendition", content_type, size, sha256)
