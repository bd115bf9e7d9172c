"""Helpers for the daemon tests: a TOML config on disk, real ``celery -A worker worker`` subprocesses.

Workers are started with the venv's interpreter from the repository root, log to a file (never a
pipe that could fill), and are stopped by PID: SIGTERM (warm shutdown), SIGKILL if that hangs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def to_toml(data: Mapping[str, Any]) -> str:
    """Enough TOML for our config: tables of scalars and lists, and ``[[accounts]]``."""
    lines: list[str] = []
    for section, body in data.items():
        if isinstance(body, list):
            for item in body:
                lines.append(f"[[{section}]]")
                lines.extend(f"{k} = {_toml_value(v)}" for k, v in item.items() if v is not None)
                lines.append("")
        else:
            lines.append(f"[{section}]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in body.items() if v is not None)
            lines.append("")
    return "\n".join(lines)


def write_config(path: Path, data: Mapping[str, Any]) -> Path:
    path.write_text(to_toml(data), encoding="utf-8")
    return path


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.2, what: str = "condition",
               on_timeout: Callable[[], str] | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = on_timeout() if on_timeout else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{detail}")
        time.sleep(interval)


class WorkerProcess:
    """One ``celery -A worker worker`` subprocess."""

    def __init__(self, config: Path, log_dir: Path, env: Mapping[str, str], *, pool: str = "threads",
                 concurrency: int = 4, queues: str = "discover,download,transcode",
                 extra_env: Mapping[str, str] | None = None) -> None:
        self.name = f"t{uuid.uuid4().hex[:8]}@localhost"
        self.log = log_dir / f"worker-{self.name.split('@')[0]}.log"
        environ = {**os.environ, **env, **(extra_env or {}), "RECARCHIVE_CONFIG": str(config),
                   "PYTHONUNBUFFERED": "1"}
        environ.pop("PYTEST_CURRENT_TEST", None)
        cmd = [sys.executable, "-m", "celery", "-A", "worker", "worker", "--pool", pool,
               "--concurrency", str(concurrency), "-Q", queues, "-n", self.name, "--loglevel", "INFO",
               "--without-gossip", "--without-mingle", "--without-heartbeat"]
        self._out = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=environ, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout: float = 30) -> None:
        wait_until(lambda: b" ready." in self.log.read_bytes() or not self.alive(), timeout,
                   what=f"worker {self.name} to start", on_timeout=self.tail)
        assert self.alive(), f"worker exited early:\n{self.tail()}"

    def peak_rss_kib(self) -> int | None:
        """VmHWM of the worker process (its peak resident set), from /proc."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None

    def kill(self) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._out.close()

    def tail(self, size: int = 6000) -> str:
        try:
            return self.log.read_bytes()[-size:].decode("utf-8", "replace")
        except OSError:
            return ""


def daemon_mapping(sim: Any, bucket: Any, redis_url: str, vendors: list[str], *, rendition: str = "none",
                   lookback: str = "2h", every: str = "1m",
                   overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """A daemon config for ``vendors`` of the simulator ``sim``, archiving into ``bucket``."""
    return {
        "storage": {"url": f"s3://{bucket.name}/recordings", "endpoint_url": bucket.endpoint_url,
                    "region": "us-east-1"},
        "transcode": {"rendition": rendition, "bitrate": "32k"},
        "broker": {"url": redis_url},
        "schedule": {"discover_every": every, "lookback": lookback},
        "accounts": [sim.account(v, **(overrides or {}).get(v, {})) for v in vendors],
    }
