"""Shell completion completes account names from the config, reading no token (docs/operations.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent / "recarchive"
CONFIG = """
[storage]
url = "{root}"

[[accounts]]
name = "acme-envoy"
provider = "envoy"
base_url = "https://api.tryenvoy.ai"
token_env = "UNSET_ENVOY_TOKEN"
start = "2026-01-01"

[[accounts]]
name = "beta-convirza"
provider = "convirza"
base_url = "https://api.convirza.com"
token_env = "UNSET_CONVIRZA_TOKEN"
start = "2026-01-01"
"""


def _complete(words: str, config_env: str | None = None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNSET_")}
    env.update(COMP_WORDS=words, COMP_CWORD=str(len(words.split()) - (0 if words.endswith(" ") else 1)),
               _RECARCHIVE_COMPLETE="bash_complete")
    if config_env:
        env["RECARCHIVE_CONFIG"] = config_env
    out = subprocess.run([str(BIN)], capture_output=True, text=True, env=env, timeout=60, check=True).stdout
    return [line.split(",", 1)[1] for line in out.splitlines() if line.startswith("plain,")]


def test_account_names_complete_from_the_named_config(tmp_path: Path) -> None:
    config = tmp_path / "recarchive.toml"
    config.write_text(CONFIG.format(root=tmp_path / "archive"))
    assert _complete(f"recarchive status --config {config} --account ac") == ["acme-envoy"]
    assert _complete(f"recarchive run --config {config} --account ") == ["acme-envoy", "beta-convirza"]
    assert _complete("recarchive verify --account b", config_env=str(config)) == ["beta-convirza"]


def test_an_unreadable_config_completes_nothing_quietly(tmp_path: Path) -> None:
    assert _complete(f"recarchive status --config {tmp_path / 'missing.toml'} --account ") == []
