"""Output people and scripts can use: schema keys, plain untruncated lines off a terminal, readable
durations, ``--account`` on ``status``, one log line per recording with ``run -v``, and the metrics
textfile of ``run``. Driven through the real command line against the simulator over HTTP."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from tests._compliance import invoke, json_out, make_config
from worker.cli import cli
from worker.cli._output import human_duration, print_table

VENDORS = ("convirza", "envoy")


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "0 s"), (2, "2 s"), (2.5, "2.5 s"), (42, "42 s"), (182, "3 m 2 s"), (3600 + 4 * 60 + 7, "1 h 04 m"),
    (2 * 86400 + 3 * 3600 + 59, "2 d 03 h"), (-5, "0 s"),
])
def test_durations_read_as_people_say_them(seconds: float, shown: str) -> None:
    assert human_duration(seconds) == shown


def test_tables_never_truncate_a_value() -> None:
    digest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    row = ("acme-convirza-with-a-long-name", digest)
    piped = io.StringIO()
    print_table(Console(file=piped, width=40), "title", ("account", "sha256"), [row])
    assert piped.getvalue().splitlines() == ["title", "account\tsha256", "\t".join(row)]
    narrow = io.StringIO()
    print_table(Console(file=narrow, width=40, force_terminal=True, color_system=None), "title",
                ("account", "sha256"), [row])
    text = narrow.getvalue()
    assert "…" not in text
    # each column's cell, read back line by line, is the whole value folded onto several lines
    cells = [line.split("│")[1:3] for line in text.splitlines() if line.count("│") == 3]
    assert len(cells) > 1
    assert "".join(c[0].strip() for c in cells) == row[0] and "".join(c[1].strip() for c in cells) == digest


def _run(config: Path, sim: Any, *args: str) -> Result:
    return CliRunner().invoke(cli, ["run", "--config", str(config), *args], env=dict(sim.environ()),
                              catch_exceptions=False)


def test_run_json_has_a_schema_and_run_v_logs_one_line_per_recording(
        tmp_path: Path, sim: Any, caplog: pytest.LogCaptureFixture) -> None:
    sim.add("convirza", 2, kind="wav", seconds=1.0)
    sim.add("envoy", 1, kind="m4a", seconds=1.0)
    config = make_config(tmp_path, sim, {"url": f"file://{tmp_path / 'archive'}"}, vendors=VENDORS)
    with caplog.at_level(logging.INFO):
        result = _run(config, sim, "--once", "--json", "-v")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["schema"] == "recarchive.pass/1"
    lines = [r for r in caplog.records if getattr(r, "recording_id", None) and getattr(r, "outcome", None)]
    assert len(lines) == 3
    ids = {r.recording_id for r in lines}  # type: ignore[attr-defined]
    assert ids == {rec["recording_id"] for acct in document["accounts"] for rec in acct["recordings"]}
    for record in lines:
        message = record.getMessage()
        assert record.outcome == "archived"  # type: ignore[attr-defined]
        assert message.startswith(f"{record.account}/{record.recording_id}: archived, ")  # type: ignore[attr-defined]
        assert f", {record.bytes} bytes, " in message and message.endswith(" s")  # type: ignore[attr-defined]
        assert record.bytes > 0  # type: ignore[attr-defined]


def test_run_and_status_print_plain_lines_when_piped(tmp_path: Path, sim: Any) -> None:
    sim.add("convirza", 1, kind="wav", seconds=1.0)
    sim.add("envoy", 1, kind="m4a", seconds=1.0)
    config = make_config(tmp_path, sim, {"url": f"file://{tmp_path / 'archive'}"}, vendors=VENDORS)
    result = _run(config, sim, "--once")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1].split("\t")[:3] == ["account", "provider", "found"]
    rows = {line.split("\t")[0]: line.split("\t") for line in lines[2:4]}
    assert set(rows) == {"c-convirza", "c-envoy"} and rows["c-convirza"][-1] == "ok"
    assert "…" not in result.stdout

    status = invoke(config, sim, "status")
    assert status.exit_code == 0, status.output
    header, *rest = status.stdout.splitlines()[1:]
    assert header.split("\t") == ["account", "provider", "watermark", "lag", "archived", "pending", "not ready",
                                  "parked"]
    assert [row.split("\t")[0] for row in rest] == ["c-convirza", "c-envoy"]
    assert all(row.split("\t")[3].endswith(" s") or " m " in row.split("\t")[3] for row in rest)


def test_status_takes_account_and_its_json_carries_a_schema(tmp_path: Path, sim: Any) -> None:
    sim.add("convirza", 1, kind="wav", seconds=1.0)
    sim.add("envoy", 1, kind="m4a", seconds=1.0)
    config = make_config(tmp_path, sim, {"url": f"file://{tmp_path / 'archive'}"}, vendors=VENDORS)
    assert _run(config, sim, "--once").exit_code == 0
    status = invoke(config, sim, "status", "--json", "--account", "c-envoy")
    document = json_out(status)
    assert document["schema"] == "recarchive.status/1"
    assert [a["account"] for a in document["accounts"]] == ["c-envoy"]
    assert document["accounts"][0]["archived"] == 1
    assert isinstance(document["accounts"][0]["watermark_lag_seconds"], int)
    both = json_out(invoke(config, sim, "status", "--json", "--account", "c-envoy", "--account", "c-convirza"))
    assert [a["account"] for a in both["accounts"]] == ["c-envoy", "c-convirza"]
    unknown = invoke(config, sim, "status", "--account", "nope")
    assert unknown.exit_code == 2 and "nope" in unknown.stderr


def test_run_writes_the_metrics_textfile(tmp_path: Path, sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sim.add("convirza", 2, kind="wav", seconds=1.0)
    stuck = sim.add("envoy", 2, kind="m4a", seconds=1.0)[1]
    sim.set_fault("envoy", stuck.id, "html200")
    config = make_config(tmp_path, sim, {"url": f"file://{tmp_path / 'archive'}"}, vendors=VENDORS)
    target = tmp_path / "textfile" / "recarchive.prom"
    assert _run(config, sim, "--once", "--metrics-file", str(target)).exit_code == 1  # one recording parked
    samples = {(s.name, s.labels.get("account")): s.value
               for family in text_string_to_metric_families(target.read_text()) for s in family.samples}
    assert samples[("recarchive_parked_recordings", "c-envoy")] == 1.0
    assert samples[("recarchive_parked_recordings", "c-convirza")] == 0.0
    for account in ("c-convirza", "c-envoy"):
        assert samples[("recarchive_last_discovery_success_timestamp_seconds", account)] > 0
        assert 0 <= samples[("recarchive_watermark_lag_seconds", account)] < 24 * 3600
    assert ("recarchive_build_info", None) in samples
    # the environment variable stands in for the option
    env_target = tmp_path / "env.prom"
    monkeypatch.setenv("RECARCHIVE_METRICS_TEXTFILE", str(env_target))
    _run(config, sim, "--once", "--account", "c-convirza")
    accounts = {s.labels.get("account") for family in text_string_to_metric_families(env_target.read_text())
                for s in family.samples}
    assert "c-convirza" in accounts and "c-envoy" not in accounts


def test_report_takes_account_and_reads_only_that_token(tmp_path: Path, sim: Any) -> None:
    from datetime import UTC, datetime, timedelta

    sim.add("convirza", 1, kind="wav", seconds=1.0)
    sim.add("envoy", 2, kind="m4a", seconds=1.0)
    config = make_config(tmp_path, sim, {"url": f"file://{tmp_path / 'archive'}"}, vendors=VENDORS)
    assert _run(config, sim, "--once").exit_code == 0
    today = datetime.now(UTC).date()
    env: dict[str, str | None] = {**sim.environ(), sim.token_env("convirza"): None}
    result = CliRunner().invoke(cli, ["report", "--config", str(config), "--account", "c-envoy", "--json",
                                      "--since", f"{today - timedelta(days=8)}", "--until", f"{today}"],
                                env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["schema"] == "recarchive.report/1" and document["ok"] is True
    assert [a["account"] for a in document["accounts"]] == ["c-envoy"]
    plain = CliRunner().invoke(cli, ["report", "--config", str(config), "--account", "c-envoy",
                                     "--since", f"{today - timedelta(days=8)}", "--until", f"{today}"],
                               env=env, catch_exceptions=False)
    assert plain.exit_code == 0
    lines = plain.stdout.splitlines()
    assert lines[1].split("\t")[:4] == ["account", "day", "listed", "archived"]
    rows = [line.split("\t") for line in lines[2:] if line.startswith("c-envoy\t")]
    assert sum(int(row[2]) for row in rows) == 2 and sum(int(row[3]) for row in rows) == 2


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_run_dry_run_lists_what_would_be_archived_and_writes_nothing(tmp_path: Path, sim: Any) -> None:
    archive = tmp_path / "archive"
    first = sim.add("convirza", 3, kind="wav", seconds=1.0)
    sim.set_fault("convirza", first[2].id, "html200")
    config = make_config(tmp_path, sim, {"url": f"file://{archive}"}, vendors=VENDORS)
    assert _run(config, sim, "--once").exit_code == 1  # two archived, one parked
    new = sim.add("convirza", 2, kind="wav", seconds=1.0) + sim.add("envoy", 1, kind="m4a", seconds=1.0)
    waiting = sim.add("envoy", 1, kind="m4a", seconds=1.0, state="not_ready")
    before = _tree(archive)
    sim.clear_requests()

    result = _run(config, sim, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["schema"] == "recarchive.dry-run/1" and document["dry_run"] is True
    by_account = {a["account"]: a for a in document["accounts"]}
    convirza, envoy = by_account["c-convirza"], by_account["c-envoy"]
    assert (convirza["would_archive"], convirza["unchanged"], convirza["parked_earlier"]) == (2, 2, 1)
    assert (envoy["would_archive"], envoy["not_ready"]) == (1, 1)
    would = {r["recording_id"]: r for a in document["accounts"] for r in a["recordings"]}
    assert set(would) == {str(r.id) for r in new}
    assert all(r["outcome"] == "would_archive" and r["keys"][0].endswith(f"/{rid}/") for rid, r in would.items())
    assert str(waiting[0].id) not in would
    # nothing fetched, nothing written: no media request, the archive (state included) byte for byte
    assert not [r for r in sim.requests if r.kind == "media"]
    assert _tree(archive) == before

    plain = _run(config, sim, "--dry-run")
    assert plain.exit_code == 0
    lines = plain.stdout.splitlines()
    assert lines[1].split("\t")[:6] == ["account", "provider", "since", "until", "found", "would archive"]
    assert sorted(line.split()[2].split("/", 1)[1] for line in lines if line.startswith("would archive ")) == \
        sorted(would)
    assert _tree(archive) == before
    # the real pass then archives exactly those
    done = json.loads(_run(config, sim, "--once", "--json").stdout)
    archived = {r["recording_id"] for a in done["accounts"] for r in a["recordings"] if r["outcome"] == "archived"}
    assert archived == set(would)


def test_verify_writes_its_gauges_to_the_metrics_textfile(tmp_path: Path, sim: Any) -> None:
    archive = tmp_path / "archive"
    sim.add("convirza", 2, kind="wav", seconds=1.0)
    sim.add("envoy", 1, kind="m4a", seconds=1.0)
    config = make_config(tmp_path, sim, {"url": f"file://{archive}"}, vendors=VENDORS)
    assert _run(config, sim, "--once").exit_code == 0
    target = tmp_path / "verify.prom"

    def samples() -> dict[tuple[str, str | None], float]:
        return {(s.name, s.labels.get("account")): s.value
                for family in text_string_to_metric_families(target.read_text()) for s in family.samples}

    assert invoke(config, sim, "verify", "--metrics-file", str(target)).exit_code == 0
    first = samples()
    assert first[("recarchive_verify_failures", "c-convirza")] == 0.0
    assert first[("recarchive_verify_failures", "c-envoy")] == 0.0
    assert first[("recarchive_verify_last_run_timestamp_seconds", None)] > 0
    assert not any(name == "recarchive_parked_recordings" for name, _ in first)

    original = next((archive / "convirza" / "c-convirza").rglob("original.wav"))
    original.chmod(0o644)
    body = bytearray(original.read_bytes())
    body[len(body) // 2] ^= 0x01  # one bit of one byte, same size
    original.write_bytes(bytes(body))
    result = invoke(config, sim, "verify", "--json", "--metrics-file", str(target))
    assert result.exit_code == 1
    assert samples()[("recarchive_verify_failures", "c-convirza")] == 1.0
    assert samples()[("recarchive_verify_failures", "c-envoy")] == 0.0
    failure = json_out(result)["failures"][0]
    assert failure["expected"].startswith("sha256:") and failure["found"].startswith("sha256:")
    assert failure["expected"] != failure["found"]
    # piped, the failure is one line: the key and both hashes whole, never wrapped at 80 columns
    text = invoke(config, sim, "verify")
    lines = [line for line in text.stdout.splitlines() if line.startswith("FAILED")]
    assert len(lines) == 1 and failure["key"] in lines[0]
    assert failure["expected"].removeprefix("sha256:") in lines[0] and failure["found"].removeprefix("sha256:") in lines[0]


def test_hold_and_rearchive_json_carry_a_schema_and_structured_errors(tmp_path: Path, sim: Any) -> None:
    recording = sim.add("convirza", 1, kind="wav", seconds=1.0)[0]
    config = make_config(tmp_path, sim, {"url": f"file://{tmp_path / 'archive'}"}, vendors=VENDORS)
    assert _run(config, sim, "--once").exit_code == 0
    again = invoke(config, sim, "rearchive", "--account", "c-convirza", "--id", str(recording.id),
                   "--id", "999999999", "--json")
    document = json_out(again)
    assert again.exit_code == 1 and document["schema"] == "recarchive.rearchive/1"
    assert [r["outcome"] for r in document["recordings"]] == ["unchanged"]
    assert len(document["errors"]) == 1
    error = document["errors"][0]
    assert error["recording_id"] == "999999999" and error["reason"] and error["problem"]
    held = invoke(config, sim, "hold", "--account", "c-convirza", "--id", str(recording.id), "--on", "--json")
    assert held.exit_code == 0, held.output
    assert json_out(held)["schema"] == "recarchive.hold/1" and json_out(held)["legal_hold"] == "on"
