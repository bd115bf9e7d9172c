"""Manual re-archive and status, through the CLI as an operator runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.test_cli_e2e import write_config

BIN = Path(sys.executable).parent / "recarchive"


def cli(config: Path, sim: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args, "--config", str(config)], capture_output=True, text=True,
                          env={**os.environ, **sim.environ()}, timeout=300)


def archived_docs(root: Path) -> dict[str, list[dict[str, Any]]]:
    docs: dict[str, list[dict[str, Any]]] = {}
    for path in root.rglob("metadata.json"):
        doc = json.loads(path.read_text())
        docs.setdefault(doc["recording_id"], []).append(doc)
    return docs


def test_rearchive_unchanged_revision_and_parked(sim: Any, tmp_path: Path) -> None:
    recs = sim.add("convirza", 3, kind="wav", seconds=1.0)
    sim.set_fault("convirza", recs[2].id, "html200")
    root = tmp_path / "archive"
    config = write_config(tmp_path / "c.toml", {"url": str(root)}, [sim.account("convirza", name="acme")])

    first = cli(config, sim, "run", "--once", "--json")
    assert first.returncode == 1  # one parked
    status = json.loads(cli(config, sim, "status", "--json").stdout)["accounts"][0]
    assert status["archived"] == 2 and status["parked"] == 1
    assert status["parked_failures"][0]["recording_id"] == recs[2].id
    assert status["parked_failures"][0]["reason"] == "not_media"

    # the next pass does not hammer the parked recording: skipped, reported, not a new failure
    sim.clear_requests()
    since = min(r.started_at for r in recs).strftime("%Y-%m-%dT%H:%M:%SZ")
    again_run = cli(config, sim, "run", "--once", "--json", "--since", since)
    assert again_run.returncode == 0, again_run.stderr
    acct = json.loads(again_run.stdout)["accounts"][0]
    assert acct["parked_earlier"] == 1 and acct["parked"] == 0 and acct["unchanged"] == 2
    assert sim.media_requests(recs[2].id) == 0

    # unchanged bytes: reported, nothing written
    before = sorted(p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() and "_state" not in p.parts)
    same = cli(config, sim, "rearchive", "--account", "acme", "--id", recs[0].id, "--json")
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["recordings"][0]["outcome"] == "unchanged"
    after = sorted(p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() and "_state" not in p.parts)
    assert before == after

    # changed bytes at the vendor: a new revision beside the untouched first copy
    old_sha = recs[1].sha256
    sim.replace_media("convirza", recs[1].id, kind="mp3", seconds=2.0)
    changed = cli(config, sim, "rearchive", "--account", "acme", "--id", recs[1].id, "--json")
    assert changed.returncode == 0, changed.stderr
    assert json.loads(changed.stdout)["recordings"][0]["outcome"] == "revision"
    docs = archived_docs(root)[recs[1].id]
    assert len(docs) == 2
    assert {d["objects"][0]["sha256"] for d in docs} == {old_sha, sim.get("convirza", recs[1].id).sha256}
    again = cli(config, sim, "rearchive", "--account", "acme", "--id", recs[1].id, "--json")
    assert json.loads(again.stdout)["recordings"][0]["outcome"] == "unchanged"

    # the parked one, once the vendor serves media again
    sim.clear_fault("convirza", recs[2].id)
    fixed = cli(config, sim, "rearchive", "--account", "acme", "--id", recs[2].id, "--json")
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads(fixed.stdout)["recordings"][0]["outcome"] == "archived"
    status = json.loads(cli(config, sim, "status", "--json").stdout)["accounts"][0]
    assert status["parked"] == 0 and status["archived"] == 3


def test_rearchive_by_window_and_usage_errors(sim: Any, tmp_path: Path) -> None:
    recs = sim.add("envoy", 2, seconds=1.0)
    config = write_config(tmp_path / "c.toml", {"url": str(tmp_path / "a")}, [sim.account("envoy", name="e")])
    since = min(r.created_at for r in recs).strftime("%Y-%m-%dT%H:%M:%SZ")
    proc = cli(config, sim, "rearchive", "--account", "e", "--since", since, "--until", "2099-01-01", "--json")
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["outcome"] for r in json.loads(proc.stdout)["recordings"]) == ["archived", "archived"]
    neither = cli(config, sim, "rearchive", "--account", "e")
    assert neither.returncode == 2 and "--id" in neither.stderr
    unknown = cli(config, sim, "rearchive", "--account", "nope", "--id", "1")
    assert unknown.returncode == 2 and "nope" in unknown.stderr
