"""Operations gauges: what an on-call person alerts on, per account, and the textfile export.

The names are a contract (deploy/'s Grafana dashboard and Prometheus alert rules use them):

- ``recarchive_last_discovery_success_timestamp_seconds{account,provider}``: when discovery last
  completed (the watermark's ``updated_at``: only a successful discovery writes the watermark);
- ``recarchive_watermark_lag_seconds{account,provider}``: now less the discovery watermark;
- ``recarchive_parked_recordings{account,provider}``: recordings parked now (waiting for an operator);
- ``recarchive_oldest_pending_link_expiry_timestamp_seconds{account,provider}``: the earliest link
  expiry among recordings still waiting after the last pass (absent when nothing waits);
- ``recarchive_build_info{version}``: always 1;
- ``recarchive_verify_last_run_timestamp_seconds`` and ``recarchive_verify_failures{account}``.

The values are read back from the durable state in storage (``account_health``), never kept in
memory between passes: any process (a worker after discovery, ``recarchive run``) computes the same
figures, and a restarted worker does not start from zero. The daemon's workers set them in the
default registry (served by ``worker.daemon.metrics.serve``; under prefork's multiprocess mode the
most recent value wins). ``write_textfile`` writes a fresh registry for node_exporter's textfile
collector, to a temporary file renamed over the target (prometheus_client's ``write_to_textfile``),
so the collector never reads half a file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storage import Storage
from storage.keys import state_key
from worker import __version__
from worker.pipeline.state import StateStore

__all__ = ["METRICS_TEXTFILE_ENV", "AccountHealth", "Gauges", "account_health", "gauges", "make_gauges",
           "observe_health", "observe_verify", "textfile_path", "write_textfile"]

log = logging.getLogger(__name__)

METRICS_TEXTFILE_ENV = "RECARCHIVE_METRICS_TEXTFILE"
_ACCOUNT = ["account", "provider"]


@dataclass(frozen=True)
class AccountHealth:
    """One account's figures, as the durable state in storage has them."""

    account: str
    provider: str
    last_discovery_success: datetime | None
    watermark: datetime | None
    parked: int
    oldest_pending_link_expiry: datetime | None

    def watermark_lag(self, now: datetime | None = None) -> float | None:
        if self.watermark is None:
            return None
        return max(0.0, ((now or datetime.now(UTC)) - self.watermark).total_seconds())


def _when(value: object) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def account_health(storage: Storage, account: str, provider: str) -> AccountHealth:
    """Read watermark, parked records and the last pass of ``account`` (three small reads, one
    listing of its parked folder)."""
    state = StateStore(storage)
    try:
        mark: Mapping[str, Any] = json.loads(storage.read_bytes(state_key(account, "watermark.json")))
    except (FileNotFoundError, ValueError):
        mark = {}
    last = state.last_pass(account) or {}
    return AccountHealth(
        account=account, provider=provider,
        last_discovery_success=_when(mark.get("updated_at")) if isinstance(mark, Mapping) else None,
        watermark=_when(mark.get("watermark")) if isinstance(mark, Mapping) else None,
        parked=len(state.parked_names(account)),
        oldest_pending_link_expiry=_when(last.get("oldest_pending_expires_at")),
    )


@dataclass(frozen=True)
class Gauges:
    last_discovery: Any
    watermark_lag: Any
    parked: Any
    oldest_expiry: Any
    build_info: Any
    verify_last_run: Any
    verify_failures: Any


def make_gauges(registry: Any = None) -> Gauges:
    """The gauges in ``registry`` (``None``: the default one), ``build_info`` already set."""
    from prometheus_client import REGISTRY, Gauge

    reg = REGISTRY if registry is None else registry
    mode: Any = "mostrecent"  # prefork children: the latest value set wins, never a sum

    def gauge(name: str, text: str, labels: list[str]) -> Any:
        return Gauge(name, text, labels, registry=reg, multiprocess_mode=mode)

    made = Gauges(
        last_discovery=gauge("recarchive_last_discovery_success_timestamp_seconds",
                             "Unix time of the account's last successful discovery", _ACCOUNT),
        watermark_lag=gauge("recarchive_watermark_lag_seconds",
                            "Seconds between now and the account's discovery watermark", _ACCOUNT),
        parked=gauge("recarchive_parked_recordings", "Recordings parked now, waiting for an operator", _ACCOUNT),
        oldest_expiry=gauge("recarchive_oldest_pending_link_expiry_timestamp_seconds",
                            "Unix time the earliest link of a recording still waiting expires", _ACCOUNT),
        build_info=gauge("recarchive_build_info", "The running recarchive version (always 1)", ["version"]),
        verify_last_run=gauge("recarchive_verify_last_run_timestamp_seconds",
                              "Unix time the last verify finished", []),
        verify_failures=gauge("recarchive_verify_failures", "Problems the last verify found, per account",
                              ["account"]),
    )
    made.build_info.labels(__version__).set(1)
    return made


_default: Gauges | None = None
_lock = threading.Lock()


def gauges() -> Gauges:
    """The process's gauges in the default registry (created once, on first use)."""
    global _default
    with _lock:
        if _default is None:
            _default = make_gauges()
        return _default


def observe_health(health: AccountHealth, target: Gauges | None = None, *, now: datetime | None = None) -> None:
    """Set the account's gauges; a figure the state does not have is removed, not left stale."""
    g = target or gauges()
    labels = (health.account, health.provider)
    _set(g.last_discovery, labels, health.last_discovery_success.timestamp()
         if health.last_discovery_success else None)
    _set(g.watermark_lag, labels, health.watermark_lag(now))
    g.parked.labels(*labels).set(health.parked)
    _set(g.oldest_expiry, labels, health.oldest_pending_link_expiry.timestamp()
         if health.oldest_pending_link_expiry else None)


def _set(gauge: Any, labels: tuple[str, ...], value: float | None) -> None:
    if value is not None:
        gauge.labels(*labels).set(value)
        return
    with contextlib.suppress(KeyError):  # never set: nothing to remove
        gauge.remove(*labels)


def observe_verify(failures: Mapping[str, int], target: Gauges | None = None, *,
                   at: datetime | None = None) -> None:
    """The verify gauges: when it ran, and the problems it found per account (0 included)."""
    g = target or gauges()
    g.verify_last_run.set((at or datetime.now(UTC)).timestamp())
    for account, count in failures.items():
        g.verify_failures.labels(account).set(count)


def textfile_path(option: str | None) -> Path | None:
    """``--metrics-file``, else ``$RECARCHIVE_METRICS_TEXTFILE``, else no export."""
    value = option or os.environ.get(METRICS_TEXTFILE_ENV, "").strip()
    return Path(value) if value else None


def write_textfile(path: Path, *, health: Iterable[AccountHealth] = (), verify: Mapping[str, int] | None = None,
                   now: datetime | None = None) -> None:
    """Write the gauges for ``health`` (and, after a verify, its figures) to ``path`` in the text
    format, atomically. Only the gauges that were set appear (a verify's file has no discovery
    figures, a run's no verify figures), so two commands can each own one file of the collector."""
    from prometheus_client import CollectorRegistry, write_to_textfile

    registry = CollectorRegistry()
    g = make_gauges(registry)
    for item in health:
        observe_health(item, g, now=now)
    if verify is not None:
        observe_verify(verify, g, at=now)
    if verify is None:
        registry.unregister(g.verify_last_run)
        registry.unregister(g.verify_failures)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
