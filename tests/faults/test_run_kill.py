"""``recarchive run --once`` killed with SIGKILL at random moments, each time followed by a clean pass.

Every trial adds a fresh batch of recordings to the simulator (small ones of every vendor, one
bigger WAV whose first download crawls so a kill can land mid-body, now and then one of ~10 MB),
starts ``recarchive run --once`` as a process and kills it at a moment drawn from
the suite's seed: during start-up, while listing, after the k-th media request, or inside the slow
body. A second, unharmed ``run --once`` must then exit 0, and the archive must hold every ready
recording exactly once, byte-exact, with nothing left over (``invariants.ArchiveChecker``, in a
versioned bucket so that any object written twice shows as a second version). The runs have
``[retention]`` with a legal hold: every committed object must be locked (written locked, so no kill
can leave one unlocked), and every commit must have its manifest entry (written before the commit).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from config import settings_from_mapping
from providers.simulator import VENDORS, Simulator
from tests._e2e import BIN, write_config
from tests.faults._support import Batch, add_batch, checker_for, merge, wait_for
from tests.faults.conftest import FaultTable
from tests.faults.invariants import Report
from tests.fixtures.s3 import REGION, S3Bucket, make_s3_storage
from worker.pipeline.workdir import WorkDir

pytestmark = [pytest.mark.faults, pytest.mark.timeout(290)]

#: kills that must land (the process still running when SIGKILL came), and the bound on trials
MIN_KILLS = 15
MAX_TRIALS = 20
#: recordings the trials must have added in all (each check reads the whole archive: trials cost more
#: as it grows, so this and MIN_KILLS keep the suite's slowest test near two minutes on 2 CPUs)
MIN_RECORDINGS = 160
#: where a kill may land, with its weight
PLANS = (("startup", 0.15), ("listing", 0.15), ("media", 0.40), ("body", 0.30))


def _plan(rng: random.Random, batch: Batch) -> tuple[str, Any, float]:
    kind = rng.choices([p for p, _ in PLANS], weights=[w for _, w in PLANS])[0]
    if kind == "startup":
        return kind, None, rng.uniform(0.1, 1.2)
    if kind == "listing":
        return kind, rng.randint(1, 5), rng.uniform(0.0, 0.05)
    if kind == "media":
        return kind, rng.randint(1, len(batch.all)), rng.uniform(0.0, 0.15)
    return kind, rng.choice(batch.big).id, rng.uniform(0.05, 0.8)


def _trigger(sim: Simulator, kind: str, arg: Any) -> Callable[[], bool]:
    def seen() -> bool:
        requests = sim.requests
        if kind == "listing":
            return sum(1 for r in requests if r.kind == "api") >= int(arg)
        if kind == "media":
            return sum(1 for r in requests if r.kind == "media") >= int(arg)
        if kind == "body":
            return any(r.kind == "media" and r.recording_id == arg for r in requests)
        return True
    return seen


def _count(sim: Simulator) -> int:
    return sum(len(sim.recordings(vendor)) for vendor in VENDORS)


def _run(config: Path, env: dict[str, str], out: Path) -> subprocess.Popen[bytes]:
    with open(out, "wb") as sink:
        return subprocess.Popen([str(BIN), "run", "--once", "--json", "--concurrency", "4", "--config", str(config)],
                                env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT)


def test_sigkill_during_run_then_a_clean_pass_archives_everything_once(
        sim_factory: Callable[..., Simulator], s3_lock_bucket: S3Bucket, tmp_path: Path,
        fault_seed: int, fault_table: FaultTable) -> None:
    started = time.monotonic()
    rng = random.Random(f"{fault_seed}:run-kill")
    print(f"fault seed {fault_seed}")
    sim = sim_factory(link_ttl=600.0, seed=fault_seed % 1000)
    storage = {"url": f"s3://{s3_lock_bucket.name}/recordings", "endpoint_url": s3_lock_bucket.endpoint_url,
               "region": REGION, "work_dir": str(tmp_path / "work")}
    accounts = [sim.account(vendor, rate_limit="1000/s") for vendor in VENDORS]
    config = write_config(tmp_path / "recarchive.toml", storage, accounts)
    with open(config, "a", encoding="utf-8") as handle:
        handle.write('\n[retention]\nmode = "GOVERNANCE"\ndays = 1\nlegal_hold = true\n')
    env = {**os.environ, **sim.environ()}
    settings = settings_from_mapping({"storage": storage, "accounts": accounts}, env)
    store = make_s3_storage(s3_lock_bucket)
    checker = checker_for(store, sim, settings.accounts, s3_lock_bucket, retention=True, legal_hold=True)
    reports: list[Report] = []
    kills: list[str] = []
    landed_kills = 0
    left = {"uncommitted objects": 0, "recordings not archived": 0, "open multipart uploads": 0,
            "spool files in the work dir": 0}
    try:
        trial = 0
        while trial < MAX_TRIALS and (landed_kills < MIN_KILLS or _count(sim) < MIN_RECORDINGS):
            batch = add_batch(sim, rng, per_vendor=2, big=1, big_seconds=rng.choice([20.0, 30.0, 40.0]))
            if trial % 6 == 2:  # ~10 MB: a longer download, spool and upload for the kill to land in
                batch.big.extend(add_batch(sim, rng, 0, big=1, big_seconds=600.0, slow_delay=0.04,
                                           slow_chunk=256 * 1024).big)
            sim.clear_requests()
            kind, arg, delay = _plan(rng, batch)
            killed_out = tmp_path / f"killed-{trial}.out"
            proc = _run(config, env, killed_out)
            wait_for(lambda: _trigger(sim, kind, arg)() or proc.poll() is not None, timeout=60)
            time.sleep(delay)
            landed = proc.poll() is None
            if landed:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            landed_kills += landed
            kills.append(f"{kind}{'' if arg is None else f'({arg})'}+{delay:.2f}s"
                         + ("" if landed else " (had exited)"))
            # what the kill left for the clean pass to recover from (evidence that kills land mid-work)
            after_kill = checker.check(versions=False)
            left["uncommitted objects"] += sum(1 for o in after_kill.orphaned if "no metadata.json" in o)
            left["recordings not archived"] += len(after_kill.lost)
            left["open multipart uploads"] += after_kill.open_uploads
            left["spool files in the work dir"] += len(list((tmp_path / "work").glob("rec-*")))
            clean_out = tmp_path / f"clean-{trial}.out"
            clean = _run(config, env, clean_out)
            code = clean.wait(timeout=120)
            assert code == 0, f"trial {trial} (seed {fault_seed}): clean pass exit {code}\n" \
                              f"{clean_out.read_text(errors='replace')[-3000:]}"
            # the clean pass removed what the killed one left in the work dir (WorkDir.sweep)
            assert list((tmp_path / "work").glob("rec-*")) == [], f"trial {trial}: spool files left behind"
            last = trial + 1 >= MAX_TRIALS or (landed_kills >= MIN_KILLS and _count(sim) >= MIN_RECORDINGS)
            report = checker.check(texts={f"killed run {trial}": killed_out.read_text(errors="replace"),
                                          f"clean run {trial}": clean_out.read_text(errors="replace")},
                                   versions=last)
            assert report.ok, f"trial {trial} (seed {fault_seed}, kill {kills[-1]}): {report.describe()}"
            reports.append(report)
            trial += 1
    finally:
        store.close()
    report = merge(reports)
    phases = Counter(k.split("(")[0].split("+")[0] for k in kills if "had exited" not in k)
    fault_table.add("run --once SIGKILL + clean pass", trial, report, time.monotonic() - started,
                    notes=f"{landed_kills} kills landed ({', '.join(f'{p} {n}' for p, n in sorted(phases.items()))}); "
                    "left behind for the clean passes: " + ", ".join(f"{v} {k}" for k, v in left.items())
                    + f"; open multipart uploads after them: {report.open_uploads}")
    print("kills:", kills)
    print("left by the kills:", left)
    assert landed_kills >= MIN_KILLS, f"only {landed_kills} of {trial} kills landed before the run ended: {kills}"
    assert report.recordings >= MIN_RECORDINGS


def test_a_new_work_dir_removes_only_the_spool_files_of_dead_processes(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    alive = subprocess.Popen(["sleep", "30"])
    try:
        first = WorkDir(tmp_path)
        with first.temp_file(".media") as mine:
            mine.write_bytes(b"in use")
            host = mine.name.split("-")[1]
            orphan = tmp_path / f"rec-{host}-{dead.pid}-abc.media"
            busy = tmp_path / f"rec-{host}-{alive.pid}-abc.media"
            elsewhere = tmp_path / f"rec-0another-{dead.pid}-abc.media"  # another host or container
            for path in (orphan, busy, elsewhere):
                path.write_bytes(b"x")
            assert WorkDir(tmp_path).path == tmp_path  # a second process starting up sweeps
            assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, busy.name, elsewhere.name])
    finally:
        os.kill(alive.pid, signal.SIGKILL)
        alive.wait()
