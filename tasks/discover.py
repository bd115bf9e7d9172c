"""``recarchive.discover``: one discovery pass for one account (sent by beat every discover_every)."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from tasks.base import ArchiverTask
from worker.daemon.bodies import discover_and_enqueue
from worker.daemon.gauges import account_health, observe_health
from worker.errors import ArchiverError
from worker.redact import mask_secrets

__all__ = ["discover"]

log = logging.getLogger("recarchive.tasks")


@shared_task(bind=True, base=ArchiverTask, name="recarchive.discover", max_retries=0, acks_late=False,  # type: ignore[untyped-decorator]
             ignore_result=False)
def discover(self: ArchiverTask, account: str) -> dict[str, Any]:
    """List the account's window and enqueue what is new; a failure waits for the next tick.

    Acked early, unlike the downloads: a pass lost with its worker is simply the next tick's work,
    and redelivering a stale pass hours later would only duplicate it. Its summary is kept as the
    task's result (the one task whose result is stored). Either way the account's gauges are set
    afterwards from the state in storage (``worker.daemon.gauges``).
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
    finally:
        _observe(runtime.ctx.storage, acct.name, acct.provider)


def _observe(storage: Any, account: str, provider: str) -> None:
    """The account's gauges after a pass; a storage hiccup here must not fail the pass."""
    try:
        observe_health(account_health(storage, account, provider))
    except (ArchiverError, OSError) as exc:
        log.warning("gauges of %s not updated: %s", account, mask_secrets(str(exc)))
