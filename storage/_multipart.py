"""Streamed, bounded-memory multipart upload that never overwrites.

Why not s3transfer's ``upload_fileobj``: it cannot send ``If-None-Match`` on the final
``CompleteMultipartUpload``, so two workers racing for one key could both "win" and the later one
would silently replace the first recording. Here the completion (or the single ``PutObject`` of a
small object) is conditional, and the store itself refuses the loser with 412.

Memory: at most ``max_concurrency`` parts are in flight and one more is being read, so a stream of any
length costs about ``part_size * (max_concurrency + 1)`` bytes; a single ``read()`` asks for at most
``part_size`` bytes. Every part carries ``Content-MD5`` (understood by every S3-compatible store, and
required by AWS for objects under Object Lock default retention) so a corrupted part is refused.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO

from worker.errors import StorageError

__all__ = ["MAX_PARTS", "Exclusive", "UploadResult", "content_md5", "read_part", "upload_stream"]

log = logging.getLogger(__name__)

MAX_PARTS = 10_000  # the S3 limit on parts per upload

#: runs ``call(**kwargs)`` so that it cannot replace an existing object (adds ``IfNoneMatch``)
Exclusive = Callable[[Callable[..., Any], dict[str, Any]], Mapping[str, Any]]


@dataclass(frozen=True)
class UploadResult:
    size: int
    etag: str | None
    version_id: str | None


def content_md5(data: bytes | bytearray | memoryview) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode("ascii")


def read_part(stream: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes: short only at the end of the stream (a pipe may return less per read)."""
    chunks: list[bytes] = []
    wanted = size
    while wanted > 0:
        chunk = stream.read(wanted)
        if not chunk:
            break
        chunks.append(chunk)
        wanted -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def upload_stream(
    client: Any,
    *,
    bucket: str,
    key: str,
    stream: BinaryIO,
    extra: Mapping[str, Any],
    part_size: int,
    max_concurrency: int,
    exclusive: Exclusive,
) -> UploadResult:
    """Store ``stream`` at ``key`` with ``extra`` arguments (content type, metadata, SSE, class).

    Raises whatever the stream or the client raise (the caller translates botocore's); a started
    multipart upload is aborted on any failure, so no orphan parts are left to bill for.
    """
    first = read_part(stream, part_size)
    if len(first) < part_size:  # the whole object fits one request
        response = exclusive(client.put_object, {
            "Bucket": bucket, "Key": key, "Body": first, "ContentMD5": content_md5(first), **extra,
        })
        return UploadResult(len(first), _etag(response), response.get("VersionId"))

    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, **extra)["UploadId"]
    try:
        parts, size = _send_parts(client, bucket, key, upload_id, first, stream, part_size, max_concurrency)
        response = exclusive(client.complete_multipart_upload, {
            "Bucket": bucket, "Key": key, "UploadId": upload_id, "MultipartUpload": {"Parts": parts},
        })
    except BaseException:
        _abort(client, bucket, key, upload_id)
        raise
    return UploadResult(size, _etag(response), response.get("VersionId"))


def _send_parts(
    client: Any, bucket: str, key: str, upload_id: str, first: bytes, stream: BinaryIO,
    part_size: int, max_concurrency: int,
) -> tuple[list[dict[str, Any]], int]:
    def send(number: int, data: bytes) -> dict[str, Any]:
        response = client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data,
            ContentMD5=content_md5(data),
        )
        return {"ETag": response["ETag"], "PartNumber": number}

    parts: list[dict[str, Any]] = []
    pending: deque[Future[dict[str, Any]]] = deque()
    size = 0
    number = 0
    data = first
    with ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="s3-part") as pool:
        try:
            while data:
                number += 1
                if number > MAX_PARTS:
                    raise StorageError(f"{key}: more than {MAX_PARTS} parts of {part_size} bytes")
                while len(pending) >= max_concurrency:  # bound memory: wait before holding more
                    parts.append(pending.popleft().result())
                size += len(data)
                pending.append(pool.submit(send, number, data))
                del data  # the part now lives only in its task
                data = read_part(stream, part_size)
            while pending:
                parts.append(pending.popleft().result())
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return parts, size


def _abort(client: Any, bucket: str, key: str, upload_id: str) -> None:
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception as exc:  # the original failure matters more; a lifecycle rule sweeps leftovers
        log.warning("could not abort multipart upload of %s: %s", key, type(exc).__name__)


def _etag(response: Mapping[str, Any]) -> str | None:
    etag = response.get("ETag")
    return str(etag).strip('"') if etag else None
