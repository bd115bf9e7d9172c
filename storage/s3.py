"""Any S3-compatible store as storage (AWS S3, MinIO, Ceph, ...), through boto3.

Credentials come from the standard AWS chain only (environment, profile, role), never from our
configuration. Every object is written with the configured storage class and server-side encryption
and with its user metadata; none is ever replaced: writes are conditional (``If-None-Match: *`` on
``PutObject`` and ``CompleteMultipartUpload``), so a racing writer gets ``ObjectExists`` from the store
itself, and ``put_stream``/``put_file`` also look for the key first so a taken key costs no upload.
A store that does not honour the condition is refused by ``check`` (``storage._s3check``).

Retention is enforced by the store (S3 Object Lock, ``enforces_retention = True``). A write with a
``WriteLock`` carries mode, retain-until and legal hold in the very request that creates the object;
the lock is read back (HEAD) and, where a store dropped it (multipart on some stores), applied at
once, before the object can be committed. ``set_retention`` and ``set_legal_hold`` (older
recordings, holds) read the lock state back and fail if the store did not keep it.

Every client call runs inside ``storage._s3errors.translated``: nothing above this module sees a
botocore exception.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.utils import determine_content_length

from storage._keypath import check_key, check_prefix, covers, whole_seconds
from storage._multipart import content_md5, upload_stream
from storage._s3check import check_bucket
from storage._s3digest import checksum_sha256, probe_upload_digest
from storage._s3errors import translated
from storage._s3lock import info_from_head, lock_args, missing_lock
from storage.base import ObjectInfo, Retention, UploadDigest, WriteLock
from worker.errors import ObjectExists, StorageError
from worker.redact import redact_url

if TYPE_CHECKING:
    from config.settings import StorageSettings

__all__ = ["DEFAULT_PART_SIZE", "S3Storage", "parse_s3_url"]

#: files up to this size go up in one conditional PUT, streamed from disk (S3 allows 5 GiB)
SINGLE_PUT_MAX = 256 * 1024 * 1024
#: bodies from this size on wait for the store's ``100 Continue`` before they are sent
CONTINUE_FROM = 1024 * 1024
DEFAULT_PART_SIZE = 8 * 1024 * 1024
DEFAULT_CONCURRENCY = 4
#: tries of a whole-object read whose body is cut mid-read (``read_bytes``)
_BODY_READ_ATTEMPTS = 3


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` -> (``bucket``, ``some/prefix``); slashes are normalised."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise StorageError(f"not an s3://bucket URL: {url!r}")
    prefix = "/".join(segment for segment in parts.path.split("/") if segment)
    if prefix:
        check_prefix(prefix)
    return parts.netloc, prefix


def _continue_only_for_large_bodies(params: dict[str, Any], **_: Any) -> None:
    """Drop ``Expect: 100-continue`` from writes of small bodies.

    botocore asks every ``PutObject`` / ``UploadPart`` to wait for the store's ``100 Continue`` before
    sending the body (it turns even a ``bytes`` body into a file object). That saves sending a large
    body the store would refuse (a taken key under ``If-None-Match``), but for the few hundred bytes
    of a ``metadata.json``, a manifest entry or an index entry it only adds a round trip to the store
    to each of them; above ``CONTINUE_FROM`` bytes the wait stays."""
    headers = params.get("headers") or {}
    if "Expect" not in headers:
        return
    body = params.get("body")
    size = determine_content_length(body) if body is not None else None
    if size is not None and size < CONTINUE_FROM:
        del headers["Expect"]


class S3Storage:
    """One bucket (and optional prefix) on an S3-compatible endpoint. Thread-safe (boto3 clients are)."""

    enforces_retention = True
    #: until ``check`` has probed the store: Content-MD5, which every S3-compatible store understands
    upload_digest: UploadDigest = "md5"

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = "",
        settings: StorageSettings | None = None,
        *,
        part_size: int = DEFAULT_PART_SIZE,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        single_put_max: int = SINGLE_PUT_MAX,
    ) -> None:
        """``client`` is a boto3 S3 client (injected by tests); ``settings`` give class and SSE.

        Memory per ``put_stream`` is about ``part_size * (max_concurrency + 1)``.
        """
        if part_size < 5 * 1024 * 1024:
            raise StorageError("part_size must be at least 5 MiB (the S3 minimum for a part)")
        self._client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.part_size = part_size
        self.max_concurrency = max(1, max_concurrency)
        self.single_put_max = single_put_max
        endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None) or "AWS S3"
        self.endpoint = redact_url(endpoint) if "://" in endpoint else endpoint
        self._extra: dict[str, Any] = {}
        if settings is not None:
            if settings.storage_class:
                self._extra["StorageClass"] = settings.storage_class
            if settings.sse:
                self._extra["ServerSideEncryption"] = settings.sse
            if settings.kms_key_id:
                self._extra["SSEKMSKeyId"] = settings.kms_key_id

    @classmethod
    def from_settings(
        cls,
        settings: StorageSettings,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_attempts: int = 8,
        part_size: int = DEFAULT_PART_SIZE,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        single_put_max: int = SINGLE_PUT_MAX,
    ) -> S3Storage:
        bucket, prefix = parse_s3_url(settings.url)
        config = Config(
            request_checksum_calculation="when_required",  # stores that reject the newer default checksums
            response_checksum_validation="when_required",
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=32,
            # a custom endpoint (MinIO, a compose service name) rarely resolves bucket.host names
            s3={"addressing_style": "path" if settings.endpoint_url else "auto",
                # every write carries Content-MD5, which the store checks: the body is not hashed a
                # second time for the signature (botocore's own choice over https; over plain http it
                # would read and SHA-256 every upload once more before sending it)
                "payload_signing_enabled": False},
        )
        client = boto3.session.Session().client(
            "s3", endpoint_url=settings.endpoint_url, region_name=settings.region, config=config
        )
        client.meta.events.register_last("before-call.s3", _continue_only_for_large_bodies)
        return cls(client, bucket, prefix, settings, part_size=part_size, max_concurrency=max_concurrency,
                   single_put_max=single_put_max)

    # ----------------------------------------------------------------- helpers

    def full_key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix + '/' if self.prefix else ''}{key}"

    def _errors(self, action: str, key: str = "", *, missing: bool = False) -> AbstractContextManager[None]:
        """The block's botocore exceptions as ours (``_s3errors.translated``)."""
        return translated(action, self._where(key), self.endpoint, missing=missing)

    def _write_args(self, content_type: str, metadata: Mapping[str, str],
                    lock: WriteLock | None = None) -> dict[str, Any]:
        for name, value in metadata.items():
            if not (name.isascii() and value.isascii()):
                raise StorageError(f"user metadata {name!r} must be ASCII (S3 sends it as an HTTP header)")
        return {"ContentType": content_type, "Metadata": {k.lower(): v for k, v in metadata.items()},
                **self._extra, **lock_args(lock)}

    @staticmethod
    def _exclusive(call: Callable[..., Any], kwargs: dict[str, Any]) -> Mapping[str, Any]:
        """``call`` made conditional on the key being free; the store's 412 becomes ``ObjectExists``
        (and a store without the feature ``StorageUnavailable``) in ``_s3errors.translate``."""
        return dict(call(**kwargs, IfNoneMatch="*"))

    def _refuse_existing(self, key: str) -> None:
        """Look before a long upload, so a taken key fails before any byte is read or sent."""
        if self.head(key) is not None:
            raise ObjectExists(f"{self._where(key)} already exists")

    def _locked(self, key: str, lock: WriteLock | None) -> None:
        """Read the lock of a just-written object back; apply what the store dropped (before any
        commit can name the object, so it is never committed unlocked)."""
        if not lock:
            return
        no_retention, no_hold = missing_lock(self.head(key), lock)
        if no_retention and lock.retention is not None:
            self.set_retention(key, lock.retention)
        if no_hold:
            self.set_legal_hold(key, True)

    # ----------------------------------------------------------------- checks

    def check(self, *, need_object_lock: bool = False, write: bool = True) -> None:
        """The bucket answers, has Object Lock if asked, and refuses a second conditional write.
        ``write=False`` (auditing: read-only credentials suffice) writes no probe object."""
        check_bucket(self._client, self.bucket, self.prefix, self.endpoint, self._extra,
                     need_object_lock=need_object_lock, write=write)
        if write:
            self.probe_upload_digest()

    def probe_upload_digest(self) -> UploadDigest:
        """Which digest the store checks on upload (``storage._s3digest``), remembered for every upload."""
        self.upload_digest = probe_upload_digest(self._client, self.bucket, self.prefix, self.endpoint, self._extra)
        return self.upload_digest

    # ----------------------------------------------------------------- reads

    def head(self, key: str) -> ObjectInfo | None:
        try:
            with self._errors("look up", key, missing=True):
                response = self._client.head_object(Bucket=self.bucket, Key=self.full_key(key))
        except FileNotFoundError:
            return None
        return info_from_head(key, response)

    def read_bytes(self, key: str) -> bytes:
        """The whole (small) object. A body cut or stalled mid-read is fetched again: botocore retries
        a request only until its headers arrive, and a ``metadata.json`` or state read failing on one
        dropped connection must not park a recording (a parked recording waits for a re-archive)."""
        for attempt in range(1, _BODY_READ_ATTEMPTS + 1):
            chunks = self.iter_bytes(key)  # request errors: already retried by botocore
            try:
                return b"".join(chunks)
            except StorageError:
                if attempt == _BODY_READ_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def iter_bytes(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """The object's bytes; the request is made now, so a missing object fails at the call."""
        try:
            with self._errors("read", key, missing=True):
                body = self._client.get_object(Bucket=self.bucket, Key=self.full_key(key))["Body"]
        except FileNotFoundError as exc:
            raise FileNotFoundError(key) from exc
        return self._chunks(key, body, chunk_size)

    def _chunks(self, key: str, body: Any, chunk_size: int) -> Iterator[bytes]:
        try:
            with self._errors("read", key):
                yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` with keys relative to the configured prefix, in key order."""
        check_prefix(prefix)
        base = f"{self.prefix}/" if self.prefix else ""
        return self._list(base, base + prefix)

    def _list(self, base: str, full_prefix: str) -> Iterator[ObjectInfo]:
        paginator = self._client.get_paginator("list_objects_v2")
        with self._errors("list", full_prefix[len(base):]):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix):
                for item in page.get("Contents", ()):
                    yield ObjectInfo(
                        key=item["Key"][len(base):], size=int(item.get("Size", 0)),
                        etag=str(item["ETag"]).strip('"') if item.get("ETag") else None,
                        last_modified=item.get("LastModified"),
                    )

    # ----------------------------------------------------------------- writes

    def put_stream(
        self, key: str, stream: BinaryIO, *, content_type: str, metadata: Mapping[str, str],
        lock: WriteLock | None = None,
    ) -> ObjectInfo:
        """Multipart upload of a (non-seekable) stream, bounded memory, never overwriting.

        Exceptions raised by the stream itself (a download cut short) pass through unchanged.
        """
        args = self._write_args(content_type, metadata, lock)
        self._refuse_existing(key)
        with self._errors("upload", key):
            result = upload_stream(
                self._client, bucket=self.bucket, key=self.full_key(key), stream=stream, extra=args,
                part_size=self.part_size, max_concurrency=self.max_concurrency, exclusive=self._exclusive,
            )
        self._locked(key, lock)
        return ObjectInfo(key=key, size=result.size, etag=result.etag, content_type=content_type,
                          metadata=dict(args["Metadata"]), last_modified=datetime.now(UTC))

    def put_file(self, key: str, path: Path, *, content_type: str, metadata: Mapping[str, str],
                 lock: WriteLock | None = None, content_md5: str | None = None,
                 sha256: str | None = None) -> ObjectInfo:
        """A local file: one conditional PUT streamed from disk up to ``SINGLE_PUT_MAX`` (what rclone
        and the AWS CLI do too: fewer requests, and the store checks ``If-None-Match`` itself), else
        parallel parts through ``put_stream``. The PUT carries the digest the store verifies
        (``upload_digest``, ``storage._s3digest``): ``sha256`` (hex) as ``x-amz-checksum-sha256``, or
        ``content_md5`` (base64) as ``Content-MD5``; either as the caller computed it while writing the
        file (the store refuses the upload if the bytes sent differ), else read here."""
        size = path.stat().st_size
        if size > self.single_put_max:
            with open(path, "rb") as handle:
                return self.put_stream(key, handle, content_type=content_type, metadata=metadata, lock=lock)
        args = self._write_args(content_type, metadata, lock)
        with open(path, "rb") as handle:
            request = {"Bucket": self.bucket, "Key": self.full_key(key), "Body": handle, "ContentLength": size,
                       **self._file_digest(handle, content_md5, sha256), **args}
            with self._errors("upload", key):
                response = self._exclusive(self._client.put_object, request)
        self._locked(key, lock)
        return ObjectInfo(key=key, size=size, etag=str(response.get("ETag", "")).strip('"') or None,
                          content_type=content_type, metadata=dict(args["Metadata"]), last_modified=datetime.now(UTC))

    def _file_digest(self, handle: BinaryIO, content_md5: str | None, sha256: str | None) -> dict[str, str]:
        """The digest arguments of a file's ``PutObject``: what the store checks, hashed here only if
        the caller did not (a second read of the file)."""
        if self.upload_digest != "md5":
            if sha256 is None:
                sha256 = hashlib.file_digest(handle, "sha256").hexdigest()  # type: ignore[arg-type]
                handle.seek(0)
            return {"ChecksumAlgorithm": "SHA256", "ChecksumSHA256": checksum_sha256(sha256)}
        if content_md5 is None:
            md5 = hashlib.file_digest(handle, lambda: hashlib.md5(usedforsecurity=False))  # type: ignore[arg-type]
            content_md5 = base64.b64encode(md5.digest()).decode("ascii")
            handle.seek(0)
        return {"ContentMD5": content_md5}

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
        if overwrite and lock:
            raise StorageError(f"{self._where(key)}: a locked object cannot be written as replaceable state")
        args = self._write_args(content_type, metadata or {}, lock)
        request = {"Bucket": self.bucket, "Key": self.full_key(key), "Body": bytes(data),
                   "ContentMD5": content_md5(data), **args}
        with self._errors("write", key):
            response = self._client.put_object(**request) if overwrite else self._exclusive(
                self._client.put_object, request)
        self._locked(key, lock)
        etag = response.get("ETag")
        return ObjectInfo(key=key, size=len(data), etag=str(etag).strip('"') if etag else None,
                          content_type=content_type, metadata=dict(args["Metadata"]),
                          last_modified=datetime.now(UTC))

    def delete(self, key: str) -> None:
        """Delete the current object (an uncommitted attempt); absent is fine.

        In a versioned bucket (every Object Lock bucket is) this only adds a delete marker: the
        locked versions stay, which is what Object Lock promises. Nothing here deletes a version.
        """
        try:
            with self._errors("delete", key, missing=True):
                self._client.delete_object(Bucket=self.bucket, Key=self.full_key(key))
        except FileNotFoundError:
            return

    # ----------------------------------------------------------------- object lock

    def set_retention(self, key: str, retention: Retention) -> None:
        """Apply Object Lock retention, then read it back; never shortens a running retention
        (a request already covered is a no-op; the store refuses a real shortening)."""
        wanted = Retention(retention.mode, whole_seconds(retention.retain_until))
        current = self._lock_state(key)
        if current is not None and covers(current.retention, wanted):
            return  # already retained at least this long (e.g. a re-run)
        with self._errors("set retention on", key):
            self._client.put_object_retention(
                Bucket=self.bucket, Key=self.full_key(key),
                Retention={"Mode": wanted.mode, "RetainUntilDate": wanted.retain_until},
            )
        current = self._lock_state(key)
        if current is None or not covers(current.retention, wanted):
            raise StorageError(f"{self._where(key)}: retention {wanted.mode} until "
                               f"{wanted.retain_until:%Y-%m-%dT%H:%M:%SZ} did not stick")

    def set_legal_hold(self, key: str, on: bool) -> None:
        """Put or lift a legal hold, then read it back."""
        status = "ON" if on else "OFF"
        with self._errors("set legal hold on", key):
            self._client.put_object_legal_hold(
                Bucket=self.bucket, Key=self.full_key(key), LegalHold={"Status": status}
            )
        current = self._lock_state(key)
        if current is None or bool(current.legal_hold) != on:
            raise StorageError(f"{self._where(key)}: legal hold {status} did not stick")

    def _lock_state(self, key: str) -> ObjectInfo | None:
        """The object's lock state as the store reports it on HEAD (read-back; moto and several
        S3-compatible stores lack GetObjectRetention, every one answers HEAD)."""
        try:
            return self.head(key)
        except StorageError:
            return None

    def close(self) -> None:
        close = getattr(self._client, "close", None)
        if callable(close):
            close()
