"""The one base class of recarchive's Celery tasks: the cross-cutting parts, so tasks stay ~5 lines.

``settle`` maps what the pipeline raises to what the queue should do (DESIGN: tasks only react):

- ``RetryableError`` (429, 5xx, cut, expired link), an unreachable storage or a soft time limit →
  ``self.retry`` with exponential backoff and jitter, or the vendor's ``Retry-After`` when it gave
  one; on the last retry the recording is parked with its reason (storage outages are not parked:
  there is nowhere to write that down — the task fails and the next discovery pass re-enqueues).
- ``PermanentError`` → already parked by ``archive_recording``; one raised before the pipeline ran
  is parked here.
- ``NotReady`` → an outcome, not an error: the task finishes and the next discovery pass lists the
  recording again (no tight retry loop).
- ``AccountError`` → logged and raised: the task fails clearly, the next pass tries again.

It also reports metrics (queue lag, outcomes, failures), holds the recording's enqueue dedupe key as
a short lease renewed by a heartbeat while the work runs (a dead worker's recording is enqueued again
by the next discovery pass, not after the visibility timeout) and releases it once the work is
finished for good.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from config.settings import AccountSettings
from tasks.runtime import Runtime, runtime_for
from worker.daemon.bodies import DaemonOptions, park_exhausted
from worker.daemon.metrics import metrics
from worker.errors import (
    AccountError,
    ArchiverError,
    PermanentError,
    RateLimited,
    RetryableError,
    StorageUnavailable,
    TimedOut,
    backoff_delay,
)
from worker.pipeline.archive import ArchiveResult, Outcome
from worker.redact import mask_secrets

__all__ = ["ArchiverTask", "TimedOut"]

log = logging.getLogger("recarchive.tasks")



class ArchiverTask(Task):  # type: ignore[misc]
    acks_late = True
    reject_on_worker_lost = True
    max_retries = 5  # the bound actually used is DaemonOptions.max_retries (RECARCHIVE_MAX_RETRIES)

    def runtime(self) -> Runtime:
        return runtime_for(self.app)

    def observe_lag(self, queue: str, enqueued_at: float | None) -> None:
        if enqueued_at and not self.request.retries:
            metrics().queue_lag.labels(queue).observe(max(0.0, time.time() - float(enqueued_at)))

    def settle(self, account_name: str, payload: dict[str, Any],
               work: Callable[[Runtime, AccountSettings], ArchiveResult]) -> dict[str, Any]:
        """Run ``work`` (one ``worker.daemon.bodies`` function) and map its errors; return the result as JSON."""
        try:
            runtime = self.runtime()
        except StorageUnavailable as exc:  # the worker's pre-flight: storage down, nothing to do yet
            log.warning("storage unavailable: %s", mask_secrets(str(exc)), extra={"account": account_name})
            if self.request.retries >= DaemonOptions.from_env().max_retries:
                raise
            raise self.retry(exc=exc, countdown=self.countdown(exc, DaemonOptions.from_env())) from None
        account = runtime.account(account_name)
        rid = str(payload.get("recording_id"))
        try:
            try:
                with runtime.coord.dedupe.heartbeat(account.name, rid):  # a lease while it runs
                    result = work(runtime, account)
            except SoftTimeLimitExceeded:
                raise TimedOut("the task ran past its soft time limit", recording_id=rid) from None
        except AccountError as exc:
            self._count_failure(account, exc)
            log.error("account %s: %s", account.name, mask_secrets(str(exc)),
                      extra={"account": account.name, "recording_id": rid, "reason": exc.reason})
            runtime.coord.dedupe.release(account.name, rid)
            raise
        except (RetryableError, StorageUnavailable) as exc:
            result = self._retry_or_park(runtime, account, payload, exc)
        except PermanentError as exc:
            self._count_failure(account, exc)
            result = park_exhausted(runtime.ctx, account, payload, exc, self.request.retries + 1)
        self._finish(runtime, account, result)
        return result.as_dict()

    def _retry_or_park(self, runtime: Runtime, account: AccountSettings, payload: dict[str, Any],
                       exc: ArchiverError) -> ArchiveResult:
        self._count_failure(account, exc)
        limit = runtime.options.max_retries
        rid = str(payload.get("recording_id"))
        if self.request.retries < limit:
            countdown = self.countdown(exc, runtime.options)
            log.info("%s/%s: %s; retry %d of %d in %.1fs", account.name, rid, mask_secrets(str(exc)),
                     self.request.retries + 1, limit, countdown,
                     extra={"account": account.name, "recording_id": rid, "reason": exc.reason})
            # the retry waits its countdown unseen by discovery: hold the marker that long, no longer
            runtime.coord.dedupe.hold(account.name, rid, countdown + runtime.coord.dedupe.lease_ms / 1000)
            raise self.retry(exc=exc, countdown=countdown, max_retries=limit)
        if isinstance(exc, StorageUnavailable):
            runtime.coord.dedupe.release(account.name, rid)
            raise exc
        return park_exhausted(runtime.ctx, account, payload, exc, self.request.retries + 1)

    def countdown(self, exc: ArchiverError, options: DaemonOptions) -> float:
        """The vendor's Retry-After when it gave one, else exponential backoff; both with jitter so
        retries of many recordings do not arrive together. Never past half the visibility timeout: a
        countdown longer than it would have the broker deliver the waiting retry a second time."""
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            wait = float(exc.retry_after) * (1 + random.random() / 4)
        else:
            wait = backoff_delay(self.request.retries + 1, options.retry_backoff, options.retry_backoff_max)
        return min(wait, options.visibility_timeout / 2)

    def _count_failure(self, account: AccountSettings, exc: ArchiverError) -> None:
        metrics().failures.labels(account.name, exc.reason).inc()

    def _finish(self, runtime: Runtime, account: AccountSettings, result: ArchiveResult) -> None:
        m = metrics()
        m.recordings.labels(account.name, account.provider, str(result.outcome)).inc()
        if result.outcome is Outcome.NOT_READY:
            m.not_ready.labels(account.name).inc()
        elif result.outcome in (Outcome.ARCHIVED, Outcome.REVISION, Outcome.STAGED):
            m.download_seconds.labels(account.name).observe(result.seconds)
        if result.outcome is not Outcome.STAGED:  # a staged recording's key is released by its transcode
            runtime.coord.dedupe.release(account.name, result.recording_id)
        else:  # queued again (for its transcode): as long as a queued message may wait
            runtime.coord.dedupe.hold(account.name, result.recording_id, runtime.coord.dedupe.ttl)
        log.info("%s/%s: %s", account.name, result.recording_id, result.outcome,
                 extra={"account": account.name, "provider": account.provider,
                        "recording_id": result.recording_id, "outcome": str(result.outcome),
                        "reason": result.reason})
