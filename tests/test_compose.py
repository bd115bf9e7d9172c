"""docker-compose.yml and the Dockerfile: every service, command and module they name exists here.

A Docker engine is not needed: the file is parsed and checked against the code. ``docker compose
config`` runs as well when an engine answers.
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest

from config import settings_from_mapping
from providers.simulator import Simulator
from tasks.app import QUEUES
from worker.cli import cli

yaml = pytest.importorskip("yaml", reason="PyYAML parses docker-compose.yml")

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
EXPECTED = {"redis", "minio", "createbucket", "simulator", "worker", "discoverer", "transcoder", "beat", "flower"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def _built_here(service: dict[str, Any]) -> bool:
    return service.get("build") in (".", "./")


def test_every_service_is_there_and_runnable(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == EXPECTED
    for name, service in services.items():
        assert service.get("image") or service.get("build"), f"{name}: neither image nor build"
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
        mode = service.get("network_mode", "")
        if mode.startswith("service:"):
            assert mode.split(":", 1)[1] in services
    assert "--with-lock" in " ".join(_command(services["createbucket"]))  # Object Lock on the bucket
    assert services["redis"]["command"][:1] == ["redis-server"]


def test_every_command_names_code_that_exists(compose: dict[str, Any]) -> None:
    consumed: set[str] = set()
    for name, service in compose["services"].items():
        if not _built_here(service):
            continue
        command = _command(service)
        assert command, f"{name}: no command"
        if command[0] == "recarchive":
            group_ctx = cli.make_context("recarchive", command[1:2], resilient_parsing=True)
            sub = cli.get_command(group_ctx, command[1])
            assert isinstance(sub, click.Command), f"{name}: recarchive has no command {command[1]!r}"
            sub.make_context(command[1], command[2:])  # the options parse (raises on a bad one)
            continue
        assert command[:3] == ["celery", "-A", "worker"], f"{name}: {command}"
        module = importlib.import_module(command[2])
        assert module.app.main == "recarchive"  # `celery -A worker` finds the app lazily
        assert command[3] in ("worker", "beat", "flower"), f"{name}: celery {command[3]}"
        if command[3] == "flower":
            importlib.import_module("flower")
        if command[3] == "worker" and "-Q" in command:
            queues = set(command[command.index("-Q") + 1].split(","))
            assert queues <= set(QUEUES), f"{name}: unknown queue in {queues}"
            consumed |= queues
    assert consumed == set(QUEUES)  # every queue has a consumer


def test_inline_config_is_a_valid_recarchive_config(compose: dict[str, Any]) -> None:
    content = compose["configs"]["recarchive_toml"]["content"]
    data = tomllib.loads(content)
    worker = compose["services"]["worker"]
    environ = {k: str(v) for k, v in worker["environment"].items()}
    settings = settings_from_mapping(data, environ)
    assert settings.broker.url == "redis://redis:6379/0"
    assert settings.storage.url.startswith("s3://recordings/")
    assert {a.provider for a in settings.accounts} == {"convirza", "convoso", "envoy", "salesloft", "siro"}
    sim = Simulator(seed=0)  # not started: only its tokens and options are read
    for account in settings.accounts:
        assert environ[account.token_env] == sim.token(account.provider), f"{account.name}: not the simulator's token"
        assert account.base_url == f"http://127.0.0.1:8080/{account.provider}"
    assert settings.account("demo-convoso").timezone == sim.options.convoso_timezone
    target = worker["configs"][0]["target"]
    assert environ["RECARCHIVE_CONFIG"] == target
    simulate = _command(compose["services"]["simulator"])
    assert simulate[simulate.index("--port") + 1] == "8080"


def test_dockerfile_installs_every_package_it_runs() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    for package in ("config", "providers", "storage", "tasks", "worker"):
        assert re.search(rf"^COPY {package} \./{package}$", text, re.M), f"Dockerfile does not copy {package}/"
        assert (REPO / package / "__init__.py").exists()
    assert "pip install ." in text and "flower" in text
    assert re.search(r"^USER (?!root)", text, re.M)


def _docker_engine() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return "no docker client on this machine"
    try:
        done = subprocess.run([docker, "info"], capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"docker info failed: {exc}"
    return None if done.returncode == 0 else "no Docker engine answers (docker info failed)"


def test_docker_compose_config_validates() -> None:
    reason = _docker_engine()
    if reason is not None:
        pytest.skip(f"docker compose config not run: {reason}")
    done = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"], capture_output=True,
                          text=True, timeout=60, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr
