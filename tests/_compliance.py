"""Helpers for the compliance tests: a real config file, the real CLI, and looking into storage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from config import Settings, load_settings
from worker.cli import cli


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def write_config(path: Path, data: dict[str, Any]) -> Path:
    """A TOML file from a mapping of tables (and ``accounts``, an array of tables)."""
    out: list[str] = []
    for table, values in data.items():
        if table == "accounts":
            continue
        out.append(f"[{table}]")
        out.extend(f"{k} = {_toml_value(v)}" for k, v in values.items() if v is not None)
        out.append("")
    for account in data.get("accounts", []):
        out.append("[[accounts]]")
        out.extend(f"{k} = {_toml_value(v)}" for k, v in account.items() if v is not None)
        out.append("")
    path.write_text("\n".join(out), encoding="utf-8")
    return path


def make_config(tmp_path: Path, sim: Any, storage: dict[str, Any], vendors: tuple[str, ...] = ("convirza",),
                **tables: Any) -> Path:
    data: dict[str, Any] = {"storage": {"work_dir": str(tmp_path / "work"), **storage}}
    data.update(tables)
    data["accounts"] = [sim.account(v, name=f"c-{v}") for v in vendors]
    return write_config(tmp_path / "recarchive.toml", data)


def s3_storage_table(bucket: Any, **extra: Any) -> dict[str, Any]:
    return {"url": f"s3://{bucket.name}/arch", "endpoint_url": bucket.endpoint_url, "region": "us-east-1", **extra}


def invoke(config: Path, sim: Any, *args: str) -> Result:
    """The real ``recarchive`` command line, in this process."""
    runner = CliRunner()
    return runner.invoke(cli, [args[0], "--config", str(config), *args[1:]], env=dict(sim.environ()),
                         catch_exceptions=False)


def settings_of(config: Path, sim: Any) -> Settings:
    return load_settings(config, sim.environ())


def json_out(result: Result) -> Any:
    return json.loads(result.stdout)


def documents(storage: Any) -> dict[str, tuple[str, dict[str, Any]]]:
    """{recording_id: (metadata.json key, document)} for every committed base recording."""
    out = {}
    for info in storage.list(""):
        if info.key.endswith("/metadata.json") and not info.key.startswith("_") and len(info.key.split("/")) == 7:
            doc = json.loads(storage.read_bytes(info.key))
            out[doc["recording_id"]] = (info.key, doc)
    return out


def relative(storage: Any, full_key: str) -> str:
    base = storage.full_key("x")[:-1]
    return full_key[len(base):]
