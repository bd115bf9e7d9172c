"""Turning a recording-level error into its outcome: the one place that decides park or raise."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from config.settings import AccountSettings
from providers.base import Recording
from worker.errors import (
    AccountError,
    ArchiverError,
    BadVendorData,
    DiskError,
    InvalidRecord,
    NoRecording,
    NotReady,
    RetryableError,
    StorageUnavailable,
)
from worker.pipeline.context import ArchiveContext
from worker.pipeline.parking import park
from worker.pipeline.results import ArchiveResult, Outcome
from worker.redact import mask_secrets

__all__ = ["settled"]


@contextlib.contextmanager
def settled(ctx: ArchiveContext, account: AccountSettings, recording: Recording, result: ArchiveResult,
             started: float) -> Iterator[None]:
    """Turn a recording-level error into the result's outcome (parked, not ready, no recording);
    let through only what must stop more than this recording."""
    try:
        yield
    except NotReady:
        result.outcome = Outcome.NOT_READY
    except NoRecording as exc:
        result.outcome = Outcome.DELETED if exc.reason == "deleted" else Outcome.NO_RECORDING
        result.message = mask_secrets(str(exc))
    except BadVendorData as exc:
        # the vendor's answer about this one recording (its media link, its detail) is unusable:
        # that parks the recording; only a bad listing or bad credentials stop the account
        _park(ctx, account, recording, InvalidRecord(exc.message, recording_id=recording.recording_id), result)
    except (AccountError, StorageUnavailable):
        raise
    except RetryableError as exc:
        if not ctx.retry.park_on_exhaustion:
            raise
        _park(ctx, account, recording, exc, result)
    except ArchiverError as exc:
        _park(ctx, account, recording, exc, result)
    except OSError as exc:
        # the work dir's disk (spool, rendition): full, read-only, an I/O error. Retryable for this
        # recording (the daemon retries the task, then parks; run parks it), never a traceback
        error = DiskError(f"local disk error: {exc.strerror or type(exc).__name__}",
                          recording_id=recording.recording_id)
        if not ctx.retry.park_on_exhaustion:
            raise error from exc
        _park(ctx, account, recording, error, result)
    finally:
        result.seconds = time.monotonic() - started


def _park(ctx: ArchiveContext, account: AccountSettings, recording: Recording, exc: ArchiverError,
          result: ArchiveResult) -> None:
    result.outcome = Outcome.PARKED
    result.reason = exc.reason
    result.message = park(ctx, account, recording, exc, attempts=ctx.retry.max_attempts)
