"""Configuration: every mistake is one line naming the key, exit 2, before any network call."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from config import load_settings, settings_from_mapping
from config.units import parse_duration, parse_rate, parse_timestamp
from worker.errors import ConfigError

GOOD = """
[storage]
url = "s3://archive-bucket/recordings"
endpoint_url = "http://127.0.0.1:9000"

[schedule]
discover_every = "5m"
lookback = "2h"

[[accounts]]
name = "acme-convirza"
provider = "convirza"
base_url = "https://platform-api.convirza.com"
token_env = "ACME_CONVIRZA_TOKEN"
start = "2026-01-01T00:00:00Z"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recarchive.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_good_config_loads_with_token_from_env(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), {"ACME_CONVIRZA_TOKEN": "s3cr3t-token"})
    account = settings.accounts[0]
    assert account.token.get_secret_value() == "s3cr3t-token"
    assert "s3cr3t-token" not in repr(settings)
    assert settings.schedule.lookback.total_seconds() == 7200


@pytest.mark.parametrize("value", ["s3cr3t\u202e", "tök", "line\nbreak"])
def test_a_token_no_header_can_carry_is_a_config_error_naming_the_variable_not_the_value(
        tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, GOOD), {"ACME_CONVIRZA_TOKEN": value})
    assert "ACME_CONVIRZA_TOKEN" in str(info.value) and "non-ASCII" in str(info.value)
    assert value not in str(info.value)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda t: t.replace('lookback = "2h"', 'lookback = "2h"\nbogus = 1'), "schedule.bogus: unknown key"),
        (lambda t: t.replace('"5m"', '"five minutes"'), "schedule.discover_every"),
        (lambda t: t.replace('"https://platform-api.convirza.com"', '"ftp://x"'), "accounts[0].base_url"),
        (lambda t: t.replace('provider = "convirza"', 'provider = "nope"'), "accounts[0].provider"),
        (lambda t: t.replace('name = "acme-convirza"', 'name = "Acme Convirza"'), "accounts[0].name"),
        (lambda t: t + t[t.index("[[accounts]]"):], "duplicate account name 'acme-convirza'"),
        (lambda t: t.replace('start = "2026-01-01T00:00:00Z"', 'start = "yesterday"'), "accounts[0].start"),
        (lambda t: t.replace('url = "s3://archive-bucket/recordings"', 'url = "gopher://x"'), "storage.url"),
        (lambda t: t.replace('token_env = "ACME_CONVIRZA_TOKEN"',
                             'token_env = "ACME_CONVIRZA_TOKEN"\ntoken = "inline"'), "accounts[0].token"),
    ],
)
def test_each_mistake_names_its_key(tmp_path: Path, edit, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, edit(GOOD)), {"ACME_CONVIRZA_TOKEN": "x-token"})
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_missing_token_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ACME_CONVIRZA_TOKEN is not set"):
        load_settings(write(tmp_path, GOOD), {})


def _convoso(**keys: object) -> dict[str, object]:
    return {"storage": {"url": "archive"}, "accounts": [{
        "name": "c", "provider": "convoso", "base_url": "https://api.convoso.com", "token_env": "T",
        "start": "2026-01-01", **keys}]}


def test_convoso_needs_a_timezone_but_neither_leads_nor_a_media_base(tmp_path: Path) -> None:
    """Convoso's times are naive: no silent UTC default (PROVIDERS.md). Without lead_ids the whole
    account is archived from its call log; without media_base_url only relative file names fail."""
    with pytest.raises(ConfigError, match="timezone") as info:
        settings_from_mapping(_convoso(), {"T": "tok-1234"})
    assert "\n" not in str(info.value) and "America/New_York" in str(info.value)
    account = settings_from_mapping(_convoso(timezone="America/Chicago"), {"T": "tok-1234"}).accounts[0]
    assert account.lead_ids is None and account.media_base_url is None and str(account.zone) == "America/Chicago"
    for bad, key in (({"timezone": "Mars/Olympus"}, "timezone"), ({"timezone": "UTC", "lead_ids": []}, "lead_ids")):
        with pytest.raises(ConfigError, match=key):
            settings_from_mapping(_convoso(**bad), {"T": "tok-1234"})


def test_cli_exits_2_for_a_convoso_account_without_timezone(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(textwrap.dedent("""\
        [storage]
        url = "archive"

        [[accounts]]
        name = "c"
        provider = "convoso"
        base_url = "https://api.convoso.com"
        token_env = "CONVOSO_T"
        start = "2026-01-01T00:00:00Z"
        """), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "worker.cli", "run", "--once", "--config", str(path)],
                          capture_output=True, text=True, env={"CONVOSO_T": "t-123456", "PATH": ""}, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "timezone" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('lookback = "2h"', 'lookback = "2 hours please"'))
    proc = subprocess.run([sys.executable, "-m", "worker.cli", "run", "--once", "--config", str(path)],
                          capture_output=True, text=True, env={"ACME_CONVIRZA_TOKEN": "t-123456", "PATH": ""},
                          timeout=60)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "schedule.lookback" in lines[0]
    assert "Traceback" not in proc.stderr


def test_cli_missing_config_file_exits_2(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "worker.cli", "status", "--config", str(tmp_path / "nope.toml")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "not found" in proc.stderr


def test_units() -> None:
    assert parse_duration("90s").total_seconds() == 90
    assert parse_duration("1h30m").total_seconds() == 5400
    assert parse_rate("600/m").per_second == 10
    assert parse_timestamp("2026-11-01").isoformat() == "2026-11-01T00:00:00+00:00"
    assert parse_timestamp("2026-11-01T02:00:00+02:00").isoformat() == "2026-11-01T00:00:00+00:00"
    for bad in ("", "5", "-5m", "5 parsecs"):
        with pytest.raises(ValueError):
            parse_duration(bad)


@pytest.mark.parametrize("command", ["run", "rearchive", "status", "verify", "report", "hold", "doctor", "demo",
                                     "simulate"])
def test_every_command_takes_config_and_help(command: str) -> None:
    """CONTRACT §1: every command takes --config PATH and --help."""
    from click.testing import CliRunner

    from worker.cli import cli

    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert "--config" in result.output
