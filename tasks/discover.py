"""``recarchive.discover``: one discovery pass for one account (sent by beat every discover_every)."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from tasks.base import ArchiverTask
from worker.daemon.bodies import discover_and_enqueue
from worker.errors import ArchiverError
from worker.redact import mask_secrets

__all__ = ["discover"]

log = logging.getLogger("recarchive.tasks")


@shared_task(bind=True, base=ArchiverTask, name="recarchive.discover", max_retries=0, acks_late=False)  # type: ignore[untyped-decorator]
def discover(self: ArchiverTask, account: str) -> dict[str, Any]:
    """List the account's window and enqueue what is new; a failure waits for the next tick.

    Acked early, unlike the downloads: a pass lost with its worker is simply the next tick's work,
    and redelivering a stale pass hours later would only duplicate it.
    """
    runtime, acct = self.runtime(), self.runtime().account(account)
    try:
        with runtime.archive_publisher() as enqueue:
            lock = runtime.discovery_lock(acct)
            return discover_and_enqueue(runtime.ctx, acct, enqueue, lock, runtime.coord.dedupe).as_dict()
    except ArchiverError as exc:
        log.error("discovery of %s failed: %s", account, mask_secrets(str(exc)),
                  extra={"account": account, "reason": exc.reason})
        raise
