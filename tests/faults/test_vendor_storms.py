"""Vendors misbehaving at high rates: 429 / 5xx / expired-link (410, 403) storms on the APIs and the
media, bodies cut short (again and again), error pages served as 200, and malformed or oversized JSON
list pages — all through the simulator, over real HTTP, into a real (versioned) S3 bucket.

Each trial adds recordings, sets its faults, and runs passes while the storm lasts (a pass may lose an
account to a malformed page, or a recording's attempt to a fault; the next pass carries on), then a
pass with the vendor healthy. Storms stay within the pipeline's documented retry bounds
(``RetryPolicy``: 6 transient failures, 3 link refreshes, 20 resumptions per recording; one fresh link
for an error page), so nothing may end parked: every ready recording must then be archived exactly
once, byte-exact, with nothing left over. Waiting is fake (``FakeClock``): a Retry-After costs nothing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from config import settings_from_mapping
from providers.simulator import VENDORS, Simulator
from providers.simulator.catalog import SimRecording
from tests.faults._support import FAST, Batch, FakeClock, add_batch, checker_for, fake_timing, merge
from tests.faults.conftest import FaultTable
from tests.faults.invariants import Report
from tests.fixtures.s3 import REGION, S3Bucket, make_s3_storage
from worker.compliance.session import open_context
from worker.pipeline.passes import PassSummary, run_pass

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]

STORM_PASSES = 3


def _media_storm(sim: Simulator, rng: random.Random, recs: list[SimRecording]) -> int:
    """429 / 500 / expired link / error pages / short bodies on most recordings' media."""
    hit = 0
    for rec in recs:
        if rng.random() > 0.8:
            continue
        hit += 1
        fault = rng.choice(["rate_limit", "error500", "expired", "html200", "json200", "empty200", "wrong_length"])
        if fault == "rate_limit":
            sim.set_fault(rec.vendor, rec.id, fault, times=rng.randint(1, 3), retry_after=rng.randint(0, 30))
        elif fault in ("error500", "expired"):
            sim.set_fault(rec.vendor, rec.id, fault, times=rng.randint(1, 3))
        else:
            sim.set_fault(rec.vendor, rec.id, fault, times=1)
    return hit


def _api_storm(sim: Simulator, rng: random.Random) -> int:
    total = 0
    for vendor in VENDORS:
        limited, failing = rng.randint(3, 8), rng.randint(2, 6)
        sim.set_api_fault(vendor, "rate_limit", times=limited, retry_after=rng.randint(1, 60))
        sim.set_api_fault(vendor, "error500", times=failing)
        total += limited + failing
    return total


def _cuts(sim: Simulator, rng: random.Random, recs: list[SimRecording]) -> int:
    for rec in recs:
        sim.set_fault(rec.vendor, rec.id, "cut", times=rng.randint(1, 4), at=rng.randint(1, max(1, rec.size - 1)))
    return len(recs)


def _bad_pages(sim: Simulator, rng: random.Random) -> int:
    vendors = list(VENDORS)
    rng.shuffle(vendors)
    for index, vendor in enumerate(vendors):
        sim.set_api_fault(vendor, "malformed_json" if index % 2 else "oversized_json", times=1, page=1)
    return len(vendors)


Storm = Callable[[Simulator, random.Random, Batch], int]
STORMS: list[tuple[str, str, Storm]] = [
    ("vendor 429/5xx/410 storms", "API", lambda sim, rng, batch: _api_storm(sim, rng)),
    ("vendor 429/5xx/410 storms", "media", lambda sim, rng, batch: _media_storm(sim, rng, batch.all)),
    ("vendor 429/5xx/410 storms", "API + media",
     lambda sim, rng, batch: _api_storm(sim, rng) + _media_storm(sim, rng, batch.all)),
    ("bodies cut short", "cut 1-4 times each", lambda sim, rng, batch: _cuts(sim, rng, batch.all)),
    ("malformed / oversized JSON pages", "first list page", lambda sim, rng, batch: _bad_pages(sim, rng)),
]


def _outcome(summary: PassSummary) -> dict[str, Any]:
    return {"archived": summary.total("archived"), "parked": summary.total("parked"),
            "failed_accounts": sum(1 for a in summary.accounts if a.error)}


def test_vendor_storms_lose_nothing_and_duplicate_nothing(
        sim_factory: Callable[..., Simulator], s3_lock_bucket: S3Bucket, tmp_path: Path, fault_seed: int,
        fault_table: FaultTable) -> None:
    rng = random.Random(f"{fault_seed}:vendors")
    print(f"fault seed {fault_seed}")
    sim = sim_factory(link_ttl=600.0, seed=fault_seed % 1000 + 3)
    storage = {"url": f"s3://{s3_lock_bucket.name}/recordings", "endpoint_url": s3_lock_bucket.endpoint_url,
               "region": REGION, "work_dir": str(tmp_path / "work")}
    settings = settings_from_mapping({"storage": storage, "accounts": [sim.account(v) for v in VENDORS]},
                                     sim.environ())
    store = make_s3_storage(s3_lock_bucket)
    checker = checker_for(store, sim, settings.accounts, s3_lock_bucket)
    rows: dict[str, tuple[list[Report], list[str], float, int]] = {}

    def one_pass() -> dict[str, Any]:
        ctx = open_context(settings, storage=make_s3_storage(s3_lock_bucket), retry=FAST,
                            **fake_timing(FakeClock()))
        try:
            return _outcome(run_pass(ctx, settings.accounts, concurrency=4))
        finally:
            ctx.close()

    try:
        for trial, (row, name, storm) in enumerate(STORMS):
            started = time.monotonic()
            batch = add_batch(sim, rng, per_vendor=3, big=1, big_seconds=20.0, slow_delay=0.0)
            faults = storm(sim, rng, batch)
            passes = []
            for _ in range(STORM_PASSES):
                passes.append(one_pass())
                if checker.check().lost == [] and passes[-1]["failed_accounts"] == 0:
                    break
            sim.clear_faults()
            clean = one_pass()
            note = f"{name}: {faults} faults; storm passes {passes}; healthy pass {clean}"
            report = checker.check()
            assert sum(p["parked"] for p in passes) + clean["parked"] == 0, f"parked within the retry bounds: {note}"
            assert report.ok, f"trial {trial} {name} (seed {fault_seed}): {report.describe()}\n{note}"
            reports, notes, seconds, added = rows.get(row, ([], [], 0.0, 0))
            rows[row] = ([*reports, report], [*notes, note], seconds + time.monotonic() - started,
                         added + len(batch.all))
    finally:
        store.close()
    for row, (reports, notes, seconds, added) in rows.items():
        fault_table.add(row, len(reports), merge(reports), seconds, notes="; ".join(notes), recordings=added)
    print("\n".join(note for _, notes, _, _ in rows.values() for note in notes))
