"""The daemon under fire: real ``celery -A worker worker`` processes against a private Redis.

- SIGKILL: a worker is killed at a random moment while it archives (after the trial's discovery
  tasks have finished: a worker killed inside a discovery pass holds that account's discovery lock
  until its TTL, at least two minutes by design, which no test should wait for); a new worker and
  discovery ticks must then complete the archive (late acks: the killed tasks are redelivered once
  the visibility timeout passes).
- recovery: a worker is killed inside a slow download while the broker's visibility timeout is an
  hour; the recording must be archived again by the next discovery passes (its enqueue marker is a
  lease of a few seconds renewed by the running task's heartbeat), long before the killed task's
  message could come back. The table notes the time from the kill to the commit.
- FLUSHALL: the queue, the unacked set, the dedupe keys, the locks and the rate buckets vanish at a
  random moment of a run; the next discovery ticks must complete the archive (Redis holds nothing
  durable, CONTRACT §3).

Each trial ends with ``invariants.ArchiveChecker`` over a versioned bucket.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from config import settings_from_mapping
from providers.simulator import VENDORS, Simulator
from tasks.app import create_app, send
from tests._daemon_support import WorkerProcess, daemon_mapping, write_config
from tests.faults._support import Batch, add_batch, checker_for, merge, wait_for
from tests.faults.conftest import FaultTable
from tests.faults.invariants import Report
from tests.fixtures.redis import RedisServer
from tests.fixtures.s3 import S3Bucket, make_s3_storage
from worker.daemon.bodies import DaemonOptions

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]

VISIBILITY = 3.0
ENV = {"RECARCHIVE_VISIBILITY_TIMEOUT": str(VISIBILITY), "RECARCHIVE_RETRY_BACKOFF": "0.2",
       "RECARCHIVE_MAX_RETRIES": "3"}


class Fleet:
    """One daemon deployment: a config file, a client app (the "beat"), worker subprocesses."""

    def __init__(self, tmp_path: Path, sim: Simulator, bucket: S3Bucket, redis_url: str,
                 visibility: float = VISIBILITY) -> None:
        self.tmp_path = tmp_path
        self.sim = sim
        data = daemon_mapping(sim, bucket, redis_url, list(VENDORS), every="2s",
                              overrides={v: {"rate_limit": "1000/s"} for v in VENDORS})
        data["storage"]["work_dir"] = str(tmp_path / "work")
        self.config = write_config(tmp_path / "recarchive.toml", data)
        self.settings = settings_from_mapping(data, sim.environ())
        self.app = create_app(self.settings, options=DaemonOptions(visibility_timeout=visibility))
        self.storage = make_s3_storage(bucket)
        self.env = {**sim.environ(), **ENV, "RECARCHIVE_VISIBILITY_TIMEOUT": str(visibility)}
        self.workers: list[WorkerProcess] = []

    def worker(self) -> WorkerProcess:
        proc = WorkerProcess(self.config, self.tmp_path, self.env, pool="threads", concurrency=4)
        self.workers.append(proc)
        proc.wait_ready()
        return proc

    def tick(self, *, wait: bool) -> None:
        """What beat sends every ``discover_every``: one discovery task per account."""
        results = [send(self.app, "recarchive.discover", args=[a.name]) for a in self.settings.accounts]
        if wait:
            for result in results:
                result.get(timeout=60, propagate=False)

    def committed(self) -> int:
        return sum(1 for info in self.storage.list("") if info.key.endswith("/metadata.json")
                   and not info.key.startswith("_") and info.key.count("/") == 6)

    def complete(self, expected: int, timeout: float = 90.0) -> int:
        """Tick until ``expected`` recordings are committed (as beat would keep doing); the ticks sent."""
        deadline = time.monotonic() + timeout
        ticks = 0
        while self.committed() < expected:
            assert time.monotonic() < deadline, f"{self.committed()}/{expected} committed\n{self.logs()}"
            self.tick(wait=True)
            ticks += 1
            wait_for(lambda: self.committed() >= expected, timeout=2.0, interval=0.1)
        return ticks

    def logs(self) -> str:
        return "\n".join(f"--- {w.name}\n{w.tail()}" for w in self.workers)

    def texts(self) -> dict[str, str]:
        return {f"worker log {w.name}": w.log.read_text(errors="replace") for w in self.workers}

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.app.close()
        self.storage.close()


@pytest.fixture
def fleet(tmp_path: Path, sim_factory: Callable[..., Simulator], s3_lock_bucket: S3Bucket,
          redis_url: str, fault_seed: int) -> Iterator[Fleet]:
    sim = sim_factory(link_ttl=600.0, seed=fault_seed % 1000 + 1)
    made = Fleet(tmp_path, sim, s3_lock_bucket, redis_url)
    yield made
    made.close()


def _expected(sim: Simulator) -> int:
    return sum(1 for vendor in VENDORS for rec in sim.recordings(vendor) if rec.state == "ready")


def _media_seen(sim: Simulator, count: int) -> Callable[[], bool]:
    return lambda: sum(1 for r in sim.requests if r.kind == "media") >= count


def _body_started(sim: Simulator, recording_id: str) -> Callable[[], bool]:
    return lambda: any(r.kind == "media" and r.recording_id == recording_id for r in sim.requests)


def _at_once() -> bool:
    return True


def _moment(rng: random.Random, sim: Simulator, batch: Batch) -> tuple[str, Callable[[], bool], float]:
    """A random moment of the archiving: after the k-th media request, or inside a slow body."""
    if rng.random() < 0.5:
        count = rng.randint(1, len(batch.all))
        return f"media({count})", _media_seen(sim, count), rng.uniform(0.0, 0.3)
    big = rng.choice(batch.big)
    return "body", _body_started(sim, big.id), rng.uniform(0.05, 0.8)


def test_sigkilled_workers_then_a_new_worker_completes_the_archive(
        fleet: Fleet, s3_lock_bucket: S3Bucket, fault_seed: int, fault_table: FaultTable) -> None:
    started = time.monotonic()
    rng = random.Random(f"{fault_seed}:daemon-kill")
    print(f"fault seed {fault_seed}")
    sim = fleet.sim
    checker = checker_for(fleet.storage, sim, fleet.settings.accounts, s3_lock_bucket)
    reports: list[Report] = []
    moments: list[str] = []
    trials = 5
    worker = fleet.worker()
    for trial in range(trials):
        batch = add_batch(sim, rng, per_vendor=1, big=2, big_seconds=rng.choice([20.0, 30.0]))
        sim.clear_requests()
        name, reached, delay = _moment(rng, sim, batch)
        fleet.tick(wait=True)  # discovery finished: the kill lands among archive tasks
        assert wait_for(lambda: reached() or fleet.committed() >= _expected(sim), timeout=60), fleet.logs()
        time.sleep(delay)
        committed_at_kill = fleet.committed()
        os.kill(worker.pid, signal.SIGKILL)
        worker.proc.wait(timeout=10)
        moments.append(f"{name}+{delay:.2f}s ({committed_at_kill}/{_expected(sim)} committed)")
        worker = fleet.worker()  # the next trial kills this one
        fleet.complete(_expected(sim))
        report = checker.check(texts=fleet.texts())
        assert report.ok, f"trial {trial} (seed {fault_seed}, kill {moments[-1]}): {report.describe()}"
        reports.append(report)
    report = merge(reports)
    fault_table.add("daemon worker SIGKILL + new worker", trials, report, time.monotonic() - started,
                    notes="kills at " + ", ".join(moments))
    print("kills:", moments)


def test_a_killed_workers_recording_is_archived_again_within_minutes_whatever_the_visibility_timeout(
        tmp_path: Path, sim_factory: Callable[..., Simulator], s3_lock_bucket: S3Bucket, redis_url: str,
        fault_seed: int, fault_table: FaultTable) -> None:
    started = time.monotonic()
    rng = random.Random(f"{fault_seed}:daemon-recovery")
    sim = sim_factory(link_ttl=600.0, seed=fault_seed % 1000 + 7)
    fleet = Fleet(tmp_path, sim, s3_lock_bucket, redis_url, visibility=3600.0)  # an hour: never waited for
    checker = checker_for(fleet.storage, sim, fleet.settings.accounts, s3_lock_bucket)
    reports: list[Report] = []
    recoveries: list[str] = []
    trials = 2
    try:
        worker = fleet.worker()
        for trial in range(trials):
            vendor = rng.choice(VENDORS)
            rec = sim.add(vendor, 1, kind="wav", seconds=30.0)[0]  # ~480 KB, sent slowly the first time
            sim.set_fault(vendor, rec.id, "slow", times=1, delay=0.05, chunk=16384)
            sim.clear_requests()
            fleet.tick(wait=True)
            assert wait_for(_body_started(sim, rec.id), timeout=60), fleet.logs()
            time.sleep(rng.uniform(0.1, 0.5))
            assert fleet.committed() < _expected(sim), "the download finished before the kill"
            killed_at = time.monotonic()
            os.kill(worker.pid, signal.SIGKILL)
            worker.proc.wait(timeout=10)
            worker = fleet.worker()
            ticks = fleet.complete(_expected(sim), timeout=120)
            recovery = time.monotonic() - killed_at
            recoveries.append(f"{recovery:.1f} s ({ticks} discovery ticks of 2 s, worker start included)")
            report = checker.check(texts=fleet.texts())
            assert report.ok, f"trial {trial} (seed {fault_seed}): {report.describe()}"
            reports.append(report)
    finally:
        fleet.close()
    fault_table.add("daemon worker SIGKILL mid-download, visibility 1 h", trials, merge(reports),
                    time.monotonic() - started, notes="recovery after the kill: " + ", ".join(recoveries)
                    + " (the killed task's own message would come back after the 1 h visibility timeout)")
    print("recoveries:", recoveries)


def test_redis_flushed_mid_run_then_the_next_pass_completes(
        fleet: Fleet, s3_lock_bucket: S3Bucket, redis_server: RedisServer, fault_seed: int,
        fault_table: FaultTable) -> None:
    started = time.monotonic()
    rng = random.Random(f"{fault_seed}:redis-flush")
    print(f"fault seed {fault_seed}")
    sim = fleet.sim
    checker = checker_for(fleet.storage, sim, fleet.settings.accounts, s3_lock_bucket)
    reports: list[Report] = []
    moments: list[str] = []
    trials = 3
    fleet.worker()
    client = redis_server.client()
    try:
        for trial in range(trials):
            batch = add_batch(sim, rng, per_vendor=1, big=2, big_seconds=rng.choice([20.0, 30.0]))
            sim.clear_requests()
            reached: Callable[[], bool]
            if trial == 0:  # during discovery: the lock, the dedupe keys and what was queued so far
                name, reached, delay = "discovery", _at_once, rng.uniform(0.0, 0.4)
            else:
                name, reached, delay = _moment(rng, sim, batch)
            fleet.tick(wait=False)
            wait_for(lambda: reached() or fleet.committed() >= _expected(sim), timeout=60)
            time.sleep(delay)
            committed_at_flush = fleet.committed()
            client.flushall()
            moments.append(f"{name}+{delay:.2f}s ({committed_at_flush}/{_expected(sim)} committed)")
            fleet.complete(_expected(sim))
            report = checker.check(texts=fleet.texts())
            assert report.ok, f"trial {trial} (seed {fault_seed}, flush {moments[-1]}): {report.describe()}"
            reports.append(report)
    finally:
        client.close()
    report = merge(reports)
    fault_table.add("Redis FLUSHALL mid-run + next pass", trials, report, time.monotonic() - started,
                    notes="flushes at " + ", ".join(moments))
    print("flushes:", moments)


