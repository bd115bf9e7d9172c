"""One exception tree for recarchive, split by what the caller should do.

::

    ArchiverError
     ├── RetryableError            try again later; the recording is not lost
     │    ├── RateLimited          429: wait ``retry_after`` seconds
     │    ├── Unavailable          5xx, connection refused, timeouts
     │    ├── Interrupted          body cut short / Content-Length mismatch
     │    ├── LinkExpired          410 / 403 / an expired-link page: resolve the link again
     │    └── TimedOut             a task ran past its soft time limit (a stalled transfer)
     ├── PermanentError            trying again will not help: park the recording
     │    ├── NotMedia             HTML, JSON, text or an empty body instead of media
     │    ├── CorruptMedia         bytes that do not decode
     │    ├── NoRecording          the vendor has no recording for this call
     │    │    └── Deleted         deleted at the vendor before we archived it (skipped, reported)
     │    ├── ChecksumMismatch     bytes differ from what the vendor announced
     │    ├── UnsafeURL            a media URL (or redirect) to a host the account does not allow
     │    ├── TooLarge             a body or header beyond our bounds
     │    ├── TranscodeFailed      ffmpeg could not produce the rendition (the original is kept)
     │    ├── BadRecordingId       an id that cannot become a key (``.``, ``..``, empty, too long)
     │    ├── InvalidRecord        the vendor's record of one recording is unusable (parked, the
     │    │                        account goes on)
     │    └── AccountError         the whole account's pass must stop (auth, malformed page)
     │         ├── AuthError
     │         └── BadVendorData
     ├── NotReady                  the vendor is still processing: re-check on a later pass
     │    └── FolderBusy           another attempt's uncommitted object holds the key: later
     ├── StorageError              storage refused or failed an operation
     │    ├── ObjectExists         the key is taken: we never overwrite
     │    ├── DiskError            a local disk failed (full, read-only, I/O): also a RetryableError,
     │    │    │                   so the recording is retried, then parked; never a traceback
     │    │    └── InsufficientSpace  the work dir cannot hold the recording
     │    └── StorageUnavailable   unreachable / access denied (exit 3)
     └── ConfigError               configuration or usage mistake (exit 2)

Foreign exceptions (httpx, botocore) are translated once, at the boundary that meets them
(``providers/_http.py``, ``worker/pipeline/fetch.py``, ``storage/s3.py``); nothing above catches them.
Messages never carry a token or a signed-URL query: build them from ``redact_url`` output.

``backoff_delay`` is the one back-off schedule (exponential, capped, with jitter) that every retry
loop uses: vendor calls, downloads, storage reads and Celery task retries.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = [
    "AccountError",
    "ArchiverError",
    "AuthError",
    "BadRecordingId",
    "BadVendorData",
    "ChecksumMismatch",
    "ConfigError",
    "CorruptMedia",
    "Deleted",
    "DiskError",
    "FolderBusy",
    "InsufficientSpace",
    "Interrupted",
    "InvalidRecord",
    "LinkExpired",
    "NoRecording",
    "NotMedia",
    "NotReady",
    "ObjectExists",
    "PermanentError",
    "RateLimited",
    "RetryableError",
    "StorageError",
    "StorageUnavailable",
    "TimedOut",
    "TooLarge",
    "TranscodeFailed",
    "Unavailable",
    "UnsafeURL",
    "UploadCorrupted",
    "backoff_delay",
]


def backoff_delay(attempt: int, base: float, cap: float, *, jitter: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry ``attempt`` (1-based): ``base * 2**(attempt-1)`` capped at ``cap``,
    then scaled into [50 %, 100 %] so that workers retrying together spread out."""
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    return float(delay * (0.5 + jitter() / 2))


class ArchiverError(Exception):
    """Base of every error recarchive raises on purpose.

    ``reason`` is a short stable slug (it lands in parked records, metrics labels and JSON output);
    ``recording_id`` names the recording concerned, when there is one.
    """

    reason = "error"

    def __init__(self, message: str, *, recording_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.recording_id = recording_id

    def __str__(self) -> str:
        if self.recording_id:
            return f"{self.message} (recording {self.recording_id})"
        return self.message


class RetryableError(ArchiverError):
    """A transient failure: the same request may succeed later."""

    reason = "retryable"


class RateLimited(RetryableError):
    """The vendor answered 429; ``retry_after`` is how long it asked us to wait, in seconds."""

    reason = "rate_limited"

    def __init__(
        self, message: str, *, retry_after: float | None = None, recording_id: str | None = None
    ) -> None:
        super().__init__(message, recording_id=recording_id)
        self.retry_after = retry_after


class Unavailable(RetryableError):
    reason = "unavailable"


class Interrupted(RetryableError):
    """The body stopped before its announced end; ``received`` bytes are good and can be resumed."""

    reason = "interrupted"

    def __init__(self, message: str, *, received: int = 0, recording_id: str | None = None) -> None:
        super().__init__(message, recording_id=recording_id)
        self.received = received


class LinkExpired(RetryableError):
    reason = "link_expired"


class TimedOut(RetryableError):
    """The task ran past its soft time limit (a stalled transfer): tried again later."""

    reason = "time_limit"


class PermanentError(ArchiverError):
    """Retrying the same thing will not help: the recording is parked with this reason."""

    reason = "permanent"


class NotMedia(PermanentError):
    reason = "not_media"


class CorruptMedia(PermanentError):
    reason = "corrupt_media"


class NoRecording(PermanentError):
    reason = "no_recording"


class Deleted(NoRecording):
    """Found deleted when its media was resolved (after a listing that showed it): reported as deleted."""

    reason = "deleted"


class ChecksumMismatch(PermanentError):
    reason = "checksum_mismatch"


class UnsafeURL(PermanentError):
    reason = "unsafe_url"


class TooLarge(PermanentError):
    reason = "too_large"


class TranscodeFailed(PermanentError):
    """ffmpeg could not produce the rendition; anything already streamed from it must be discarded."""

    reason = "transcode_failed"


class BadRecordingId(PermanentError):
    reason = "bad_recording_id"


class InvalidRecord(PermanentError):
    """The vendor's record of one recording cannot be used (a bad time, a missing media path): that
    recording is parked with the problem named; the account's pass goes on."""

    reason = "invalid_record"


class AccountError(PermanentError):
    """The account's whole pass stops (other accounts go on); the watermark does not move."""

    reason = "account_error"


class AuthError(AccountError):
    reason = "auth_failed"


class BadVendorData(AccountError):
    reason = "bad_vendor_data"


class NotReady(ArchiverError):
    """The vendor has not finished the recording; not a failure, re-checked on a later pass."""

    reason = "not_ready"


class FolderBusy(NotReady):
    """The recording's key holds an uncommitted object with other bytes, written by an attempt that
    may still be running: never replaced; the recording is tried again on a later pass."""

    reason = "folder_busy"


class StorageError(ArchiverError):
    reason = "storage_error"


class ObjectExists(StorageError):
    """The key already holds an object; recarchive never overwrites a stored object."""

    reason = "object_exists"


class DiskError(StorageError, RetryableError):
    """An ``OSError`` of a local disk (the work dir, a file storage): full, read-only, I/O error.

    Retryable because a disk fills and empties (other recordings finish, an operator frees space):
    the recording is retried with bounded retries, then parked, like any transient failure."""

    reason = "disk_error"


class UploadCorrupted(StorageError, RetryableError):
    """The store refused an upload whose bytes did not match the digest sent with it (``BadDigest``):
    they changed between the hash and the store (a broken link, a failing disk). Nothing was stored;
    retryable, since the next attempt sends the bytes again."""

    reason = "upload_corrupted"


class InsufficientSpace(DiskError):
    reason = "insufficient_space"


class StorageUnavailable(StorageError):
    """Storage cannot be reached or refuses our credentials: the run stops with exit 3."""

    reason = "storage_unavailable"


class ConfigError(ArchiverError):
    """A configuration or usage mistake; the message is one line naming the bad key (exit 2)."""

    reason = "config_error"
