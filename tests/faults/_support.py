"""What the fault scenarios share: filling the simulator, fake time, configs, waiting for progress."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from providers._ratelimit import TokenBucket
from providers.simulator import VENDORS, Simulator
from providers.simulator.catalog import SimRecording
from tests.faults.invariants import ArchiveChecker, Report, s3_open_uploads, s3_version_counter
from tests.fixtures.s3 import S3Bucket
from worker.pipeline.context import RetryPolicy

__all__ = [
    "FAST",
    "KINDS",
    "FakeClock",
    "Batch",
    "add_batch",
    "checker_for",
    "fake_timing",
    "wait_for",
]

#: the kinds of media each vendor may serve in these scenarios (small, so hundreds stay cheap)
KINDS = {"convirza": ("wav", "mp3"), "convoso": ("wav", "mp3"), "envoy": ("m4a", "mp3"),
         "salesloft": ("mp3", "wav"), "siro": ("m4a", "mp3")}
#: retries without real waiting worth the name
FAST = RetryPolicy(backoff_base=0.01, backoff_max=0.05)


class FakeClock:
    """Time that passes only when something waits: sleeps return at once (Retry-After storms cost
    nothing), and the rate limiter's clock moves with them."""

    def __init__(self) -> None:
        self._now = 1_000.0
        self._lock = threading.Lock()
        self.slept = 0.0

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept += seconds
            self._now += max(1e-6, seconds)


def fake_timing(clock: FakeClock) -> dict[str, Any]:
    """``build_context`` options: the pipeline and the rate limiter sleep on ``clock``."""
    return {"sleep": clock.sleep,
            "limiter_factory": lambda _account, _rate: TokenBucket(1000.0, clock=clock.now, sleep=clock.sleep)}


@dataclass
class Batch:
    """Recordings added for one trial: ``small`` ones and the ``big`` ones (slow, or multipart-sized)."""

    small: list[SimRecording] = field(default_factory=list)
    big: list[SimRecording] = field(default_factory=list)

    @property
    def all(self) -> list[SimRecording]:
        return [*self.small, *self.big]


def add_batch(sim: Simulator, rng: random.Random, per_vendor: int, *, big: int = 0, big_seconds: float = 30.0,
              slow_delay: float = 0.03, slow_chunk: int = 16384, vendors: Iterable[str] = VENDORS) -> Batch:
    """``per_vendor`` recordings of 0.3–1 s for each vendor, plus ``big`` larger WAVs (``big_seconds``
    each, 16 KB a second) on random vendors whose first download crawls (``slow``), so a kill or a
    fault has a body in flight to land in."""
    vendors = list(vendors)
    batch = Batch()
    for vendor in vendors:
        for _ in range(per_vendor):
            kind = rng.choice(KINDS[vendor])
            batch.small.extend(sim.add(vendor, 1, kind=kind, seconds=round(rng.uniform(0.3, 1.0), 2)))
    for _ in range(big):
        vendor = rng.choice(vendors)
        rec = sim.add(vendor, 1, kind="wav", seconds=big_seconds)[0]
        sim.set_fault(vendor, rec.id, "slow", times=1, delay=slow_delay, chunk=slow_chunk)
        batch.big.append(rec)
    return batch


def checker_for(storage: Any, sim: Simulator, accounts: Iterable[Any], bucket: S3Bucket | None = None,
                prefix: str = "recordings", *, retention: bool = False, legal_hold: bool = False) -> ArchiveChecker:
    """An ``ArchiveChecker`` for ``accounts`` (settings), counting versions when ``bucket`` is given;
    ``retention``: every committed object must be locked (and held, with ``legal_hold``)."""
    mapping = {a.name: a.provider for a in accounts}
    if bucket is None:
        return ArchiveChecker(storage, sim, mapping, retention=retention, legal_hold=legal_hold)
    return ArchiveChecker(storage, sim, mapping, versions=s3_version_counter(bucket.client, bucket.name, prefix),
                          open_uploads=s3_open_uploads(bucket.client, bucket.name), retention=retention,
                          legal_hold=legal_hold)


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.01) -> Any:
    """``predicate()`` once it is truthy, or its last (falsy) value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def merge(reports: Iterable[Report]) -> Report:
    """The worst of several checks of one scenario (each list is kept, recordings = the largest)."""
    total = Report()
    for report in reports:
        total.recordings = max(total.recordings, report.recordings)
        total.archived = max(total.archived, report.archived)
        total.open_uploads = max(total.open_uploads, report.open_uploads)
        total.manifest_gaps.extend(x for x in report.manifest_gaps if x not in total.manifest_gaps)
        for name in Report.COLUMNS:
            getattr(total, name).extend(x for x in getattr(report, name) if x not in getattr(total, name))
    return total
