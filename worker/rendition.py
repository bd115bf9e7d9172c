"""Producing the compact rendition: ffmpeg's stdout streamed to storage while it is hashed.

The original stays exactly as served; the rendition is a convenience copy (``rendition.{ext}``) with
its own SHA-256 in ``metadata.json``. Memory stays bounded: ffmpeg reads the spooled file itself and
its output goes to a multipart upload in parts.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from storage.metadata import StoredObject, s3_user_metadata

if TYPE_CHECKING:
    from config.settings import AccountSettings
    from providers.base import Recording
    from worker.context import ArchiveContext

__all__ = ["HashingReader", "store_rendition"]


class HashingReader:
    """A read-only, non-seekable file-like view that hashes and counts what passes through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._sha: Any = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._sha.update(data)
        self.size += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    @property
    def sha256(self) -> str:
        return str(self._sha.hexdigest())


def store_rendition(ctx: ArchiveContext, path: Path, prefix: str, account: AccountSettings,
                    recording: Recording, fmt: str) -> StoredObject:
    """Transcode ``path`` to ``fmt`` and upload it as ``{prefix}rendition.{ext}``.

    ffmpeg's output is hashed while it is spooled to the work dir, because every stored object
    carries its SHA-256 as user metadata, which S3 fixes when an upload starts. Raises
    ``TranscodeFailed`` (permanent) when ffmpeg fails; nothing is uploaded then.
    """
    from worker.media import RENDITION_CONTENT_TYPE, RENDITION_EXT, rendition_stream

    ext = RENDITION_EXT[fmt]
    key = f"{prefix}rendition.{ext}"
    content_type = RENDITION_CONTENT_TYPE[fmt]
    with ctx.workdir.temp_file(f".{ext}") as spool_path:
        with rendition_stream(path, fmt, ctx.settings.transcode.bitrate) as stream, \
                open(spool_path, "wb") as spool:
            reader = HashingReader(stream)
            while chunk := reader.read(1024 * 1024):
                spool.write(chunk)
        meta = s3_user_metadata(sha256=reader.sha256, provider=account.provider, account=account.name,
                                recording_id=recording.recording_id)
        if ctx.storage.head(key) is not None:
            ctx.storage.delete(key)  # uncommitted leftover of a crashed attempt
        ctx.storage.put_file(key, spool_path, content_type=content_type, metadata=meta)
    return StoredObject(ctx.storage.full_key(key), "rendition", content_type, reader.size, reader.sha256)
