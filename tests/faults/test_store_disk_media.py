"""Faults of the store itself, of the local disk and of the media, each through ``recarchive`` as a process.

- a store that ignores ``If-None-Match`` (the S3 fault proxy drops the header): ``run`` refuses to
  start, exit 3 with one line naming the endpoint, and writes no recording;
- a full disk (the run's file-size limit, ``RLIMIT_FSIZE``, makes every spool write past 64 KiB fail
  with an ``OSError``): recordings too big for it are parked with ``disk_error``, the small ones are
  archived, no traceback; ``rearchive`` of the parked ones once the disk has room archives them;
- WAV recordings whose writer never finalised the header (sizes 0 and 0xFFFFFFFF): archived with the
  duration their bytes hold and the header finding recorded (``header_duration_mismatch``).
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from config import settings_from_mapping
from providers.simulator import Simulator
from providers.simulator.media import make_media
from storage.local import LocalStorage
from tests._e2e import BIN, write_config
from tests.faults._support import checker_for
from tests.faults.conftest import FaultTable
from tests.faults.invariants import Report
from tests.faults.s3proxy import S3FaultProxy
from tests.fixtures.s3 import REGION, S3Bucket

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]

SPOOL_LIMIT = 64 * 1024


def _cli(config: Path, env: dict[str, str], *args: str, limit: int | None = None) -> subprocess.CompletedProcess[str]:
    def cap() -> None:  # in the child: every file it writes stops at ``limit`` bytes (EFBIG)
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([str(BIN), *args, "--config", str(config)], capture_output=True, text=True, env=env,
                          timeout=120, preexec_fn=cap)  # noqa: PLW1509 - only setrlimit, before exec


def test_a_store_that_ignores_conditional_writes_is_refused_at_start(
        sim_factory: Callable[..., Simulator], s3_bucket: S3Bucket, tmp_path: Path, fault_table: FaultTable) -> None:
    started = time.monotonic()
    sim = sim_factory()
    sim.add("convirza", 2, kind="wav", seconds=0.5)
    with S3FaultProxy(s3_bucket.endpoint_url, drop_headers=("If-None-Match",)) as proxy:
        endpoint = proxy.url
        storage = {"url": f"s3://{s3_bucket.name}/recordings", "endpoint_url": endpoint, "region": REGION,
                   "work_dir": str(tmp_path / "work")}
        config = write_config(tmp_path / "recarchive.toml", storage, [sim.account("convirza")])
        done = _cli(config, {**os.environ, **sim.environ()}, "run", "--once")
        listed = s3_bucket.client.list_objects_v2(Bucket=s3_bucket.name).get("Contents", [])
    assert done.returncode == 3, done.stdout + done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and endpoint in lines[0] and "conditional writes" in lines[0], lines
    assert not [o["Key"] for o in listed if "/_state/" not in o["Key"]]  # no recording written
    fault_table.add("store ignoring If-None-Match", 1, Report(), time.monotonic() - started,
                    notes=f"run exit 3: {lines[0][:110]}")


def test_a_full_disk_parks_what_does_not_fit_and_rearchive_finishes_it(
        sim_factory: Callable[..., Simulator], tmp_path: Path, fault_table: FaultTable) -> None:
    started = time.monotonic()
    sim = sim_factory()
    small = sim.add("convirza", 3, kind="wav", seconds=0.5)  # 8 KB each: fits
    big = sim.add("convirza", 2, kind="wav", seconds=10.0)  # 160 KB each: the spool cannot hold it
    root = tmp_path / "archive"
    storage = {"url": root.as_uri(), "work_dir": str(tmp_path / "work")}
    account = sim.account("convirza")
    config = write_config(tmp_path / "recarchive.toml", storage, [account])
    env = {**os.environ, **sim.environ()}
    full = _cli(config, env, "run", "--once", "--json", limit=SPOOL_LIMIT)
    assert "Traceback" not in full.stdout + full.stderr, full.stderr[-3000:]
    assert full.returncode == 1, full.stdout[-2000:] + full.stderr[-2000:]  # recordings failed: parked
    store = LocalStorage(root)
    parked = sorted(json.loads(store.read_bytes(i.key))["recording_id"] for i in store.list(f"_state/{account['name']}/parked/"))
    assert parked == sorted(r.id for r in big)
    reasons = {json.loads(store.read_bytes(i.key))["reason"] for i in store.list(f"_state/{account['name']}/parked/")}
    assert reasons == {"disk_error"}
    settings = settings_from_mapping({"storage": storage, "accounts": [account]}, sim.environ())
    checker = checker_for(store, sim, settings.accounts)
    after_full = checker.check()
    assert sorted(after_full.lost) == sorted(f"{account['name']}/{r.id}" for r in big)
    ids = [arg for r in big for arg in ("--id", r.id)]
    again = _cli(config, env, "rearchive", "--account", account["name"], *ids)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    report = checker.check(texts={"full run": full.stdout + full.stderr, "rearchive": again.stdout + again.stderr})
    assert report.ok, report.describe()
    fault_table.add("disk full (64 KiB file-size limit) + rearchive", 1, report, time.monotonic() - started,
                    recordings=len(small) + len(big),
                    notes=f"{len(big)} parked with disk_error, {len(small)} archived, no traceback; rearchive exit 0")


def _unfinished(data: bytes, size_field: int) -> bytes:
    out = bytearray(data)
    at = out.find(b"data")
    struct.pack_into("<I", out, 4, size_field)
    struct.pack_into("<I", out, at + 4, size_field)
    return bytes(out)


def test_wavs_never_finalised_are_measured_by_their_bytes(
        sim_factory: Callable[..., Simulator], tmp_path: Path, fault_table: FaultTable) -> None:
    started = time.monotonic()
    sim = sim_factory()
    recs = sim.add("convirza", 2, kind="wav", seconds=3.0)
    for rec, size_field in zip(recs, (0, 0xFFFFFFFF)):
        sim.set_fault("convirza", rec.id, "reprocessed",
                      variants=[_unfinished(make_media("wav", 3.0, f"{rec.id}-unfinished"), size_field)])
    root = tmp_path / "archive"
    storage = {"url": root.as_uri(), "work_dir": str(tmp_path / "work")}
    account = sim.account("convirza")
    config = write_config(tmp_path / "recarchive.toml", storage, [account])
    done = _cli(config, {**os.environ, **sim.environ()}, "run", "--once")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    store = LocalStorage(root)
    documents: list[dict[str, Any]] = [json.loads(store.read_bytes(i.key)) for i in store.list("")
                                       if i.key.endswith("/metadata.json") and not i.key.startswith("_")]
    assert len(documents) == 2
    for document in documents:
        assert document["media"]["duration_seconds"] == pytest.approx(3.0, abs=0.05)
        assert document["integrity"]["header_duration_mismatch"]["header_unfinished"] is True
    settings = settings_from_mapping({"storage": storage, "accounts": [account]}, sim.environ())
    checker = checker_for(store, sim, settings.accounts)
    report = checker.check()
    assert report.ok, report.describe()
    fault_table.add("WAV header never finalised (sizes 0, 0xFFFFFFFF)", 1, report, time.monotonic() - started,
                    notes="archived at 3.0 s measured from the bytes, header_duration_mismatch recorded")


class _Always:
    """A discovery lock and enqueue dedupe that never refuse (one process, no Redis needed)."""

    def acquire(self) -> bool:
        return True

    def release(self, *_: object) -> None:
        return None

    def claim(self, *_: object) -> bool:
        return True


def test_recordings_committed_without_a_lock_are_locked_by_the_daemons_discovery(
        sim_factory: Callable[..., Simulator], s3_lock_bucket: S3Bucket, tmp_path: Path,
        fault_table: FaultTable) -> None:
    """[retention] added after recordings were archived (or an older version's commit): verify fails,
    the daemon's next discovery pass locks every committed object, verify passes."""
    from tests.fixtures.s3 import make_s3_storage
    from worker.compliance.session import open_context
    from worker.daemon.bodies import discover_and_enqueue

    started = time.monotonic()
    sim = sim_factory()
    recs = sim.add("convirza", 3, kind="wav", seconds=0.5)
    storage = {"url": f"s3://{s3_lock_bucket.name}/recordings", "endpoint_url": s3_lock_bucket.endpoint_url,
               "region": REGION, "work_dir": str(tmp_path / "work")}
    account = sim.account("convirza")
    config = write_config(tmp_path / "recarchive.toml", storage, [account])
    env = {**os.environ, **sim.environ()}
    assert _cli(config, env, "run", "--once").returncode == 0  # archived without a lock
    with open(config, "a", encoding="utf-8") as handle:
        handle.write('\n[retention]\nmode = "GOVERNANCE"\ndays = 1\nlegal_hold = true\n')
    before = _cli(config, env, "verify")
    assert before.returncode == 1 and "no Object Lock retention" in before.stdout + before.stderr
    retention = {"mode": "GOVERNANCE", "days": 1, "legal_hold": True}
    settings = settings_from_mapping({"storage": storage, "accounts": [account], "retention": retention},
                                     sim.environ())
    ctx = open_context(settings)
    queued: list[Any] = []
    try:
        summary = discover_and_enqueue(ctx, settings.accounts[0], queued.append, _Always(), _Always())
    finally:
        ctx.close()
    assert queued == [] and summary.found == len(recs)  # committed: nothing to download again
    store = make_s3_storage(s3_lock_bucket)
    checker = checker_for(store, sim, settings.accounts, s3_lock_bucket, retention=True, legal_hold=True)
    report = checker.check()
    store.close()
    assert report.ok, report.describe()
    after = _cli(config, env, "verify")
    assert after.returncode == 0, after.stdout[-2000:] + after.stderr[-2000:]
    fault_table.add("retention added later: daemon discovery locks", 1, report, time.monotonic() - started,
                    notes="verify exit 1 before the discovery pass, 0 after; nothing downloaded again")


def test_an_abandoned_original_with_other_bytes_is_committed_as_it_stands_and_the_new_bytes_revised(
        sim_factory: Callable[..., Simulator], tmp_path: Path, fault_table: FaultTable) -> None:
    """A run died a day ago after storing an original, before its commit; the vendor has re-rendered
    the call since. The next run deletes nothing: the old original is read back, checked and committed
    (``adopted``), the vendor's current bytes become ``r2/``; verify exits 0."""
    from storage.keys import recording_prefix
    from storage.metadata import s3_user_metadata

    started = time.monotonic()
    sim = sim_factory()
    rec = sim.add("convirza", 1, kind="wav", seconds=1.0)[0]
    account = sim.account("convirza")
    root = tmp_path / "archive"
    store = LocalStorage(root)
    old = make_media("wav", 1.0, f"{rec.id}-first-take")
    assert old != rec.data
    prefix = recording_prefix("convirza", account["name"], rec.started_at, rec.id)
    store.put_bytes(prefix + "original.wav", old, content_type="audio/wav", metadata=s3_user_metadata(
        sha256=hashlib.sha256(old).hexdigest(), provider="convirza", account=account["name"], recording_id=rec.id))
    day_ago = time.time() - 86400
    os.utime(root / (prefix + "original.wav"), (day_ago, day_ago))
    storage = {"url": root.as_uri(), "work_dir": str(tmp_path / "work")}
    config = write_config(tmp_path / "recarchive.toml", storage, [account])
    env = {**os.environ, **sim.environ()}
    done = _cli(config, env, "run", "--once")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    base = json.loads(store.read_bytes(prefix + "metadata.json"))
    assert base["objects"][0]["sha256"] == hashlib.sha256(old).hexdigest() and "adopted" in base
    revision = json.loads(store.read_bytes(prefix + "r2/metadata.json"))
    assert revision["objects"][0]["sha256"] == rec.sha256 and revision["revision"] == 2
    settings = settings_from_mapping({"storage": storage, "accounts": [account]}, sim.environ())
    checker = checker_for(store, sim, settings.accounts)
    checker.reprocessed[(account["name"], rec.id)] = {hashlib.sha256(old).hexdigest(), rec.sha256}
    report = checker.check()
    assert report.ok, report.describe()
    assert _cli(config, env, "verify").returncode == 0
    fault_table.add("abandoned original with other bytes", 1, report, time.monotonic() - started,
                    notes="committed as it stood (adopted), current bytes stored as r2, nothing deleted")
