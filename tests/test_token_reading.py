"""Each command reads the token variables of the vendors it contacts, and no others (CONTRACT §1, §2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.test_cli_e2e import write_config

BIN = Path(sys.executable).parent / "recarchive"


def _cli(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args, "--config", str(config)], capture_output=True, text=True,
                          env=env, timeout=300)


def test_commands_read_only_the_tokens_of_the_vendors_they_contact(sim: Any, tmp_path: Path) -> None:
    recs = sim.add("convirza", 2, kind="wav", seconds=1.0)
    sim.add("envoy", 1, seconds=1.0)
    accounts = [sim.account("convirza", name="a"), sim.account("envoy", name="b")]
    config = write_config(tmp_path / "c.toml", {"url": str(tmp_path / "archive")}, accounts)
    only_a = {**os.environ, **{k: v for k, v in sim.environ().items() if "CONVIRZA" in k}}
    assert len(only_a) < len({**os.environ, **sim.environ()})  # b's token is really missing

    run = _cli(config, only_a, "run", "--once", "--account", "a", "--json")
    assert run.returncode == 0, run.stderr
    assert [acct["archived"] for acct in json.loads(run.stdout)["accounts"]] == [2]

    redo = _cli(config, only_a, "rearchive", "--account", "a", "--id", recs[0].id, "--json")
    assert redo.returncode == 0, redo.stderr

    no_tokens = {k: v for k, v in os.environ.items() if k not in sim.environ()}
    hold = _cli(config, no_tokens, "hold", "--account", "a", "--id", recs[0].id, "--off", "--json")
    assert "is not set" not in hold.stderr, hold.stderr  # a local folder has no legal hold; no token read

    # a command that contacts b's vendor without its token: exit 2, one line naming the variable
    missing = _cli(config, only_a, "run", "--once", "--account", "b")
    assert missing.returncode == 2
    assert "token_env" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
