"""No token, API key or signed-URL query string appears in storage, logs, CLI output or errors
(CONTRACT §4.7), across all five vendors, including Convoso, whose token travels in the query string.

One pass runs in this process with every log record captured at DEBUG; another runs as the
``recarchive`` CLI with ``-vv``. Both meet faults that put URLs into messages (expired links, error
pages, rate limits, 5xx, foreign hosts, redirects). Then every stored object (body, key and S3 user
metadata), every log line, the JSON summaries and everything the CLI printed is scanned for each
configured token and for signed-query parameters (``secret=``, ``Signature=``, ``auth_token=``,
``Expires=``, ``access=``, ...) with a value that is not ``***``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from providers.simulator import VENDORS, SimRecording, Simulator
from tests.security._support import leaks, one_pass, outcomes, sim_settings

BIN = Path(sys.executable).parent / "recarchive"
S3_CLIENT_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")


def dataset(sim: Simulator) -> dict[str, list[SimRecording]]:
    return {vendor: sim.add(vendor, 3, seconds=1.0) for vendor in VENDORS}


def arm_faults(sim: Simulator, recs: dict[str, list[SimRecording]]) -> None:
    """Faults whose handling logs or stores a URL, an error text or a vendor message."""
    sim.set_fault("convirza", recs["convirza"][0].id, "expired", times=1)
    sim.set_fault("convirza", recs["convirza"][1].id, "html200")
    sim.set_api_fault("convoso", "rate_limit", times=1, retry_after=0)
    sim.set_fault("convoso", recs["convoso"][0].id, "error500", times=1)
    sim.set_fault("convoso", recs["convoso"][1].id, "json200")
    sim.set_delivery("salesloft", recs["salesloft"][0].id, "redirect")
    sim.set_fault("salesloft", recs["salesloft"][1].id, "foreign_url", target_host="127.0.0.2")
    sim.set_fault("envoy", recs["envoy"][0].id, "rate_limit", times=1, retry_after=0)
    sim.set_fault("envoy", recs["envoy"][1].id, "redirect_foreign")
    sim.set_api_fault("envoy", "error500", times=1, endpoint="item")
    sim.set_fault("siro", recs["siro"][0].id, "expired", times=1)
    sim.set_fault("siro", recs["siro"][1].id, "cut", times=1)


def secrets_of(sim: Simulator, recs: dict[str, list[SimRecording]]) -> list[str]:
    """Every configured token, and the per-recording link secrets the vendors hand out."""
    return [*sim.environ().values(), *(str(r.extra["access"]) for r in recs["convirza"])]


def bucket_texts(bucket: Any) -> dict[str, str]:
    """Every object in the bucket as text: its key, user metadata and body."""
    texts = {}
    for page in bucket.client.get_paginator("list_objects_v2").paginate(Bucket=bucket.name):
        for item in page.get("Contents", []):
            answer = bucket.client.get_object(Bucket=bucket.name, Key=item["Key"])
            body = answer["Body"].read().decode("latin-1")
            texts[item["Key"]] = f"{item['Key']}\n{json.dumps(answer.get('Metadata', {}))}\n{body}"
    return texts


def expected(recs: dict[str, list[SimRecording]]) -> dict[str, tuple[str, str | None]]:
    parked = {recs["convirza"][1].id: "not_media", recs["convoso"][1].id: "not_media",
              recs["salesloft"][1].id: "unsafe_url", recs["envoy"][1].id: "unsafe_url"}
    return {rec.id: ("parked", parked[rec.id]) if rec.id in parked else ("archived", None)
            for group in recs.values() for rec in group}


def s3_storage(bucket: Any, prefix: str, tmp_path: Path) -> dict[str, Any]:
    return {"url": f"s3://{bucket.name}/{prefix}", "endpoint_url": bucket.endpoint_url, "region": "us-east-1",
            "work_dir": str(tmp_path / f"work-{prefix}")}


def test_nothing_secret_in_storage_or_logs_in_process(sim_env: Simulator, s3_bucket: Any, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture,
                                                      capfd: pytest.CaptureFixture[str]) -> None:
    sim = sim_env
    caplog.set_level(logging.DEBUG)
    recs = dataset(sim)
    arm_faults(sim, recs)
    summary = one_pass(sim_settings(sim, tmp_path, VENDORS, storage=s3_storage(s3_bucket, "inproc", tmp_path)))
    assert outcomes(summary) == expected(recs)
    secrets = secrets_of(sim, recs)
    # httpx logs every request line (Convoso's auth_token, every signed query) at INFO: it was captured
    assert any("get-recordings" in r.getMessage() for r in caplog.records if r.name == "httpx")
    for record in caplog.records:
        line = record.getMessage() + (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        assert leaks(line, secrets) == [], (record.name, line)
    out, err = capfd.readouterr()
    assert leaks(out + err, secrets) == []
    assert leaks(json.dumps(summary.as_dict()), secrets) == []
    stored = bucket_texts(s3_bucket)
    assert any(key.endswith("metadata.json") for key in stored) and any("/_state/" in key for key in stored)
    for key, text in stored.items():
        assert leaks(text, secrets) == [], key


def test_the_cli_and_daemon_logging_caps_the_s3_client_debug_output() -> None:
    from worker.logs import setup_logging

    root = logging.getLogger()
    before = (root.level, list(root.handlers), {n: logging.getLogger(n).level for n in S3_CLIENT_LOGGERS})
    try:
        setup_logging(logging.DEBUG)  # what `-vv` and the Celery worker's DEBUG level install
        for name in ("botocore.endpoint", "botocore.auth", "urllib3.connectionpool", "s3transfer.tasks",
                     "httpx", "httpcore.http11"):
            assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
    finally:
        root.setLevel(before[0])
        for handler in list(root.handlers):
            if handler not in before[1]:
                root.removeHandler(handler)
        for name, level in before[2].items():
            logging.getLogger(name).setLevel(level)


def write_config(path: Path, storage: dict[str, Any], accounts: list[dict[str, Any]]) -> Path:
    lines = ["[storage]", *(f"{k} = {json.dumps(v)}" for k, v in storage.items())]
    for account in accounts:
        lines += ["", "[[accounts]]", *(f"{k} = {json.dumps(v)}" for k, v in account.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_nothing_secret_in_cli_output_with_debug_logs(sim: Simulator, s3_bucket: Any, tmp_path: Path) -> None:
    recs = dataset(sim)
    arm_faults(sim, recs)
    config = write_config(tmp_path / "recarchive.toml", s3_storage(s3_bucket, "cli", tmp_path),
                          [sim.account(vendor, name=f"cli-{vendor}") for vendor in VENDORS])
    env = {**os.environ, **sim.environ(), "RECARCHIVE_CONFIG": str(config)}
    run = subprocess.run([str(BIN), "run", "--once", "--json", "-vv"], capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 1, run.stderr[-2000:]  # four recordings parked
    summary = json.loads(run.stdout)
    assert sum(a["archived"] for a in summary["accounts"]) == 11
    assert sum(a["parked"] for a in summary["accounts"]) == 4
    assert " INFO " in run.stderr and "HTTP Request" not in run.stderr  # -vv, yet no request lines
    human = subprocess.run([str(BIN), "run", "--once", "-vv"], capture_output=True, text=True, env=env, timeout=300)
    status = subprocess.run([str(BIN), "status", "--json", "-vv"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert status.returncode in (0, 1), status.stderr[-2000:]
    assert "not_media" in status.stdout and "unsafe_url" in status.stdout
    secrets = secrets_of(sim, recs)
    for name, proc in (("run --json", run), ("run", human), ("status", status)):
        assert leaks(proc.stdout, secrets) == [], name
        assert leaks(proc.stderr, secrets) == [], name
    for key, text in bucket_texts(s3_bucket).items():
        assert leaks(text, secrets) == [], key
