"""The daemon (issue 5) against real parts: a private redis-server, moto's S3 server, the vendor
simulator over HTTP, and real ``celery -A worker worker`` / ``beat`` subprocesses reading a TOML
config through RECARCHIVE_CONFIG.

The plain functions are tested in ``test_daemon_parts.py``; these tests drive whole workers.
All are marked ``slow`` (``pytest -m slow --durations=0`` shows their timings).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from config import settings_from_mapping
from config.settings import Settings
from providers.simulator import Simulator
from storage.metadata import load_metadata
from tasks.app import create_app, send
from tests._daemon_support import REPO, WorkerProcess, daemon_mapping, wait_until, write_config
from tests.fixtures._ports import free_port
from tests.fixtures.s3 import S3Bucket, make_s3_storage
from worker.compliance.session import open_context
from worker.daemon.bodies import (
    DaemonOptions,
    discover_and_enqueue,
)
from worker.daemon.redis_coord import Coordinator

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

FAST_RETRIES = {"RECARCHIVE_RETRY_BACKOFF": "0.2", "RECARCHIVE_MAX_RETRIES": "2"}


# -- whole workers -----------------------------------------------------------------------------------

class Daemon:
    """A config file, a client app, the archive's storage, and the worker subprocesses of one test."""

    def __init__(self, tmp_path: Path, sim: Simulator, bucket: S3Bucket, redis_url: str, vendors: list[str],
                 *, visibility_timeout: float = 60, extra_env: dict[str, str] | None = None, **mapping: Any) -> None:
        self.tmp_path = tmp_path
        self.sim = sim
        self.bucket = bucket
        self.redis_url = redis_url
        data = daemon_mapping(sim, bucket, redis_url, vendors, **mapping)
        self.config = write_config(tmp_path / "recarchive.toml", data)
        self.settings: Settings = settings_from_mapping(data, sim.environ())
        self.options = DaemonOptions(visibility_timeout=visibility_timeout)
        self.app = create_app(self.settings, options=self.options)
        self.storage = make_s3_storage(bucket)
        self.env = {**sim.environ(), "RECARCHIVE_VISIBILITY_TIMEOUT": str(visibility_timeout), **FAST_RETRIES,
                    **(extra_env or {})}
        self.workers: list[WorkerProcess] = []
        self.others: list[subprocess.Popen[bytes]] = []

    def worker(self, **kwargs: Any) -> WorkerProcess:
        proc = WorkerProcess(self.config, self.tmp_path, self.env, **kwargs)
        self.workers.append(proc)
        return proc

    def tick(self, names: list[str] | None = None) -> None:
        """What beat does every discover_every: one discover task per account."""
        for name in names or [a.name for a in self.settings.accounts]:
            send(self.app, "recarchive.discover", args=[name])

    def committed(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for info in self.storage.list(""):
            if info.key.endswith("/metadata.json") and not info.key.startswith("_"):
                document = load_metadata(self.storage.read_bytes(info.key))
                assert document["recording_id"] not in found, f"two commits for {document['recording_id']}"
                found[document["recording_id"]] = document
        return found

    def wait_committed(self, count: int, timeout: float = 60) -> dict[str, dict[str, Any]]:
        wait_until(lambda: len(self.committed()) >= count, timeout, interval=0.5,
                   what=f"{count} committed recordings", on_timeout=self.logs)
        return self.committed()

    def logs(self) -> str:
        return "\n".join(f"--- {w.name}\n{w.tail()}" for w in self.workers)

    def close(self) -> None:
        for proc in self.others:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
        for worker in self.workers:
            worker.stop()
        self.app.close()
        self.storage.close()


@pytest.fixture
def daemon_factory(tmp_path: Path, sim: Simulator, redis_url: str) -> Iterator[Any]:
    made: list[Daemon] = []

    def make(bucket: S3Bucket, vendors: list[str], **kwargs: Any) -> Daemon:
        daemon = Daemon(tmp_path, sim, bucket, redis_url, vendors, **kwargs)
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        daemon.close()


def _assert_byte_exact(sim: Simulator, vendor: str, committed: dict[str, dict[str, Any]], ids: set[str]) -> None:
    for rid in ids:
        original = [o for o in committed[rid]["objects"] if o["role"] == "original"]
        assert len(original) == 1
        assert original[0]["sha256"] == sim.get(vendor, rid).sha256
        assert original[0]["size"] == sim.get(vendor, rid).size


def _versions(bucket: S3Bucket) -> dict[str, int]:
    counts: dict[str, int] = {}
    for page in bucket.client.get_paginator("list_object_versions").paginate(Bucket=bucket.name):
        for item in page.get("Versions", []):
            counts[item["Key"]] = counts.get(item["Key"], 0) + 1
    return counts


def _redis_dump(url: str) -> bytes:
    client = redis.Redis.from_url(url)
    try:
        blob = b""
        for key in client.scan_iter(count=500):
            kind = client.type(key)
            if kind == b"string":
                blob += client.get(key) or b""
            elif kind == b"list":
                blob += b"".join(client.lrange(key, 0, -1))
            elif kind == b"hash":
                blob += b"".join(k + v for k, v in client.hgetall(key).items())
            elif kind == b"zset":
                blob += b"".join(client.zrange(key, 0, -1))
            elif kind == b"set":
                blob += b"".join(client.smembers(key))
        return blob
    finally:
        client.close()


def test_end_to_end_beat_and_worker_archive_every_ready_recording_once(
        daemon_factory: Any, sim: Simulator, s3_bucket: S3Bucket, tmp_path: Path) -> None:
    vendors = ["convirza", "siro", "salesloft", "envoy", "convoso"]
    ready = {v: {r.id for r in sim.add(v, 3)} for v in vendors}
    waiting = sim.add("siro", 1, state="not_ready")[0]  # not ready in the listing itself
    processing = sim.add("envoy", 1, state="not_ready")[0]  # Envoy's list says recording_status PROCESSING
    broken = sim.add("convirza", 1)[0]
    sim.set_fault("convirza", broken.id, "error500")  # always: retried, then parked with its reason
    metrics_port = free_port()
    daemon = daemon_factory(s3_bucket, vendors, every="2s", extra_env={"RECARCHIVE_METRICS_PORT": str(metrics_port)})
    worker = daemon.worker(concurrency=4)
    started = time.monotonic()
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "worker", "beat", "-s", str(tmp_path / "beat-schedule"),
         "--loglevel", "INFO"], cwd=REPO, env={**os.environ, **daemon.env, "RECARCHIVE_CONFIG": str(daemon.config)},
        stdin=subprocess.DEVNULL, stdout=open(tmp_path / "beat.log", "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    daemon.others.append(beat)
    total = sum(len(ids) for ids in ready.values())
    committed = daemon.wait_committed(total, timeout=90)
    elapsed = time.monotonic() - started
    assert beat.poll() is None, (tmp_path / "beat.log").read_text()

    for vendor in vendors:
        _assert_byte_exact(sim, vendor, committed, ready[vendor])
    assert waiting.id not in committed and processing.id not in committed and broken.id not in committed
    parked = wait_until(lambda: list(daemon.storage.list("_state/sim-convirza/parked/")), 60,
                        what="the broken recording to be parked", on_timeout=daemon.logs)
    assert [p.key.rsplit("/", 1)[-1] for p in parked] == [f"{broken.id}.json"]
    parked_doc = json.loads(daemon.storage.read_bytes(parked[0].key))
    assert parked_doc["reason"] == "unavailable"

    # not-ready recordings hold their account's watermark (re-checked every pass, never parked)
    def last_pass(account: str) -> dict[str, Any] | None:
        last = json.loads(daemon.storage.read_bytes(f"_state/{account}/last_pass.json"))
        return last if last.get("archived") == 3 else None

    def watermark(account: str) -> datetime:
        text = json.loads(daemon.storage.read_bytes(f"_state/{account}/watermark.json"))["watermark"]
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    siro = wait_until(lambda: last_pass("sim-siro"), 30, what="a pass that sees siro archived")
    assert siro["not_ready_ids"] == [waiting.id] and siro["pending"] == 0
    assert watermark("sim-siro") <= waiting.created_at
    envoy = wait_until(lambda: last_pass("sim-envoy"), 30, what="a pass that sees envoy archived")
    assert envoy["not_ready_ids"] == [processing.id] and envoy["pending"] == 0  # held, never enqueued
    assert watermark("sim-envoy") <= processing.created_at
    assert not list(daemon.storage.list("_state/sim-envoy/parked/"))

    # nothing secret in Redis: no token, no signed query, whatever the queue held
    blob = _redis_dump(daemon.redis_url)
    for token in sim.environ().values():
        assert token.encode() not in blob
    assert b"Signature=" not in blob and b"secret=" not in blob

    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    assert 'recarchive_archived_total{account="sim-siro",provider="siro"} 3.0' in text
    assert 'recarchive_parked_total{account="sim-convirza",reason="unavailable"} 1.0' in text
    assert "recarchive_queue_lag_seconds_count" in text and "recarchive_download_seconds_count" in text
    assert 'recarchive_recordings_total{account="sim-siro",outcome="archived",provider="siro"} 3.0' in text
    versions = _versions(s3_bucket)
    assert all(n == 1 for key, n in versions.items() if "/_state/" not in key)
    print(f"\nend to end: {total} recordings in {elapsed:.1f}s ({total / elapsed:.2f}/s incl. worker start); "
          f"worker peak RSS {worker.peak_rss_kib()} KiB")


def test_rendition_goes_through_the_transcode_queue(daemon_factory: Any, sim: Simulator, s3_bucket: S3Bucket) -> None:
    ids = {r.id for r in sim.add("convirza", 2, kind="wav", seconds=3)}
    daemon = daemon_factory(s3_bucket, ["convirza"], rendition="mp3", extra_env={"RECARCHIVE_LOG_FORMAT": "json"})
    worker = daemon.worker(concurrency=2)
    daemon.tick()
    committed = daemon.wait_committed(2)
    _assert_byte_exact(sim, "convirza", committed, ids)
    for rid in ids:
        roles = sorted(o["role"] for o in committed[rid]["objects"])
        assert roles == ["original", "rendition"]
        assert any(o["key"].endswith("/rendition.mp3") for o in committed[rid]["objects"])
    worker.stop()
    lines = [json.loads(line) for line in worker.log.read_text().splitlines() if line.startswith("{")]
    outcomes = {(e.get("recording_id"), e.get("outcome")) for e in lines if e.get("logger") == "recarchive.tasks"}
    assert {(rid, "staged") for rid in ids} <= outcomes and {(rid, "archived") for rid in ids} <= outcomes


def test_worker_killed_mid_download_is_redelivered_and_archived_once(
        daemon_factory: Any, sim: Simulator, s3_lock_bucket: S3Bucket) -> None:
    rec = sim.add("convoso", 1, kind="wav", seconds=8)[0]
    # ~8 s of body on the first request only: the kill lands mid-body, the redelivery runs at speed
    sim.set_fault("convoso", rec.id, "slow", times=1, delay=0.5, chunk=8192)
    daemon = daemon_factory(s3_lock_bucket, ["convoso"], visibility_timeout=3)
    first = daemon.worker(pool="solo", concurrency=1)
    daemon.tick()
    wait_until(lambda: sim.media_requests(rec.id) >= 1, 30, what="the download to start", on_timeout=daemon.logs)
    time.sleep(1.0)  # a few chunks in
    rss = first.peak_rss_kib()
    first.kill()
    assert not daemon.committed()
    killed_at = time.monotonic()
    daemon.worker(pool="solo", concurrency=1)
    committed = daemon.wait_committed(1, timeout=60)
    redelivered_after = time.monotonic() - killed_at
    _assert_byte_exact(sim, "convoso", committed, {rec.id})
    assert sim.media_requests(rec.id) == 2  # the killed download and the redelivered one
    versions = _versions(s3_lock_bucket)
    assert [n for key, n in versions.items() if rec.id in key and n != 1] == []
    print(f"\nSIGKILL mid-download: archived once after redelivery {redelivered_after:.1f}s after the kill "
          f"(visibility timeout 3 s); killed worker peak RSS {rss} KiB")


def test_pool_child_killed_mid_download_is_requeued_at_once(daemon_factory: Any, sim: Simulator,
                                                          s3_lock_bucket: S3Bucket, tmp_path: Path) -> None:
    rec = sim.add("convoso", 1, kind="wav", seconds=8)[0]
    sim.set_fault("convoso", rec.id, "slow", times=1, delay=0.5, chunk=8192)
    (tmp_path / "prometheus").mkdir()
    port = free_port()
    # a long visibility timeout: the redelivery below can only come from task_reject_on_worker_lost
    daemon = daemon_factory(s3_lock_bucket, ["convoso"], visibility_timeout=600, extra_env={
        "RECARCHIVE_METRICS_PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus")})
    worker = daemon.worker(pool="prefork", concurrency=1)
    daemon.tick()
    wait_until(lambda: sim.media_requests(rec.id) >= 1, 30, what="the download to start", on_timeout=daemon.logs)
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    assert len(children) == 1
    os.kill(int(children[0]), signal.SIGKILL)  # the pool process dies mid-body; the worker lives on
    committed = daemon.wait_committed(1, timeout=45)
    _assert_byte_exact(sim, "convoso", committed, {rec.id})
    assert sim.media_requests(rec.id) == 2
    assert worker.alive()
    # prefork: the main process serves what its pool processes counted
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'recarchive_archived_total{account="sim-convoso",provider="convoso"} 1.0' in text


def test_two_discovery_passes_at_once_write_no_duplicates(daemon_factory: Any, sim: Simulator,
                                                          s3_lock_bucket: S3Bucket) -> None:
    ids = {r.id for r in sim.add("siro", 6)}
    daemon = daemon_factory(s3_lock_bucket, ["siro"])
    account = daemon.settings.accounts[0]
    # two passes racing in-process, each as a separate "beat": the lock lets one through ...
    results: list[Any] = []
    coords = [Coordinator.from_url(daemon.redis_url) for _ in range(2)]
    contexts = [open_context(daemon.settings) for _ in range(2)]
    barrier = threading.Barrier(2)
    enqueued: list[str] = []

    def run(i: int) -> None:
        barrier.wait()
        results.append(discover_and_enqueue(contexts[i], account, lambda r: enqueued.append(r.recording_id),
                                            coords[i].lock(account.name, 60), coords[i].dedupe))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # ... and without the lock (it expired mid-pass), the dedupe keys still enqueue each recording once
    for i in range(2):
        discover_and_enqueue(contexts[i], account, lambda r: enqueued.append(r.recording_id),
                             coords[i].lock(f"{account.name}-expired-{i}", 60), coords[i].dedupe)
    assert sorted(enqueued) == sorted(ids)
    assert sum(1 for r in results if r.skipped) + sum(1 for r in results if r.enqueued) == 2
    coords[0].client.flushall()  # that "queue" was a list: let the real workers below enqueue afresh
    for coord in coords:
        coord.close()
    for ctx in contexts:
        ctx.close()

    # now the real thing: two workers, two discover tasks sent together, twice
    daemon.worker(concurrency=2)
    daemon.worker(concurrency=2)
    daemon.tick()
    daemon.tick()
    committed = daemon.wait_committed(len(ids))
    daemon.tick()
    time.sleep(2)
    _assert_byte_exact(sim, "siro", daemon.committed(), ids)
    assert set(committed) == ids
    versions = _versions(s3_lock_bucket)
    duplicated = {key: n for key, n in versions.items() if "/_state/" not in key and n != 1}
    assert duplicated == {}
    assert not [key for key in versions if "/r2/" in key]


def test_flushing_redis_mid_run_loses_nothing(daemon_factory: Any, sim: Simulator, s3_bucket: S3Bucket,
                                              redis_server: Any) -> None:
    recs = sim.add("convirza", 6, kind="wav", seconds=4)
    for rec in recs:
        sim.set_fault("convirza", rec.id, "slow", times=1, delay=0.1, chunk=16384)
    # lookback 1s: the second pass sees only what the watermark still holds back
    daemon = daemon_factory(s3_bucket, ["convirza"], lookback="1s")
    daemon.worker(pool="solo", concurrency=1)
    daemon.tick()
    daemon.wait_committed(1, timeout=60)
    client = redis_server.client()
    try:
        client.flushall()  # the queue, the unacked set, the dedupe keys and the locks: all gone
    finally:
        client.close()
    assert len(daemon.committed()) < len(recs)
    daemon.tick()
    committed = daemon.wait_committed(len(recs), timeout=90)
    _assert_byte_exact(sim, "convirza", committed, {r.id for r in recs})


def test_429_storm_keeps_the_shared_rate_under_the_limit(daemon_factory: Any, sim: Simulator,
                                                        s3_bucket: S3Bucket) -> None:
    limit = 4  # API requests per second for the account, shared by 2 worker processes x 2 threads
    recs = sim.add("envoy", 20)  # one API call per recording (its link) besides the listing
    sim.set_api_fault("envoy", "rate_limit", times=8, retry_after=1)  # a storm of 429s to start with
    daemon = daemon_factory(s3_bucket, ["envoy"], overrides={"envoy": {"rate_limit": f"{limit}/s"}})
    daemon.worker(concurrency=2)
    daemon.worker(concurrency=2)
    deadline = time.monotonic() + 100
    while len(daemon.committed()) < len(recs):
        assert time.monotonic() < deadline, daemon.logs()
        daemon.tick()  # beat keeps ticking; a pass that hit the storm is simply repeated
        time.sleep(2)
    _assert_byte_exact(sim, "envoy", daemon.committed(), {r.id for r in recs})
    api = sorted(r.time for r in sim.requests if r.vendor == "envoy" and r.kind == "api")
    throttled = sum(1 for r in sim.requests if r.vendor == "envoy" and r.status == 429)
    assert throttled == 8
    # in any 3-second window: at most limit * 3, plus 1 (the bucket's burst) plus 2 for arrival
    # jitter (a request sent on time can reach the server just after an earlier, delayed one);
    # four threads asking back to back would send several times that without the shared bucket
    window, tolerance = 3.0, 1 + 2
    worst = max(sum(1 for t in api[i:] if t < start + window) for i, start in enumerate(api))
    assert worst <= limit * window + tolerance, f"{worst} API requests within {window}s"
    rate = (len(api) - 1) / (api[-1] - api[0])
    print(f"\n429 storm: {len(api)} API requests, {throttled} answered 429, worst {worst} in {window}s, "
          f"mean {rate:.2f}/s (limit {limit}/s)")
