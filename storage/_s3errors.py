"""The one place botocore's exceptions become recarchive's (after s3fs's ``translate_boto_error``).

Nothing above ``storage/`` sees a ``botocore`` exception: ``storage/s3.py`` wraps every client call
and hands what it catches to ``translate``. Messages name the operation, the bucket/key and the
service's error code, never the service's own message for credential errors (AWS echoes the access
key id and the string to sign there) and never a signed URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from worker.errors import ObjectExists, StorageError, StorageUnavailable, UploadCorrupted
from worker.redact import mask_secrets

__all__ = [
    "BAD_DIGEST", "error_code", "is_not_found", "is_not_implemented", "is_precondition_failed", "translate",
    "translated",
]

#: codes meaning "these credentials may not use this bucket": the run stops (exit 3)
_DENIED = frozenset({
    "AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
    "InvalidToken", "TokenRefreshRequired", "AllAccessDisabled", "AccountProblem", "InvalidSecurity",
    "RequestTimeTooSkewed", "UnauthorizedAccess",
})
_NO_BUCKET = frozenset({"NoSuchBucket"})
_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound", "NoSuchVersion"})
#: a digest sent with the upload did not match the bytes the store received
BAD_DIGEST = frozenset({"BadDigest", "XAmzContentChecksumMismatch"})


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or exc.response.get("ResponseMetadata", {}).get(
        "HTTPStatusCode", "unknown"))


def _status(exc: ClientError) -> int:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if isinstance(status, int) else 0


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and (error_code(exc) in _NOT_FOUND or (
        _status(exc) == 404 and error_code(exc) not in _NO_BUCKET))


def is_precondition_failed(exc: BaseException) -> bool:
    """412, or AWS's 409 ``ConditionalRequestConflict``: another conditional write of the same key was
    under way. Either way the key is someone else's for now: the caller looks at what stands there
    (``storage.placement``), and writes again only if nothing does (the other writer failed)."""
    return isinstance(exc, ClientError) and (
        error_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict") or _status(exc) == 412)


def is_not_implemented(exc: BaseException) -> bool:
    """The store does not know a request feature (``If-None-Match`` on older S3-compatible servers)."""
    return isinstance(exc, ClientError) and (error_code(exc) == "NotImplemented" or _status(exc) == 501)


@contextmanager
def translated(action: str, where: str, endpoint: str, *, missing: bool = False) -> Iterator[None]:
    """Run the block's client calls with botocore's exceptions turned into ours (``translate``);
    with ``missing``, an absent object is ``FileNotFoundError(where)`` for the caller to map.

    The one ``except`` for botocore in ``storage/s3.py``: every client call sits in such a block."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        if missing and is_not_found(exc):
            raise FileNotFoundError(where) from exc
        raise translate(exc, action=action, where=where, endpoint=endpoint) from exc


def translate(exc: BaseException, *, action: str, where: str, endpoint: str) -> StorageError:
    """The ``StorageError`` for a botocore exception raised while doing ``action`` on ``where``.

    ``where`` is ``s3://bucket/key`` (no secret in it); ``endpoint`` is the redacted endpoint URL.
    Unreachable endpoints, missing buckets, refused credentials and server errors that outlived
    botocore's retries are ``StorageUnavailable``: the run cannot go on without its storage.
    """
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return StorageUnavailable(f"no usable AWS credentials for {where} (standard AWS chain): {action}")
    # refused, unresolvable, TLS failure, connect/read timeouts that outlived the retries; a body cut
    # mid-read (ResponseStreamingError) is a plain StorageError: the store itself answers
    if isinstance(exc, BotoConnectionError | ReadTimeoutError | ConnectionClosedError):
        return StorageUnavailable(f"cannot reach S3 endpoint {endpoint} to {action} {where}: "
                                  f"{type(exc).__name__}")
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = _status(exc)
        if is_precondition_failed(exc):
            return ObjectExists(f"{where} already exists")
        if code in BAD_DIGEST:
            return UploadCorrupted(f"S3 refused to {action} {where}: the bytes it received do not match the "
                                   f"digest sent with them ({code}); nothing was stored")
        if is_not_implemented(exc):
            return StorageUnavailable(f"S3 endpoint {endpoint} does not implement what {action} {where} "
                                      f"needs ({code}); conditional writes (If-None-Match) are required")
        if code in _NO_BUCKET:
            return StorageUnavailable(f"bucket of {where} does not exist at {endpoint}")
        if code in _DENIED or status == 403:
            return StorageUnavailable(f"access denied to {where} at {endpoint} ({action}: {code})")
        if status >= 500:
            return StorageUnavailable(f"S3 endpoint {endpoint} failed to {action} {where}: {code} ({status})")
        message = mask_secrets(str(exc.response.get("Error", {}).get("Message") or "")[:200])
        return StorageError(f"S3 refused to {action} {where}: {code}" + (f" ({message})" if message else ""))
    if isinstance(exc, BotoCoreError):
        return StorageError(f"S3 {action} {where} failed: {type(exc).__name__}")
    return StorageError(f"S3 {action} {where} failed: {type(exc).__name__}")
