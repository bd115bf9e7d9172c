"""The daemon as operations sees it: results off but discovery's, task events on, a first discovery
when a worker is ready, and the per-account gauges on ``/metrics``. Real redis-server, moto's S3
server, the simulator, and a real ``celery -A worker worker`` subprocess."""

from __future__ import annotations

import re
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import redis
from kombu.entity import Queue

from config import settings_from_mapping
from providers.simulator import Simulator
from tasks.app import DISCOVER_AT_START_ENV, _first_discovery, celery_config, create_app
from tests._daemon_support import WorkerProcess, daemon_mapping, wait_until, write_config
from tests.fixtures._ports import free_port
from tests.fixtures.s3 import S3Bucket, make_s3_storage
from worker import __version__


def _settings(sim: Simulator, bucket: Any, redis_url: str, vendors: list[str], every: str = "1h") -> Any:
    data = daemon_mapping(sim, bucket, redis_url, vendors, every=every)
    return data, settings_from_mapping(data, sim.environ())


def test_results_are_off_but_discovery_and_events_are_on(sim: Simulator, redis_url: str) -> None:
    bucket = SimpleNamespace(name="rec-ops", endpoint_url="http://127.0.0.1:9")
    _, settings = _settings(sim, bucket, redis_url, ["convirza"])
    config = celery_config(settings)
    assert config["task_ignore_result"] is True
    assert config["worker_send_task_events"] is True and config["task_send_sent_event"] is True
    app = create_app(settings)
    try:
        app.loader.import_default_modules()
        assert app.tasks["recarchive.discover"].ignore_result is False
        assert app.tasks["recarchive.archive"].ignore_result is True
    finally:
        app.close()


def _queued(redis_url: str, queue: str) -> list[bytes]:
    messages = redis.Redis.from_url(redis_url).lrange(queue, 0, -1)
    return [m if isinstance(m, bytes) else str(m).encode() for m in messages]  # type: ignore[union-attr]


def test_a_discover_worker_sends_every_accounts_discovery_when_ready(
        sim: Simulator, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = SimpleNamespace(name="rec-ops", endpoint_url="http://127.0.0.1:9")
    _, settings = _settings(sim, bucket, redis_url, ["convirza", "envoy"])
    app = create_app(settings)
    try:
        def consumer(*queues: str) -> Any:
            return SimpleNamespace(app=app, task_consumer=SimpleNamespace(queues=[Queue(q) for q in queues]))  # type: ignore[no-untyped-call]

        monkeypatch.delenv(DISCOVER_AT_START_ENV, raising=False)
        _first_discovery(sender=consumer("download", "transcode"))  # not a discovery worker: nothing sent
        assert _queued(redis_url, "discover") == []
        monkeypatch.setenv(DISCOVER_AT_START_ENV, "0")
        _first_discovery(sender=consumer("discover"))  # turned off
        assert _queued(redis_url, "discover") == []
        monkeypatch.delenv(DISCOVER_AT_START_ENV)
        _first_discovery(sender=consumer("discover", "download"))
        sent = _queued(redis_url, "discover")
        assert len(sent) == 2
        assert all(b"recarchive.discover" in message for message in sent)
        assert any(b"sim-convirza" in m for m in sent) and any(b"sim-envoy" in m for m in sent)
    finally:
        app.close()


def _gauge(text: str, name: str, account: str) -> float | None:
    match = re.search(rf'^{name}{{account="{account}",provider="[a-z]+"}} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else None


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_worker_start_discovers_at_once_and_serves_the_account_gauges(
        tmp_path: Path, sim: Simulator, s3_bucket: S3Bucket, redis_url: str) -> None:
    ready = sim.add("convirza", 2, kind="wav", seconds=1.0)
    broken = sim.add("envoy", 1, kind="m4a", seconds=1.0)[0]
    sim.set_fault("envoy", broken.id, "html200")  # parked with its reason by the archive task
    data, _ = _settings(sim, s3_bucket, redis_url, ["convirza", "envoy"], every="1h")  # no beat, no tick
    config = write_config(tmp_path / "recarchive.toml", data)
    port = free_port()
    env = {**sim.environ(), "RECARCHIVE_METRICS_PORT": str(port), "RECARCHIVE_RETRY_BACKOFF": "0.2",
           "RECARCHIVE_MAX_RETRIES": "1"}
    worker = WorkerProcess(config, tmp_path, env, pool="threads", concurrency=2)
    storage = make_s3_storage(s3_bucket)
    try:
        started = time.time()
        wait_until(lambda: sum(1 for o in storage.list("convirza/sim-convirza/") if o.key.endswith("/metadata.json")) == 2,
                   60, interval=0.5, what="the first discovery's recordings", on_timeout=worker.tail)
        wait_until(lambda: list(storage.list("_state/sim-envoy/parked/")), 60, interval=0.5,
                   what="the broken recording parked", on_timeout=worker.tail)
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert f'recarchive_build_info{{version="{__version__}"}} 1.0' in text
        for account in ("sim-convirza", "sim-envoy"):
            last = _gauge(text, "recarchive_last_discovery_success_timestamp_seconds", account)
            assert last is not None and started - 5 <= last <= time.time()
            lag = _gauge(text, "recarchive_watermark_lag_seconds", account)
            assert lag is not None and lag >= 0
        assert _gauge(text, "recarchive_parked_recordings", "sim-convirza") == 0.0
        assert len(ready) == 2
    finally:
        worker.stop()
        storage.close()
