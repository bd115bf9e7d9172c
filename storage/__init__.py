"""Storage backends behind one protocol: ``s3`` (any S3-compatible endpoint) and ``local``."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from storage.base import ObjectInfo, Retention, Storage, WriteLock

if TYPE_CHECKING:
    from config.settings import StorageSettings

__all__ = ["ObjectInfo", "Retention", "Storage", "WriteLock", "open_storage"]


def open_storage(settings: StorageSettings) -> Storage:
    """The backend for ``settings.url``: ``s3://bucket/prefix``, ``file:///path`` or a plain path."""
    if urlsplit(settings.url).scheme == "s3":
        from storage.s3 import S3Storage

        return S3Storage.from_settings(settings)
    from storage.local import LocalStorage

    return LocalStorage.from_settings(settings)
