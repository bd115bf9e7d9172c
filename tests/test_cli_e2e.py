"""The contract from outside: `recarchive simulate` and `recarchive run --once` as separate processes,
a real S3 server, the archive checked with boto3, and the token searched for everywhere."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._e2e import BIN, cli, write_config


@pytest.fixture
def simulate_process() -> Iterator[str]:
    """`recarchive simulate` on a free port; yields its base URL; stopped by PID."""
    proc = subprocess.Popen([str(BIN), "simulate", "--host", "127.0.0.1", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        url = None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            match = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
            if match:
                url = match.group(1)
                break
        assert url, "simulator did not announce its address"
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def test_run_once_against_simulate_and_s3(simulate_process: str, s3_bucket: Any, tmp_path: Path) -> None:
    control = httpx.get(f"{simulate_process}/_sim/accounts", timeout=10).json()
    accounts = control["accounts"]
    env = {**os.environ, **control["environ"]}
    config = write_config(tmp_path / "recarchive.toml",
                          {"url": f"s3://{s3_bucket.name}/archive", "endpoint_url": s3_bucket.endpoint_url,
                           "work_dir": str(tmp_path / "work")}, accounts)
    first = cli("run", "--once", "--json", "--config", str(config), env=env)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    expected = {r["id"]: r for r in httpx.get(f"{simulate_process}/_sim/recordings", timeout=10).json()
                if r["state"] == "ready"}
    # every ready recording once per account that lists it (Convoso twice: by lead, and the whole account)
    per_account = {a["name"]: sum(1 for r in expected.values() if r["vendor"] == a["provider"]) for a in accounts}
    assert {a["account"]: a["archived"] for a in summary["accounts"]} == per_account
    assert len(accounts) == 6 and "lead_ids" not in next(a for a in accounts if a["name"] == "sim-convoso-all")

    client = s3_bucket.client
    objects = {o["Key"]: o for page in client.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket.name)
               for o in page.get("Contents", [])}
    metas = [k for k in objects if k.endswith("/metadata.json")]
    assert len(metas) == sum(per_account.values())
    for key in metas:
        doc = json.loads(client.get_object(Bucket=s3_bucket.name, Key=key)["Body"].read())
        rec = expected[doc["recording_id"]]
        original = doc["objects"][0]
        body = client.get_object(Bucket=s3_bucket.name, Key=original["key"])
        data = body["Body"].read()
        assert hashlib.sha256(data).hexdigest() == rec["served_sha256"] == original["sha256"], (key, rec)
        assert body["Metadata"]["sha256"] == rec["served_sha256"]
        assert body["Metadata"]["recording-id"] == doc["recording_id"]
        assert original["key"].endswith("." + rec["served_ext"])

    second = cli("run", "--once", "--json", "--config", str(config), env=env)
    assert second.returncode == 0, second.stderr
    after = {o["Key"]: o["ETag"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket.name)
             for o in page.get("Contents", []) if not o["Key"].startswith("archive/_")}
    assert after == {k: o["ETag"] for k, o in objects.items() if not k.startswith("archive/_")}
    assert sum(a["archived"] for a in json.loads(second.stdout)["accounts"]) == 0

    status = cli("status", "--json", "--config", str(config), env=env)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert sum(a["archived"] for a in report["accounts"]) == sum(per_account.values())
    assert all(a["watermark"] for a in report["accounts"])

    tokens = [v for k, v in control["environ"].items()]
    outputs = first.stdout + first.stderr + second.stdout + second.stderr + status.stdout + status.stderr
    for token in tokens:
        assert token not in outputs
    for key in objects:
        blob = client.get_object(Bucket=s3_bucket.name, Key=key)["Body"].read()
        for token in tokens:
            assert token.encode() not in blob, key


def test_storage_unreachable_exits_3(tmp_path: Path, sim: Any, s3_env: None) -> None:
    from tests.fixtures._ports import free_port

    config = write_config(tmp_path / "c.toml", {"url": "s3://nobucket/x",
                                                "endpoint_url": f"http://127.0.0.1:{free_port()}"},
                          [sim.account("convirza")])
    proc = cli("run", "--once", "--config", str(config), env={**os.environ, **sim.environ()})
    assert proc.returncode == 3, proc.stderr
    assert "storage unavailable" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not sim.requests  # nothing fetched from the vendor before storage was proven


def test_auth_failure_is_a_clear_account_error_and_others_finish(sim: Any, tmp_path: Path) -> None:
    sim.add("convirza", 2, seconds=1.0)
    sim.add("envoy", 2, seconds=1.0)
    env = {**os.environ, **sim.environ(), "SIM_ENVOY_TOKEN": "wrong-token-123"}
    config = write_config(tmp_path / "c.toml", {"url": str(tmp_path / "archive")},
                          [sim.account("convirza"), sim.account("envoy")])
    proc = cli("run", "--once", "--json", "--config", str(config), env=env)
    assert proc.returncode == 1
    summary = {a["provider"]: a for a in json.loads(proc.stdout)["accounts"]}
    assert summary["convirza"]["archived"] == 2
    assert "credentials" in summary["envoy"]["error"]
    assert "wrong-token-123" not in proc.stdout + proc.stderr


def test_run_without_once_repeats_until_interrupted(sim: Any, tmp_path: Path) -> None:
    """The foreground service mode: a pass every discover_every; Ctrl-C stops it cleanly (exit 130)."""
    sim.add("convirza", 1, seconds=0.5)
    config = tmp_path / "c.toml"
    write_config(config, {"url": str(tmp_path / "archive")}, [sim.account("convirza")])
    config.write_text(config.read_text().replace('lookback = "2h"', 'lookback = "2h"\ndiscover_every = "1s"'))
    proc = subprocess.Popen([str(BIN), "run", "--json", "--config", str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **sim.environ()})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lists = [r for r in sim.requests if r.kind == "api"]
            if len(lists) >= 3:
                break
            time.sleep(0.2)
        assert len([r for r in sim.requests if r.kind == "api"]) >= 3, "expected at least three passes"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    passes = [json.loads(chunk) for chunk in re.split(r"(?m)^(?=\{)", out) if chunk.strip()]
    assert sum(a["archived"] for p in passes for a in p["accounts"]) == 1
