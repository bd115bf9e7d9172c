"""What an audit covers (issue 15, items 2 and 4): ``verify`` walks what is stored, not only what the
config names, and says so; one ``--until`` rule for every command (exclusive for a timestamp, a bare
date covering its whole UTC day)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from config.units import parse_until
from tests._compliance import invoke, write_config
from worker.cli import cli


def _archive(tmp_path: Path, sim: Any, vendors: tuple[str, ...] = ("convirza",), **add: Any) -> Path:
    for vendor in vendors:
        sim.add(vendor, 2, kind="wav", seconds=1.0, **add)
    data: dict[str, Any] = {"storage": {"url": f"file://{tmp_path / 'archive'}", "work_dir": str(tmp_path / "w")},
                            "accounts": [sim.account(v, name=f"c-{v}") for v in vendors]}
    config = write_config(tmp_path / "archiver.toml", data)
    result = invoke(config, sim, "run", "--once")
    assert result.exit_code == 0, result.output
    return config


def _auditor_config(tmp_path: Path, sim: Any, vendors: tuple[str, ...]) -> Path:
    data: dict[str, Any] = {"storage": {"url": f"file://{tmp_path / 'archive'}", "work_dir": str(tmp_path / "w")},
                            "accounts": [sim.account(v, name=f"c-{v}") for v in vendors]}
    return write_config(tmp_path / "auditor.toml", data)


def _run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [args[0], "--config", str(config), *args[1:]], env={}, catch_exceptions=False)


def test_verify_with_no_account_configured_checks_what_storage_holds(tmp_path: Path, sim: Any) -> None:
    _archive(tmp_path, sim, ("convirza", "salesloft"))
    config = _auditor_config(tmp_path, sim, ())
    result = _run(config, "verify", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["recordings"] == 4 and report["ok"] is True
    assert sorted(report["unconfigured_accounts"]) == ["convirza/c-convirza", "salesloft/c-salesloft"]
    text = _run(config, "verify")
    assert "does not name" in text.stdout and "c-salesloft" in text.stdout
    assert "verified 4 recordings" in text.stdout


def test_verify_names_stored_accounts_beyond_the_config_and_checks_them(tmp_path: Path, sim: Any) -> None:
    _archive(tmp_path, sim, ("convirza", "salesloft"))
    config = _auditor_config(tmp_path, sim, ("convirza",))
    report = json.loads(_run(config, "verify", "--json").stdout)
    assert report["recordings"] == 4
    assert report["accounts"] == ["c-convirza", "c-salesloft"]
    assert report["unconfigured_accounts"] == ["salesloft/c-salesloft"]
    only = json.loads(_run(config, "verify", "--json", "--account", "c-convirza").stdout)
    assert only["recordings"] == 2 and only["unconfigured_accounts"] == []


def test_verify_of_an_empty_store_does_not_claim_anything_verified(tmp_path: Path, sim: Any) -> None:
    (tmp_path / "archive").mkdir()
    config = _auditor_config(tmp_path, sim, ())
    result = _run(config, "verify")
    assert result.exit_code == 0
    assert "nothing to verify" in result.stdout and "ok: every object" not in result.stdout


def test_parse_until_is_exclusive_for_timestamps_and_inclusive_for_dates() -> None:
    assert parse_until("2026-11-30") == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_until("2026-11-30T00:00:00Z") == datetime(2026, 11, 30, tzinfo=UTC)
    assert parse_until("2026-11-30T10:00:00+02:00") == datetime(2026, 11, 30, 8, tzinfo=UTC)
    assert parse_until("2026-12-31") == datetime(2027, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_until("30/11/2026")


def test_until_a_bare_date_covers_that_day_and_a_timestamp_ends_before_it(tmp_path: Path, sim: Any) -> None:
    day = (datetime.now(UTC) - timedelta(days=3)).replace(hour=12, minute=0, second=0, microsecond=0)
    config = _archive(tmp_path, sim, started_at=day)
    d = f"{day:%Y-%m-%d}"
    whole_day = json.loads(_run(config, "verify", "--json", "--since", d, "--until", d).stdout)
    assert whole_day["recordings"] == 2
    noon = f"{d}T12:00:00Z"
    before_noon = json.loads(_run(config, "verify", "--json", "--since", d, "--until", noon).stdout)
    assert before_noon["recordings"] == 0  # a timestamp is exclusive: started exactly at noon is outside
    assert json.loads(_run(config, "verify", "--json", "--since", noon, "--until", d).stdout)["recordings"] == 2

    report = invoke(config, sim, "report", "--since", d, "--until", d, "--json")
    assert [day["day"] for a in json.loads(report.stdout)["accounts"] for day in a["days"]] == [d]
    next_midnight = f"{day + timedelta(days=1):%Y-%m-%d}T00:00:00Z"
    exclusive = invoke(config, sim, "report", "--since", d, "--until", next_midnight, "--json")
    assert [day["day"] for a in json.loads(exclusive.stdout)["accounts"] for day in a["days"]] == [d]


def test_verify_manifests_names_a_rewritten_recording_and_one_deleted_whole(tmp_path: Path, sim: Any) -> None:
    """The manifest join (on disk, not in memory) finds both directions of disagreement."""
    import hashlib
    import shutil

    from storage.local import LocalStorage
    from tests._compliance import documents
    from worker.compliance.manifests import close_days

    config = _archive(tmp_path, sim)
    storage = LocalStorage(tmp_path / "archive")
    close_days(storage, "c-convirza", now=datetime.now(UTC) + timedelta(days=2))
    assert _run(config, "verify", "--manifests").exit_code == 0
    (rewritten_key, rewritten), (deleted_key, _deleted) = sorted(documents(storage).values())
    # a consistent forgery: new bytes, and a metadata.json that agrees with them
    original = next(o for o in rewritten["objects"] if o["role"] == "original")
    new_bytes = b"RIFF" + b"\0" * 60
    (tmp_path / "archive" / original["key"]).write_bytes(new_bytes)
    original.update(size=len(new_bytes), sha256=hashlib.sha256(new_bytes).hexdigest())
    (tmp_path / "archive" / rewritten_key).write_text(json.dumps(rewritten))
    shutil.rmtree(tmp_path / "archive" / deleted_key.rsplit("/", 1)[0])

    result = _run(config, "verify", "--manifests", "--json")
    assert result.exit_code == 1
    failures = {f["key"]: f for f in json.loads(result.stdout)["failures"]}
    assert failures[original["key"]]["problem"].startswith("differs from its manifest line")
    assert failures[original["key"]]["found"] == f"sha256:{original['sha256']}"
    assert failures[rewritten_key]["problem"].startswith("differs from its manifest line")
    gone = [k for k, f in failures.items() if f["problem"].endswith("but not archived")]
    assert deleted_key in gone and len(gone) == 2  # its original and its metadata.json


def test_a_windowed_verify_finds_unconfigured_accounts_from_the_archivers_records(tmp_path: Path, sim: Any) -> None:
    day = (datetime.now(UTC) - timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
    _archive(tmp_path, sim, ("convirza", "envoy"), started_at=day)
    config = _auditor_config(tmp_path, sim, ())
    d = f"{day:%Y-%m-%d}"
    report = json.loads(_run(config, "verify", "--json", "--since", d, "--until", d).stdout)
    assert sorted(report["unconfigured_accounts"]) == ["convirza/c-convirza", "envoy/c-envoy"]
    assert report["recordings"] == 4 and report["ok"] is True
