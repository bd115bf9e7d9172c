"""Two archivers released at the same instant on recordings whose bytes change between requests.

The vendor re-renders each recording of a trial between requests (simulator fault ``reprocessed``:
every media request gets the next of two different, valid recordings, slowly enough that both
downloads overlap). Two warm ``run_pass`` processes (``_racer.py``) are told one start instant, so
they list, download and store together: one wins the original, the other meets other bytes in place.

What must hold after every trial, on S3 (moto, versioned, Object Lock) and on a local folder, with
``[retention]`` so that every write is a locked one: exactly one committed original per recording,
nothing replaced or deleted (one version per key, bytes never changing between checks), the loser's
bytes stored as a revision (``{id}/r2/``) when they differ, every object locked, every commit in a
manifest entry; and at the end ``recarchive verify`` exits 0.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from config import settings_from_mapping
from providers.simulator import Simulator
from providers.simulator.media import make_media
from storage.local import LocalStorage
from tests._e2e import BIN, write_config
from tests.faults._support import checker_for, merge
from tests.faults.conftest import FaultTable
from tests.faults.invariants import ArchiveChecker, Report
from tests.fixtures.s3 import REGION, S3Bucket, make_s3_storage

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]

TRIALS = int(os.environ.get("RECARCHIVE_RACE_TRIALS", "20"))
#: vendors whose recordings race (one recording a trial, in turn), with the kind they serve
RACED = (("convirza", "wav"), ("salesloft", "mp3"))
RETENTION = {"mode": "GOVERNANCE", "days": 1}
ROOT = Path(__file__).resolve().parents[2]


class Racer:
    """One ``_racer.py`` process."""

    def __init__(self, config: Path, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.faults._racer", str(config)], cwd=ROOT, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(log, "wb"), text=True)  # noqa: SIM115

    def go(self, at: float, since: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"at": at, "since": since}) + "\n")
        self.proc.stdin.flush()

    def answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"racer exited: {self.log.read_text(errors='replace')[-3000:]}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stop(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            self.proc.stdin.write(json.dumps({"quit": True}) + "\n")
            self.proc.stdin.flush()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _race(tmp_path: Path, sim: Simulator, storage: dict[str, Any], store: Any, checker: ArchiveChecker,
          rng: random.Random) -> tuple[Report, Counter[str], int]:
    accounts = [sim.account(vendor, rate_limit="1000/s") for vendor, _ in RACED]
    mapping = {"storage": storage, "accounts": accounts, "retention": RETENTION,
               "schedule": {"lookback": "2h"}}
    config = tmp_path / "racer.json"
    config.write_text(json.dumps(mapping, default=str))
    env = {**os.environ, **sim.environ()}
    racers = [Racer(config, env, tmp_path / f"racer-{n}.log") for n in (1, 2)]
    reports: list[Report] = []
    outcomes: Counter[str] = Counter()
    revisions = 0
    try:
        for trial in range(TRIALS):
            added = []
            for vendor, kind in (RACED[trial % len(RACED)],):  # one recording a trial, vendors in turn
                seconds = round(rng.uniform(0.4, 0.9), 2)
                rec = sim.add(vendor, 1, kind=kind, seconds=seconds)[0]
                added.append(rec)
                variants = [make_media(kind, seconds, f"{rec.id}-take-{n}") for n in (1, 2)]
                assert variants[0] != variants[1]
                checker.reprocessed[(sim.account(vendor)["name"], rec.id)] = {
                    hashlib.sha256(v).hexdigest() for v in variants}
                sim.set_fault(vendor, rec.id, "reprocessed", variants=variants, delay=0.02, chunk=2048)
            # the passes list this trial's recordings (a window from the earliest), not every earlier one
            since = min(min(r.started_at, r.created_at) for r in added) - timedelta(seconds=1)
            at = time.time() + 0.3
            for racer in racers:
                racer.go(at, since.strftime("%Y-%m-%dT%H:%M:%SZ"))
            answers = [racer.answer() for racer in racers]
            passed = time.time() - at
            errors = [a["error"] for a in answers if "error" in a]
            assert not errors, f"trial {trial}: {errors}"
            for answer in answers:
                outcomes.update(answer["outcomes"])
            report = checker.check(versions=trial == TRIALS - 1)  # a second version never goes away
            print(f"trial {trial}: passes {passed:.2f} s, check {time.time() - at - passed:.2f} s")
            assert report.ok, f"trial {trial}: {report.describe()}"
            reports.append(report)
    finally:
        for racer in racers:
            racer.stop()
    revisions = sum(1 for info in store.list("") if "/r2/metadata.json" in info.key or "/r3/" in info.key)
    toml = write_config(tmp_path / "recarchive.toml", storage, accounts)
    with open(toml, "a", encoding="utf-8") as handle:
        handle.write('\n[retention]\nmode = "GOVERNANCE"\ndays = 1\n')
    verify = subprocess.run([str(BIN), "verify", "--config", str(toml)], capture_output=True, text=True, env=env,
                            timeout=120)
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-3000:]
    return merge(reports), outcomes, revisions


def _row(fault_table: FaultTable, name: str, report: Report, outcomes: Counter[str], revisions: int,
         started: float) -> None:
    fault_table.add(name, TRIALS, report, time.monotonic() - started,
                    notes=f"outcomes {dict(sorted(outcomes.items()))}; {revisions} revisions (loser's other bytes), "
                          "0 originals deleted or replaced; verify exit 0")


def test_two_archivers_racing_on_changed_bytes_on_s3(
        sim_factory: Callable[..., Simulator], s3_lock_bucket: S3Bucket, tmp_path: Path, fault_seed: int,
        fault_table: FaultTable) -> None:
    started = time.monotonic()
    sim = sim_factory(link_ttl=600.0, seed=fault_seed % 1000 + 5)
    storage = {"url": f"s3://{s3_lock_bucket.name}/recordings", "endpoint_url": s3_lock_bucket.endpoint_url,
               "region": REGION, "work_dir": str(tmp_path / "work")}
    store = make_s3_storage(s3_lock_bucket)
    settings = settings_from_mapping({"storage": storage, "accounts": [sim.account(v) for v, _ in RACED]},
                                     sim.environ())
    checker = checker_for(store, sim, settings.accounts, s3_lock_bucket, retention=True)
    try:
        report, outcomes, revisions = _race(tmp_path, sim, storage, store, checker,
                                            random.Random(f"{fault_seed}:race-s3"))
    finally:
        store.close()
    _row(fault_table, "two archivers race, changed bytes (S3)", report, outcomes, revisions, started)
    assert report.ok and revisions > 0, report.describe()


def test_two_archivers_racing_on_changed_bytes_on_a_folder(
        sim_factory: Callable[..., Simulator], tmp_path: Path, fault_seed: int, fault_table: FaultTable) -> None:
    started = time.monotonic()
    sim = sim_factory(link_ttl=600.0, seed=fault_seed % 1000 + 6)
    root = tmp_path / "archive"
    storage = {"url": root.as_uri(), "work_dir": str(tmp_path / "work")}
    store = LocalStorage(root)
    settings = settings_from_mapping({"storage": storage, "accounts": [sim.account(v) for v, _ in RACED]},
                                     sim.environ())
    checker = checker_for(store, sim, settings.accounts, retention=True)
    report, outcomes, revisions = _race(tmp_path, sim, storage, store, checker,
                                        random.Random(f"{fault_seed}:race-local"))
    _row(fault_table, "two archivers race, changed bytes (folder)", report, outcomes, revisions, started)
    assert report.ok and revisions > 0, report.describe()
