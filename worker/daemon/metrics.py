"""Prometheus metrics of the daemon's workers.

The counters are created on first use (importing this module registers nothing) and exported by
``serve``, which the Celery app calls when a worker starts and ``RECARCHIVE_METRICS_PORT`` is set.

With the default prefork pool the tasks run in child processes: set ``PROMETHEUS_MULTIPROC_DIR``
(an empty, writable directory) in the worker's environment, before it starts, and the main process
serves the sum over its children. With ``--pool threads`` or ``solo`` nothing else is needed.

``MetricsHook`` is an ``ArchiveContext`` hook (``archived`` / ``parked`` events of the pipeline);
the task base class reports the rest (not ready, failures, queue lag, download time).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from config.settings import AccountSettings
from providers.base import Recording
from worker.errors import ArchiverError
from worker.pipeline.hooks import ArchiveHooks

__all__ = ["METRICS_ADDR_ENV", "METRICS_PORT_ENV", "MetricsHook", "metrics", "serve"]

log = logging.getLogger(__name__)

METRICS_PORT_ENV = "RECARCHIVE_METRICS_PORT"
METRICS_ADDR_ENV = "RECARCHIVE_METRICS_ADDR"
_LAG_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)
_DOWNLOAD_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 180, 600, 1800, 3600)


@dataclass(frozen=True)
class Metrics:
    archived: Any
    archived_bytes: Any
    failures: Any
    parked: Any
    not_ready: Any
    enqueued: Any
    queue_lag: Any
    download_seconds: Any
    recordings: Any


_metrics: Metrics | None = None
_lock = threading.Lock()


def metrics() -> Metrics:
    """The process's metric objects (created once, in the default registry)."""
    global _metrics
    with _lock:
        if _metrics is None:
            from prometheus_client import Counter, Histogram

            _metrics = Metrics(
                archived=Counter("recarchive_archived", "Recordings committed to the archive",
                                 ["account", "provider"]),
                archived_bytes=Counter("recarchive_archived_bytes", "Bytes of originals committed",
                                       ["account", "provider"]),
                failures=Counter("recarchive_failures", "Task failures and retries by reason",
                                 ["account", "reason"]),
                parked=Counter("recarchive_parked", "Recordings parked with a reason", ["account", "reason"]),
                not_ready=Counter("recarchive_not_ready", "Archive attempts that found the recording not ready",
                                  ["account"]),
                enqueued=Counter("recarchive_enqueued", "Archive tasks enqueued by discovery", ["account"]),
                queue_lag=Histogram("recarchive_queue_lag_seconds", "Seconds between enqueue and task start",
                                    ["queue"], buckets=_LAG_BUCKETS),
                download_seconds=Histogram("recarchive_download_seconds",
                                           "Seconds spent archiving one recording (download to commit)",
                                           ["account"], buckets=_DOWNLOAD_BUCKETS),
                recordings=Counter("recarchive_recordings", "Archive tasks finished, by outcome",
                                   ["account", "provider", "outcome"]),
            )
        return _metrics


class MetricsHook(ArchiveHooks):
    """Counts the pipeline's commits and parks (an ``ArchiveContext`` observer)."""

    def committed(self, account: AccountSettings, document: dict[str, Any], body: bytes) -> None:
        m = metrics()
        m.archived.labels(account.name, account.provider).inc()
        size = sum(int(o.get("size") or 0) for o in document.get("objects", []) if o.get("role") == "original")
        m.archived_bytes.labels(account.name, account.provider).inc(size)

    def parked(self, account: AccountSettings, recording: Recording, error: ArchiverError) -> None:
        metrics().parked.labels(account.name, error.reason).inc()


def serve(port: int | None = None, *, addr: str | None = None) -> bool:
    """Serve ``/metrics`` on ``port`` (default ``$RECARCHIVE_METRICS_PORT``) at ``addr`` (default
    ``$RECARCHIVE_METRICS_ADDR``, else 127.0.0.1: metrics are not published beyond the host unless
    asked — a container sets 0.0.0.0 and its runtime binds the host side); False when not asked for
    or the port is taken (logged: metrics must never stop a worker from archiving)."""
    addr = addr or os.environ.get(METRICS_ADDR_ENV, "").strip() or "127.0.0.1"
    if port is None:
        text = os.environ.get(METRICS_PORT_ENV, "").strip()
        if not text:
            return False
        try:
            port = int(text)
        except ValueError:
            log.error("%s=%r is not a port number: metrics are not served", METRICS_PORT_ENV, text)
            return False
    from prometheus_client import CollectorRegistry, start_http_server

    registry: Any = None
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    metrics()
    try:
        if registry is None:
            start_http_server(port, addr=addr)
        else:
            start_http_server(port, addr=addr, registry=registry)
    except OSError as exc:
        log.error("metrics: cannot listen on %s:%s (%s)", addr, port, exc.strerror)
        return False
    log.info("metrics served on %s:%s/metrics", addr, port)
    return True
