"""``recarchive.archive``: download, verify and store one recording (commit, or stage for transcode)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from tasks.base import ArchiverTask
from worker.daemon.bodies import archive_task_body

__all__ = ["archive"]


@shared_task(bind=True, base=ArchiverTask, name="recarchive.archive")  # type: ignore[untyped-decorator]
def archive(self: ArchiverTask, account: str, recording: dict[str, Any], enqueued_at: float | None = None,
            force: bool = False) -> dict[str, Any]:
    self.observe_lag("download", enqueued_at)
    return self.settle(account, recording, lambda runtime, acct: archive_task_body(
        runtime.ctx, acct, recording, transcode=runtime.enqueue_transcode, force=force))
