"""What one worker process builds once and every task reuses: settings, ``ArchiveContext``, Redis.

Cached per process id (a prefork child builds its own after the fork: HTTP pools, boto3 clients and
Redis connections must never cross a fork) and per app.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from config.settings import AccountSettings, Settings
from providers.base import Recording
from worker.compliance.session import open_context
from worker.daemon.bodies import DaemonOptions, recording_to_payload, task_time_limits
from worker.daemon.metrics import MetricsHook
from worker.daemon.redis_coord import Coordinator, RedisLock
from worker.errors import ConfigError
from worker.pipeline.archive import Staged
from worker.pipeline.context import ArchiveContext, RetryPolicy

__all__ = ["Runtime", "reset_runtimes", "runtime_for"]


@dataclass
class Runtime:
    app: Any
    settings: Settings
    options: DaemonOptions
    coord: Coordinator
    ctx: ArchiveContext

    def account(self, name: str) -> AccountSettings:
        try:
            return self.settings.account(name)
        except KeyError:
            raise ConfigError(f"accounts: no account named {name!r} in this worker's config") from None

    def discovery_lock(self, account: AccountSettings) -> RedisLock:
        """Held for one pass; expires on its own if the pass dies (at most one schedule tick lost)."""
        every = self.settings.schedule.discover_every
        ttl = min(max(every, timedelta(minutes=2)), timedelta(hours=1))
        return self.coord.lock(account.name, ttl.total_seconds())

    @contextlib.contextmanager
    def archive_publisher(self) -> Iterator[Callable[[Recording], None]]:
        """``enqueue(recording)`` onto the ``download`` queue, with time limits scaled to its size."""
        from tasks.app import publisher

        with publisher(self.app, "download") as publish:
            def enqueue(recording: Recording) -> None:
                soft, hard = task_time_limits(recording, self.options)
                publish("recarchive.archive", kwargs={
                    "account": recording.account, "recording": recording_to_payload(recording),
                    "enqueued_at": time.time()}, soft_time_limit=soft, time_limit=hard)

            yield enqueue

    def enqueue_transcode(self, recording: Recording, staged: Staged) -> None:
        from tasks.app import publisher

        duration = recording.vendor_duration_seconds or 1800.0
        soft, hard = 300.0 + duration, 420.0 + duration
        ceiling = self.options.visibility_timeout * 0.9  # as task_time_limits: below the visibility timeout
        if ceiling >= 600 and hard > ceiling:
            soft, hard = ceiling - 60, ceiling
        with publisher(self.app, "transcode") as publish:
            publish("recarchive.transcode", kwargs={
                "account": recording.account, "recording": recording_to_payload(recording),
                "staged": staged.as_dict(), "enqueued_at": time.time()},
                soft_time_limit=round(soft), time_limit=round(hard))

    def close(self) -> None:
        self.ctx.close()
        self.coord.close()


_runtimes: dict[tuple[int, int], Runtime] = {}
_lock = threading.Lock()


def runtime_for(app: Any) -> Runtime:
    """The runtime of ``app`` in this process, built on first use."""
    from tasks.app import app_settings

    key = (os.getpid(), id(app))
    with _lock:
        runtime = _runtimes.get(key)
        if runtime is None:
            runtime = _build(app, app_settings(app))
            _runtimes[key] = runtime
        return runtime


def _build(app: Any, settings: Settings) -> Runtime:
    from worker.media.inspect import ensure_ffmpeg

    if not settings.broker.url.startswith(("redis://", "rediss://")):
        raise ConfigError(f"broker.url: the daemon needs a redis:// broker, got {settings.broker.url.split(':')[0]}://")
    ensure_ffmpeg(settings.transcode.rendition)
    options = DaemonOptions.from_env()
    every = settings.schedule.discover_every.total_seconds()
    # queued: as long as a message may wait; running: a lease shorter than one discovery interval,
    # renewed by the task's heartbeat, so a dead worker's recording is enqueued again by the next pass
    coord = Coordinator.from_url(settings.broker.url, dedupe_ttl=options.visibility_timeout + 2 * every,
                                 lease=lease_seconds(every))
    ctx = open_context(
        settings, concurrency=4,
        retry=RetryPolicy(max_attempts=options.attempts_per_task, park_on_exhaustion=False),
        limiter_factory=lambda account, rate: coord.limiter(account.name, rate),
        observers=[MetricsHook()],
    )
    try:
        # the pre-flight of ``recarchive run``: storage reachable, Object Lock on when retention is set
        ctx.storage.check(need_object_lock=settings.retention is not None)
    except BaseException:
        ctx.close()
        coord.close()
        raise
    return Runtime(app, settings, options, coord, ctx)


def lease_seconds(discover_every: float) -> float:
    """The running task's lease: half a discovery interval, between 2 s and 2 minutes, so a dead
    worker's recording is free again before the next pass but one."""
    return min(120.0, max(2.0, discover_every / 2))


def reset_runtimes() -> None:
    """Forget runtimes inherited through a fork (their connections belong to the parent)."""
    with _lock:
        for (pid, _), _runtime in list(_runtimes.items()):
            if pid != os.getpid():
                del _runtimes[(pid, _)]
