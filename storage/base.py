"""The storage protocol: bytes and keys, nothing about vendors.

Keys handed to a backend are relative to the configured prefix (``convirza/acme/2026/02/14/1/…``);
``full_key`` gives the key as actually stored (bucket prefix included), which is what
``metadata.json`` records. Backends never overwrite a recording object: ``put_stream``/``put_file``
raise ``ObjectExists`` when the key is taken. Only ``put_bytes(..., overwrite=True)`` replaces, and it
is used for operational state under ``_state/`` alone.

A write may carry a ``WriteLock`` (retention mode, retain-until and legal hold): the backend applies
it in the same request that creates the object (S3 ``PutObject`` / ``CreateMultipartUpload``), so no
moment exists in which the object is stored but unlocked.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

__all__ = ["ObjectInfo", "Retention", "Storage", "UploadDigest", "WriteLock"]

#: the digest of an upload that a store checks against the bytes it receives (``storage._s3digest``)
UploadDigest = Literal["sha256", "md5", "none"]


@dataclass(frozen=True)
class Retention:
    mode: str  # "COMPLIANCE" | "GOVERNANCE"
    retain_until: datetime


@dataclass(frozen=True)
class WriteLock:
    """Object Lock applied when an object is created: ``retention`` (None: none) and a legal hold."""

    retention: Retention | None
    legal_hold: bool = False

    def __bool__(self) -> bool:
        return self.retention is not None or self.legal_hold


@dataclass(frozen=True)
class ObjectInfo:
    """What a backend knows of one stored object. ``metadata`` is the user metadata (lower-case keys)."""

    key: str
    size: int
    etag: str | None = None
    content_type: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    retention: Retention | None = None
    legal_hold: bool | None = None
    last_modified: datetime | None = None


class Storage(Protocol):
    """One storage backend (``s3``, ``local``). All methods are thread-safe."""

    #: the storage URL, safe to show (no credentials ever live in it)
    url: str
    #: whether retention is enforced by the store (S3 Object Lock) rather than recorded only
    enforces_retention: bool
    #: which digest of an uploaded file the store checks ("sha256", "md5" or "none"), so that the
    #: downloader computes exactly what will be used: MD5 only where the store verifies ``Content-MD5``
    upload_digest: UploadDigest

    def check(self, *, need_object_lock: bool = False, write: bool = True) -> None:
        """Prove the store is reachable and writable; ``StorageUnavailable`` (exit 3) if not.
        With ``need_object_lock``, a bucket without Object Lock is ``StorageUnavailable`` too.
        ``write=False`` proves it readable only and writes nothing (the auditing commands)."""
        ...

    def probe_upload_digest(self) -> UploadDigest:
        """Find out (writing at most two tiny probe objects) which digest of an upload the store checks,
        remember it as ``upload_digest`` and return it; ``check(write=True)`` does it too."""
        ...

    def full_key(self, key: str) -> str:
        """The key as stored, prefix included."""
        ...

    def head(self, key: str) -> ObjectInfo | None:
        """The object's info, or None if there is no object at ``key``."""
        ...

    def put_stream(
        self, key: str, stream: BinaryIO, *, content_type: str, metadata: Mapping[str, str],
        lock: WriteLock | None = None,
    ) -> ObjectInfo:
        """Store a (possibly non-seekable) stream with bounded memory; never overwrites."""
        ...

    def put_file(self, key: str, path: Path, *, content_type: str, metadata: Mapping[str, str],
                 lock: WriteLock | None = None, content_md5: str | None = None,
                 sha256: str | None = None) -> ObjectInfo:
        """Store a local file; never overwrites. ``sha256`` (hex) and ``content_md5`` (base64), when the
        caller hashed the file already (while downloading it), spare a second read and let the store
        check the bytes against the digest it verifies (``upload_digest``)."""
        ...

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        overwrite: bool = False,
        lock: WriteLock | None = None,
    ) -> ObjectInfo:
        """Store a small object; ``overwrite`` only for operational state (never with ``lock``)."""
        ...

    def read_bytes(self, key: str) -> bytes:
        """A small object's bytes (``metadata.json``, state); ``FileNotFoundError`` if absent."""
        ...

    def iter_bytes(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """A stored object's bytes, streamed; ``FileNotFoundError`` if absent."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (relative keys), in key order."""
        ...

    def delete(self, key: str) -> None:
        """Remove an uncommitted object (cleanup of a failed attempt); absent is fine."""
        ...

    def set_retention(self, key: str, retention: Retention) -> None:
        """Apply Object Lock retention (S3) or record it and make the file read-only (local)."""
        ...

    def set_legal_hold(self, key: str, on: bool) -> None:
        """Put or lift a legal hold."""
        ...

    def close(self) -> None:
        ...
