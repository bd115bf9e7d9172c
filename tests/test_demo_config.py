"""``recarchive demo`` leaves a config beside its archive: ``status``, ``verify``, ``show`` and
``export`` work on it with no token at all, and ``report`` with ``recarchive simulate`` running and the
tokens the demo printed. Every command runs as a separate process (the installed entry point)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "recarchive"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _clean_env() -> dict[str, str]:
    """The environment without any token variable or config pointer."""
    return {k: v for k, v in os.environ.items()
            if not (k.startswith("SIM_") or k.endswith("_TOKEN") or k.endswith("_SECRET") or k == "RECARCHIVE_CONFIG")}


def _cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=240)


@pytest.fixture
def simulate_port() -> Iterator[int]:
    """``recarchive simulate`` as a separate process, stopped by the test. It binds port 0 and says
    which port it got: a port chosen beforehand could be taken by another process in between (seen
    once in a full run: the report step then met a closed port)."""
    proc = subprocess.Popen([str(BIN), "simulate", "--port", "0"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_clean_env(), text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # "recarchive simulator on http://127.0.0.1:PORT (seed 0); ..."
        match = re.search(r"http://127\.0\.0\.1:(\d+)", first)
        assert match and proc.poll() is None, f"recarchive simulate did not start: {first!r}"
        port = int(match.group(1))
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_demo_leaves_a_config_every_command_works_on(tmp_path: Path, simulate_port: int) -> None:
    env = _clean_env()
    demo = _cli("demo", "--dir", "recarchive-demo", "--simulator-url", f"http://127.0.0.1:{simulate_port}",
                cwd=tmp_path, env=env)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    config = tmp_path / "recarchive.toml"
    assert config.is_file(), demo.stdout
    text = config.read_text()
    exports = dict(line.removeprefix("export ").split("=", 1) for line in demo.stdout.splitlines()
                   if line.startswith("export "))
    assert exports and all(name in text for name in exports)  # the variables are named ...
    assert not any(value in text for value in exports.values())  # ... their values are not written
    assert f"http://127.0.0.1:{simulate_port}/" in text

    # auditing commands: the config found in the current folder, no token in the environment
    status = _cli("status", "--json", cwd=tmp_path, env=env)
    assert status.returncode == 0, status.stderr
    accounts = {a["account"]: a for a in json.loads(status.stdout)["accounts"]}
    assert accounts["demo-convirza"]["archived"] > 0
    verify = _cli("verify", cwd=tmp_path, env=env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    archived = sorted((tmp_path / "recarchive-demo" / "convirza" / "demo-convirza").glob("*/*/*/*/metadata.json"))
    recording_id = archived[0].parent.name
    show = _cli("show", "--account", "demo-convirza", "--id", recording_id, "--json", cwd=tmp_path, env=env)
    assert show.returncode == 0, show.stderr
    assert json.loads(show.stdout)["recording_id"] == recording_id
    out = tmp_path / "handover"
    export = _cli("export", "--account", "demo-convirza", "--id", recording_id, "--out", str(out), cwd=tmp_path,
                  env=env)
    assert export.returncode == 0, export.stderr
    assert (out / "MANIFEST.sha256").is_file()

    # report talks to the vendors: the simulator started apart, with the tokens the demo printed
    today = datetime.now(UTC).date()
    report = _cli("report", "--json", "--account", "demo-convirza", "--account", "demo-envoy",
                  "--since", f"{today - timedelta(days=4)}", "--until", f"{today}",
                  cwd=tmp_path, env={**env, **exports})
    assert report.returncode in (0, 1), report.stderr  # gaps may show: the simulator made its own dataset
    document = json.loads(report.stdout)
    assert document["schema"] == "recarchive.report/1"
    assert [a["account"] for a in document["accounts"]] == ["demo-convirza", "demo-envoy"]
    assert all(a.get("error") in (None, "") for a in document["accounts"]), document["accounts"]
    assert sum(day["listed"] for a in document["accounts"] for day in a["days"]) > 0

    # a second demo in the same place rewrites its own config, and never someone else's
    mine = tmp_path / "other"
    mine.mkdir()
    (mine / "recarchive.toml").write_text("# my own config\n")
    again = _cli("demo", "--dir", "recarchive-demo", "--rendition", "none", cwd=mine, env=env)
    assert again.returncode == 0, again.stderr
    assert (mine / "recarchive.toml").read_text() == "# my own config\n"
    assert (mine / "recarchive-demo.toml").is_file()
