"""Any S3-compatible store as storage (AWS S3, MinIO, Ceph, ...), through boto3.

Credentials come from the standard AWS chain only (environment, profile, role), never from our
configuration. Every object is written with the configured storage class and server-side encryption
and with its user metadata; none is ever replaced: writes are conditional (``If-None-Match: *`` on
``PutObject`` and ``CompleteMultipartUpload``), so a racing writer gets ``ObjectExists`` from the store
itself, and ``put_stream``/``put_file`` also look for the key first so a taken key costs no upload.
Stores that answer ``NotImplemented`` to the condition fall back to a look-first check (remembered).

Retention is enforced by the store (S3 Object Lock, ``enforces_retention = True``): ``set_retention``
and ``set_legal_hold`` read the object's lock state back and fail if the store did not keep it.

Every botocore exception is translated in ``storage._s3errors``: nothing above this module sees one.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from storage._keypath import check_key, check_prefix, covers, whole_seconds
from storage._multipart import content_md5, upload_stream
from storage._s3errors import error_code, is_not_found, is_not_implemented, translate
from storage.base import ObjectInfo, Retention
from worker.errors import ObjectExists, StorageError, StorageUnavailable
from worker.redact import redact_url

if TYPE_CHECKING:
    from config.settings import StorageSettings

__all__ = ["DEFAULT_PART_SIZE", "S3Storage", "parse_s3_url"]

#: files up to this size go up in one conditional PUT, streamed from disk (S3 allows 5 GiB)
SINGLE_PUT_MAX = 256 * 1024 * 1024
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


class S3Storage:
    """One bucket (and optional prefix) on an S3-compatible endpoint. Thread-safe (boto3 clients are)."""

    enforces_retention = True

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
        self._conditional = True  # cleared if the store answers NotImplemented to If-None-Match
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
            s3={"addressing_style": "path" if settings.endpoint_url else "auto"},
        )
        client = boto3.session.Session().client(
            "s3", endpoint_url=settings.endpoint_url, region_name=settings.region, config=config
        )
        return cls(client, bucket, prefix, settings, part_size=part_size, max_concurrency=max_concurrency,
                   single_put_max=single_put_max)

    # ----------------------------------------------------------------- helpers

    def full_key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix + '/' if self.prefix else ''}{key}"

    def _fail(self, exc: BaseException, action: str, key: str = "") -> NoReturn:
        raise translate(exc, action=action, where=self._where(key), endpoint=self.endpoint) from exc

    def _write_args(self, content_type: str, metadata: Mapping[str, str]) -> dict[str, Any]:
        for name, value in metadata.items():
            if not (name.isascii() and value.isascii()):
                raise StorageError(f"user metadata {name!r} must be ASCII (S3 sends it as an HTTP header)")
        return {"ContentType": content_type, "Metadata": {k.lower(): v for k, v in metadata.items()},
                **self._extra}

    def _exclusive(self, call: Callable[..., Any], kwargs: dict[str, Any]) -> Mapping[str, Any]:
        """``call`` made conditional on the key being free; a 412 becomes ``ObjectExists`` upstream."""
        if self._conditional:
            try:
                return dict(call(**kwargs, IfNoneMatch="*"))
            except ClientError as exc:
                if not is_not_implemented(exc):
                    raise
                self._conditional = False
        if self._exists(kwargs["Key"]):
            raise ObjectExists(f"s3://{self.bucket}/{kwargs['Key']} already exists")
        return dict(call(**kwargs))

    def _exists(self, full: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=full)
        except ClientError as exc:
            if is_not_found(exc):
                return False
            raise
        return True

    def _refuse_existing(self, key: str) -> None:
        """Look before a long upload, so a taken key fails before any byte is read or sent."""
        try:
            taken = self._exists(self.full_key(key))
        except (BotoCoreError, ClientError) as exc:
            self._fail(exc, "look up", key)
        if taken:
            raise ObjectExists(f"{self._where(key)} already exists")

    # ----------------------------------------------------------------- checks

    def check(self, *, need_object_lock: bool = False, write: bool = True) -> None:
        """The bucket answers, takes a small object under ``_state/`` and (if asked) has Object Lock.
        ``write=False`` (auditing: read-only credentials suffice) skips the probe object."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
                raise StorageUnavailable(f"bucket {self.bucket} does not exist at {self.endpoint}") from exc
            self._fail(exc, "reach bucket")
        except BotoCoreError as exc:
            self._fail(exc, "reach bucket")
        lock = self._lock_configuration(required=need_object_lock)
        if need_object_lock and (lock is None or lock.get("ObjectLockEnabled") != "Enabled"):
            raise StorageUnavailable(f"bucket {self.bucket} has no Object Lock but [retention] is configured")
        if lock is not None and lock.get("Rule"):
            return  # a probe under default retention could never be deleted again: skip the write test
        if write:
            self._probe_write()

    def _lock_configuration(self, *, required: bool) -> Mapping[str, Any] | None:
        try:
            response = self._client.get_object_lock_configuration(Bucket=self.bucket)
        except ClientError as exc:
            if error_code(exc) == "ObjectLockConfigurationNotFoundError" or not required:
                return None
            self._fail(exc, "read the Object Lock configuration of")
        except BotoCoreError as exc:
            self._fail(exc, "read the Object Lock configuration of")
        configuration: Mapping[str, Any] = response.get("ObjectLockConfiguration") or {}
        return configuration

    def _probe_write(self) -> None:
        probe = f"{self.prefix + '/' if self.prefix else ''}_state/.probe-{uuid.uuid4().hex}"
        try:
            response = self._client.put_object(
                Bucket=self.bucket, Key=probe, Body=b"probe", ContentMD5=content_md5(b"probe"), **self._extra
            )
            extra = {"VersionId": response["VersionId"]} if response.get("VersionId") else {}
            self._client.delete_object(Bucket=self.bucket, Key=probe, **extra)
        except (BotoCoreError, ClientError) as exc:
            self._fail(exc, "write a probe object to", "_state/")

    # ----------------------------------------------------------------- reads

    def head(self, key: str) -> ObjectInfo | None:
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=self.full_key(key))
        except ClientError as exc:
            if is_not_found(exc):
                return None
            self._fail(exc, "look up", key)
        except BotoCoreError as exc:
            self._fail(exc, "look up", key)
        return _info(key, response)

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
            body = self._client.get_object(Bucket=self.bucket, Key=self.full_key(key))["Body"]
        except ClientError as exc:
            if is_not_found(exc):
                raise FileNotFoundError(key) from exc
            self._fail(exc, "read", key)
        except BotoCoreError as exc:
            self._fail(exc, "read", key)
        return self._chunks(key, body, chunk_size)

    def _chunks(self, key: str, body: Any, chunk_size: int) -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(chunk_size)
        except (BotoCoreError, ClientError) as exc:
            self._fail(exc, "read", key)
        finally:
            body.close()

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` with keys relative to the configured prefix, in key order."""
        check_prefix(prefix)
        base = f"{self.prefix}/" if self.prefix else ""
        return self._list(base, base + prefix)

    def _list(self, base: str, full_prefix: str) -> Iterator[ObjectInfo]:
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix):
                for item in page.get("Contents", ()):
                    yield ObjectInfo(
                        key=item["Key"][len(base):], size=int(item.get("Size", 0)),
                        etag=str(item["ETag"]).strip('"') if item.get("ETag") else None,
                        last_modified=item.get("LastModified"),
                    )
        except (BotoCoreError, ClientError) as exc:
            self._fail(exc, "list", full_prefix[len(base):])

    # ----------------------------------------------------------------- writes

    def put_stream(
        self, key: str, stream: BinaryIO, *, content_type: str, metadata: Mapping[str, str]
    ) -> ObjectInfo:
        """Multipart upload of a (non-seekable) stream, bounded memory, never overwriting.

        Exceptions raised by the stream itself (a download cut short) pass through unchanged.
        """
        args = self._write_args(content_type, metadata)
        self._refuse_existing(key)
        try:
            result = upload_stream(
                self._client, bucket=self.bucket, key=self.full_key(key), stream=stream, extra=args,
                part_size=self.part_size, max_concurrency=self.max_concurrency, exclusive=self._exclusive,
            )
        except (BotoCoreError, ClientError) as exc:
            self._fail(exc, "upload", key)
        return ObjectInfo(key=key, size=result.size, etag=result.etag, content_type=content_type,
                          metadata=dict(args["Metadata"]), last_modified=datetime.now(UTC))

    def put_file(self, key: str, path: Path, *, content_type: str, metadata: Mapping[str, str]) -> ObjectInfo:
        """A local file: one conditional PUT streamed from disk up to ``SINGLE_PUT_MAX`` (what rclone
        and the AWS CLI do too: fewer requests, and the store checks ``If-None-Match`` itself), else
        parallel parts through ``put_stream``."""
        size = path.stat().st_size
        if size > self.single_put_max or not self._conditional:
            with open(path, "rb") as handle:
                return self.put_stream(key, handle, content_type=content_type, metadata=metadata)
        args = self._write_args(content_type, metadata)
        with open(path, "rb") as handle:
            digest = hashlib.md5(usedforsecurity=False)
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)
            handle.seek(0)
            request = {"Bucket": self.bucket, "Key": self.full_key(key), "Body": handle, "ContentLength": size,
                       "ContentMD5": base64.b64encode(digest.digest()).decode("ascii"), **args}
            try:
                response = self._exclusive(self._client.put_object, request)
            except (BotoCoreError, ClientError) as exc:
                self._fail(exc, "upload", key)
        return ObjectInfo(key=key, size=size, etag=str(response.get("ETag", "")).strip('"') or None,
                          content_type=content_type, metadata=dict(args["Metadata"]), last_modified=datetime.now(UTC))

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        overwrite: bool = False,
    ) -> ObjectInfo:
        args = self._write_args(content_type, metadata or {})
        request = {"Bucket": self.bucket, "Key": self.full_key(key), "Body": bytes(data),
                   "ContentMD5": content_md5(data), **args}
        try:
            response = self._client.put_object(**request) if overwrite else self._exclusive(
                self._client.put_object, request)
        except (BotoCoreError, ClientError) as exc:
            self._fail(exc, "write", key)
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
            self._client.delete_object(Bucket=self.bucket, Key=self.full_key(key))
        except ClientError as exc:
            if is_not_found(exc):
                return
            self._fail(exc, "delete", key)
        except BotoCoreError as exc:
            self._fail(exc, "delete", key)

    # ----------------------------------------------------------------- object lock

    def set_retention(self, key: str, retention: Retention) -> None:
        """Apply Object Lock retention, then read it back; never shortens a running retention
        (a request already covered is a no-op; the store refuses a real shortening)."""
        wanted = Retention(retention.mode, whole_seconds(retention.retain_until))
        full = self.full_key(key)
        try:
            self._client.put_object_retention(
                Bucket=self.bucket, Key=full,
                Retention={"Mode": wanted.mode, "RetainUntilDate": wanted.retain_until},
            )
        except (BotoCoreError, ClientError) as exc:
            current = self._lock_state(key)
            if current is not None and covers(current.retention, wanted):
                return  # already retained at least this long (e.g. a re-run)
            self._fail(exc, "set retention on", key)
        current = self._lock_state(key)
        if current is None or not covers(current.retention, wanted):
            raise StorageError(f"{self._where(key)}: retention {wanted.mode} until "
                               f"{wanted.retain_until:%Y-%m-%dT%H:%M:%SZ} did not stick")

    def set_legal_hold(self, key: str, on: bool) -> None:
        """Put or lift a legal hold, then read it back."""
        status = "ON" if on else "OFF"
        try:
            self._client.put_object_legal_hold(
                Bucket=self.bucket, Key=self.full_key(key), LegalHold={"Status": status}
            )
        except (BotoCoreError, ClientError) as exc:
            self._fail(exc, "set legal hold on", key)
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


def _info(key: str, response: Mapping[str, Any]) -> ObjectInfo:
    retention = None
    if response.get("ObjectLockMode") and response.get("ObjectLockRetainUntilDate"):
        until = response["ObjectLockRetainUntilDate"]
        if isinstance(until, str):
            until = datetime.fromisoformat(until.replace("Z", "+00:00"))
        retention = Retention(str(response["ObjectLockMode"]), until.astimezone(UTC))
    hold = response.get("ObjectLockLegalHoldStatus")
    etag = response.get("ETag")
    return ObjectInfo(
        key=key,
        size=int(response.get("ContentLength", 0)),
        etag=str(etag).strip('"') if etag else None,
        content_type=response.get("ContentType"),
        metadata={str(k).lower(): str(v) for k, v in (response.get("Metadata") or {}).items()},
        retention=retention,
        legal_hold=None if hold is None else hold == "ON",
        last_modified=response.get("LastModified"),
    )
