"""Operations gauges: read back from the state in storage, written as a node_exporter textfile."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from storage.local import LocalStorage
from worker import __version__
from worker.daemon.gauges import (
    METRICS_TEXTFILE_ENV,
    account_health,
    make_gauges,
    observe_health,
    textfile_path,
    write_textfile,
)
from worker.pipeline.state import ParkedRecord, StateStore

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(path.read_text()) for s in family.samples}


def _archive(tmp_path: Path) -> LocalStorage:
    storage = LocalStorage(tmp_path / "archive", fsync=False)
    state = StateStore(storage)
    state.save_watermark("acme", NOW - timedelta(minutes=30), provider="convirza")
    for rid in ("r1", "r2"):
        state.park("acme", ParkedRecord(recording_id=rid, reason="not_media", message="html",
                                        parked_at="2026-11-30T11:00:00Z", attempts=3))
    state.park("acme", ParkedRecord(recording_id="r3", reason="transcode_failed", message="x",
                                    parked_at="2026-11-30T11:00:00Z", attempts=1, kind="rendition"))
    state.save_last_pass("acme", {"finished_at": "2026-11-30T11:30:00Z",
                                  "oldest_pending_expires_at": "2026-12-03T08:00:00Z"})
    return storage


def test_health_comes_from_the_state_in_storage(tmp_path: Path) -> None:
    health = account_health(_archive(tmp_path), "acme", "convirza")
    assert health.watermark == NOW - timedelta(minutes=30)
    assert health.last_discovery_success is not None
    assert abs((datetime.now(UTC) - health.last_discovery_success).total_seconds()) < 3600
    assert health.parked == 2  # a failed rendition is not a parked recording: its original is archived
    assert health.oldest_pending_link_expiry == datetime(2026, 12, 3, 8, tzinfo=UTC)
    assert health.watermark_lag(NOW) == 1800.0
    # an account never discovered has no figures, not zeros that would look healthy
    fresh = account_health(LocalStorage(tmp_path / "empty", fsync=False), "new", "envoy")
    assert fresh.last_discovery_success is None and fresh.watermark is None and fresh.watermark_lag() is None
    assert fresh.parked == 0 and fresh.oldest_pending_link_expiry is None


def test_textfile_of_a_run(tmp_path: Path) -> None:
    storage = _archive(tmp_path)
    target = tmp_path / "textfile" / "recarchive_run.prom"
    health = [account_health(storage, "acme", "convirza"), account_health(storage, "new", "envoy")]
    write_textfile(target, health=health, now=NOW)
    samples = _samples(target)
    acme = (("account", "acme"), ("provider", "convirza"))
    assert samples[("recarchive_watermark_lag_seconds", acme)] == 1800.0
    assert samples[("recarchive_parked_recordings", acme)] == 2.0
    assert samples[("recarchive_oldest_pending_link_expiry_timestamp_seconds", acme)] == \
        datetime(2026, 12, 3, 8, tzinfo=UTC).timestamp()
    assert ("recarchive_last_discovery_success_timestamp_seconds", acme) in samples
    assert samples[("recarchive_build_info", (("version", __version__),))] == 1.0
    new = (("account", "new"), ("provider", "envoy"))
    assert samples[("recarchive_parked_recordings", new)] == 0.0
    assert ("recarchive_watermark_lag_seconds", new) not in samples
    assert not any(name.startswith("recarchive_verify") for name, _ in samples)
    assert [p.name for p in target.parent.iterdir()] == ["recarchive_run.prom"]  # no temporary file left


def test_textfile_of_a_verify_replaces_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "recarchive_verify.prom"
    target.write_text("stale 1\n")
    write_textfile(target, verify={"acme": 2, "other": 0}, now=NOW)
    samples = _samples(target)
    assert samples[("recarchive_verify_last_run_timestamp_seconds", ())] == NOW.timestamp()
    assert samples[("recarchive_verify_failures", (("account", "acme"),))] == 2.0
    assert samples[("recarchive_verify_failures", (("account", "other"),))] == 0.0
    assert ("stale", ()) not in samples


def test_a_figure_that_disappears_is_removed_not_left_stale(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    gauges = make_gauges(registry)
    storage = _archive(tmp_path)
    observe_health(account_health(storage, "acme", "convirza"), gauges, now=NOW)
    labels = {"account": "acme", "provider": "convirza"}
    assert registry.get_sample_value("recarchive_oldest_pending_link_expiry_timestamp_seconds", labels)
    StateStore(storage).save_last_pass("acme", {"finished_at": "2026-11-30T12:00:00Z"})
    observe_health(account_health(storage, "acme", "convirza"), gauges, now=NOW)
    assert registry.get_sample_value("recarchive_oldest_pending_link_expiry_timestamp_seconds", labels) is None


def test_textfile_path_option_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(METRICS_TEXTFILE_ENV, raising=False)
    assert textfile_path(None) is None
    monkeypatch.setenv(METRICS_TEXTFILE_ENV, str(tmp_path / "env.prom"))
    assert textfile_path(None) == tmp_path / "env.prom"
    assert textfile_path(str(tmp_path / "opt.prom")) == tmp_path / "opt.prom"
    assert os.environ[METRICS_TEXTFILE_ENV]
