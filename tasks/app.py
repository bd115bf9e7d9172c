"""The Celery app of the daemon: ``celery -A worker worker`` and ``celery -A worker beat``.

Nothing connects at import time. ``get_app()`` builds the app once; its configuration is a promise
(``add_defaults``) evaluated when Celery first needs it, from the config file named by
``RECARCHIVE_CONFIG`` (broker and result backend = ``[broker] url``, the beat schedule from
``[schedule]`` and ``[[accounts]]``). ``create_app(settings)`` builds an app from a ``Settings``
object instead (tests, embedding).

Celery rules of the design: queues ``discover`` / ``download`` / ``transcode`` so a long transcode
never starves discovery; late acks and requeue on a lost worker (a killed download is redelivered);
prefetch 1; a Redis visibility timeout longer than the longest download; JSON only.

Operations: task results are not stored (``task_ignore_result``: the outcome of an archive task is
the archive itself, and its counters and logs), except the discovery pass's summary, which is small,
one per account and tick, and what Flower and ``AsyncResult.get`` show. Task events are sent (the
``sent`` event included) so Flower and ``celery events`` see every task. A worker that consumes the
``discover`` queue sends each account's discovery once when it is ready (``worker_ready``), so a
fresh deployment, or one restarted after an outage, starts at once rather than one period later;
``RECARCHIVE_DISCOVER_AT_START=0`` turns that off.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

from celery import Celery, signals
from kombu.entity import Exchange, Queue

from config.settings import Settings
from worker.daemon.bodies import DaemonOptions
from worker.redact import mask_secrets

__all__ = ["DISCOVER_AT_START_ENV", "QUEUES", "TASK_ROUTES", "app_settings", "celery_config", "create_app", "get_app",
           "publisher", "send"]

log = logging.getLogger(__name__)

QUEUES = ("discover", "download", "transcode")
TASK_ROUTES = {
    "recarchive.discover": {"queue": "discover"},
    "recarchive.archive": {"queue": "download"},
    "recarchive.transcode": {"queue": "transcode"},
}
TASK_MODULES = ["tasks.discover", "tasks.archive", "tasks.transcode"]
#: ``0`` turns off the discovery a worker sends when it is ready
DISCOVER_AT_START_ENV = "RECARCHIVE_DISCOVER_AT_START"

_app: Celery | None = None


def celery_config(settings: Settings, options: DaemonOptions | None = None) -> dict[str, Any]:
    """The Celery settings for ``settings`` (plus the environment's ``DaemonOptions``)."""
    from tasks.schedule import beat_schedule

    options = options or DaemonOptions.from_env()
    timeout = options.visibility_timeout
    # a short timeout (tests, small deployments) needs the abandoned-message sweep to run as often
    restore_interval = max(1, min(10, int(timeout // 10)))
    transport = {
        "visibility_timeout": timeout,
        "unacked_restore_interval": restore_interval,
        "unacked_restore_throttle": 1 if timeout < 3600 else 10,
    }
    return {
        "broker_url": settings.broker.url,
        "result_backend": settings.broker.url,
        "broker_transport_options": transport,
        "result_backend_transport_options": {"visibility_timeout": timeout},
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "result_expires": 24 * 3600,
        "task_queues": [Queue(name, Exchange(name, type="direct"), routing_key=name)  # type: ignore[no-untyped-call]
                        for name in QUEUES],
        "task_default_queue": "download",
        "task_routes": TASK_ROUTES,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_track_started": True,
        "task_ignore_result": True,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_time_limit": 6 * 3600,
        "task_soft_time_limit": 6 * 3600 - 120,
        "worker_prefetch_multiplier": 1,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "enable_utc": True,
        "timezone": "UTC",
        "beat_schedule": beat_schedule(settings),
    }


def _configure_logging(loglevel: Any = None, **_: Any) -> None:
    """Our handler (secret filter, ``RECARCHIVE_LOG_FORMAT=json``) instead of Celery's."""
    from worker.logs import setup_logging

    level = loglevel if isinstance(loglevel, int) else logging.getLevelName(str(loglevel or "INFO").upper())
    setup_logging(level if isinstance(level, int) else logging.INFO)


def _start_metrics(**_: Any) -> None:
    from worker.daemon.metrics import serve

    serve()


def _first_discovery(sender: Any = None, **_: Any) -> None:
    """``worker_ready``: a worker that consumes ``discover`` sends every account's discovery once.

    Several such workers starting together send it several times; the per-account discovery lock
    and the enqueue dedupe make the extra passes cheap no-ops, as for two beats."""
    if os.environ.get(DISCOVER_AT_START_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return
    consumer = getattr(sender, "task_consumer", None)
    queues = {getattr(queue, "name", None) for queue in getattr(consumer, "queues", None) or ()}
    if queues and "discover" not in queues:
        return
    app = getattr(sender, "app", None) or get_app()
    try:
        settings = app_settings(app)
        every = settings.schedule.discover_every.total_seconds()
        with publisher(app, "discover") as publish:
            for account in settings.accounts:
                publish("recarchive.discover", args=[account.name], expires=every)
    except Exception as exc:  # a start-up nicety must never stop a worker
        log.error("first discovery at worker start not sent: %s", mask_secrets(str(exc)))
        return
    log.info("first discovery sent for %d account(s)", len(settings.accounts))


def _forget_runtime(**_: Any) -> None:
    """A forked pool child must not reuse its parent's HTTP or Redis connections."""
    from tasks.runtime import reset_runtimes

    reset_runtimes()


def create_app(settings: Settings | None = None, *, options: DaemonOptions | None = None) -> Celery:
    """A new app; configured from ``settings`` now, or lazily from ``RECARCHIVE_CONFIG``."""
    app = Celery("recarchive", include=TASK_MODULES, set_as_current=settings is None)
    if settings is not None:
        app.conf.update(celery_config(settings, options))
        app.recarchive_settings = settings
    else:
        def lazy() -> dict[str, Any]:
            from config import load_settings

            return celery_config(load_settings(), options)

        app.add_defaults(lazy)
    signals.setup_logging.connect(_configure_logging, weak=False, dispatch_uid="recarchive-logging")
    signals.worker_init.connect(_start_metrics, weak=False, dispatch_uid="recarchive-metrics")
    signals.worker_process_init.connect(_forget_runtime, weak=False, dispatch_uid="recarchive-fork")
    signals.worker_ready.connect(_first_discovery, weak=False, dispatch_uid="recarchive-first-discovery")
    return app


def get_app() -> Celery:
    """The process's app (``worker.app``), created on first use."""
    global _app
    if _app is None:
        _app = create_app()
    return _app


def app_settings(app: Celery) -> Settings:
    """The settings an app was built from, else those of ``RECARCHIVE_CONFIG``."""
    settings = getattr(app, "recarchive_settings", None)
    if settings is None:
        from config import load_settings

        settings = load_settings()
        app.recarchive_settings = settings
    assert isinstance(settings, Settings)
    return settings


@contextlib.contextmanager
def publisher(app: Celery, queue: str) -> Iterator[Callable[..., Any]]:
    """``publish(task_name, args=(), kwargs=None, **options)`` onto ``queue``, all through one producer
    (a discovery pass enqueues many tasks; one pooled connection serves them all)."""
    target = app.amqp.queues[queue]
    with app.producer_or_acquire() as producer:
        def publish(name: str, args: Any = (), kwargs: Any = None, **options: Any) -> Any:
            return app.send_task(name, args=args, kwargs=kwargs, queue=target, producer=producer, **options)

        yield publish


def send(app: Celery, name: str, *, args: Any = (), kwargs: Any = None, **options: Any) -> Any:
    """Send one task to the queue its name is routed to."""
    queue = str(TASK_ROUTES.get(name, {}).get("queue", "download"))
    with publisher(app, queue) as publish:
        return publish(name, args=args, kwargs=kwargs, **options)
