"""``recarchive.transcode``: add the rendition to a staged original and write the commit marker."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from tasks.base import ArchiverTask
from worker.daemon.bodies import transcode_task_body

__all__ = ["transcode"]


@shared_task(bind=True, base=ArchiverTask, name="recarchive.transcode")  # type: ignore[untyped-decorator]
def transcode(self: ArchiverTask, account: str, recording: dict[str, Any], staged: dict[str, Any],
              enqueued_at: float | None = None) -> dict[str, Any]:
    self.observe_lag("transcode", enqueued_at)
    return self.settle(account, recording,
                       lambda runtime, acct: transcode_task_body(runtime.ctx, acct, recording, staged))
