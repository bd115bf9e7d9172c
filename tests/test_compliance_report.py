"""``recarchive report`` (completeness, issue 7 item 4) and expiry awareness in ``status`` (item 6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests._compliance import invoke, json_out, make_config


def _window() -> tuple[str, str]:
    today = datetime.now(UTC).date()
    return f"{today - timedelta(days=1):%Y-%m-%d}", f"{today:%Y-%m-%d}"


def _gaps(report: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {g["recording_id"]: (g["reason"], g["detail"])
            for account in report["accounts"] for day in account["days"] for g in day["gaps"]}


def test_report_names_every_gap_with_its_reason(tmp_path: Path, sim: Any) -> None:
    archived, parked, not_ready, deleted = sim.add("siro", 4, kind="m4a", seconds=1.0)
    sim.set_fault("siro", parked.id, "html200")  # every download is an HTML page: parked
    sim.set_state("siro", not_ready.id, "not_ready")
    sim.set_state("siro", deleted.id, "deleted")
    config = make_config(tmp_path, sim, {"url": f"file://{tmp_path / 'archive'}"}, vendors=("siro",))
    assert invoke(config, sim, "run", "--once").exit_code == 1  # the parked one
    missing = sim.add("siro", 1, kind="m4a", seconds=1.0)[0]  # listed by the vendor after the pass

    since, until = _window()
    result = invoke(config, sim, "report", "--since", since, "--until", until, "--json")
    assert result.exit_code == 1
    report = json_out(result)
    assert report["ok"] is False
    gaps = _gaps(report)
    assert {rid: reason for rid, (reason, _detail) in gaps.items()} == {
        parked.id: "parked", not_ready.id: "not_ready", deleted.id: "deleted_at_vendor", missing.id: "missing"}
    assert "not_media" in (gaps[parked.id][1] or "")
    days = report["accounts"][0]["days"]
    assert sum(d["listed"] for d in days) == 5
    assert sum(d["archived"] for d in days) == 1
    text = invoke(config, sim, "report", "--since", since, "--until", until)
    assert text.exit_code == 1
    assert "missing c-siro" in text.stdout and missing.id in text.stdout

    # once the parked and the missing one are archived, what is left is not a failure
    sim.clear_fault("siro", parked.id)
    assert invoke(config, sim, "rearchive", "--account", "c-siro", "--id", parked.id).exit_code == 0
    assert invoke(config, sim, "run", "--once").exit_code == 0
    after = invoke(config, sim, "report", "--since", since, "--until", until, "--json")
    assert after.exit_code == 0, after.output
    assert {rid: reason for rid, (reason, _d) in _gaps(json_out(after)).items()} == {
        not_ready.id: "not_ready", deleted.id: "deleted_at_vendor"}
    assert archived.id not in _gaps(json_out(after))


def test_report_rejects_a_reversed_range(tmp_path: Path, sim: Any) -> None:
    config = make_config(tmp_path, sim, {"url": f"file://{tmp_path / 'archive'}"})
    result = invoke(config, sim, "report", "--since", "2026-02-02", "--until", "2026-02-01")
    assert result.exit_code == 2
    assert "--since" in result.stderr


def test_status_warns_when_a_pending_link_is_about_to_expire(tmp_path: Path, sim: Any) -> None:
    ok, stuck = sim.add("convirza", 2, kind="wav", seconds=1.0)
    sim.set_fault("convirza", stuck.id, "html200")
    config = make_config(tmp_path, sim, {"url": f"file://{tmp_path / 'archive'}"})
    assert invoke(config, sim, "run", "--once").exit_code == 1
    status = invoke(config, sim, "status", "--json")
    assert status.exit_code == 0, status.output
    account = json_out(status)["accounts"][0]
    assert account["parked"] == 1
    # the simulator's links live 60 s: the parked recording's link runs out long before 2 days
    expiry = [w for w in account["warnings"] if w["kind"] == "link_expiry"]
    assert len(expiry) == 1 and "expires" in expiry[0]["message"] and expiry[0]["expires_at"], account["warnings"]
    assert json_out(status)["schema"] == "recarchive.status/1"
    from storage.local import LocalStorage
    from worker.pipeline.state import StateStore

    last = StateStore(LocalStorage(tmp_path / "archive")).last_pass("c-convirza")
    assert last is not None
    expiry = datetime.fromisoformat(last["oldest_pending_expires_at"].replace("Z", "+00:00"))
    assert datetime.now(UTC) < expiry < datetime.now(UTC) + timedelta(minutes=2)
    assert ok.id != stuck.id
