"""A deployment that runs only the daemon seals its manifest hash chain.

No ``recarchive run`` anywhere: recordings go through the daemon's own functions (discovery enqueues,
the archive task archives, the next discovery settles the account), with discovery's clock moved
past midnight. The daemon's discovery must close the day, and ``recarchive verify --manifests`` —
a separate process with no vendor token — must accept the chain it built.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from config import settings_from_mapping
from providers.base import Recording
from providers.simulator import Simulator
from tests._daemon_support import daemon_mapping, write_config
from tests._e2e import cli
from tests.fixtures.s3 import S3Bucket
from worker.compliance.session import open_context
from worker.daemon.bodies import archive_task_body, discover_and_enqueue, recording_to_payload
from worker.daemon.redis_coord import Coordinator
from worker.pipeline.context import RetryPolicy


def _keys(bucket: S3Bucket, prefix: str) -> list[str]:
    pages = bucket.client.get_paginator("list_objects_v2").paginate(Bucket=bucket.name, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _read(bucket: S3Bucket, key: str) -> bytes:
    body: bytes = bucket.client.get_object(Bucket=bucket.name, Key=key)["Body"].read()
    return body


def test_daemon_only_deployment_closes_its_manifest_days(sim: Simulator, s3_bucket: S3Bucket, redis_url: str,
                                                         tmp_path: Path) -> None:
    recordings = sim.add("envoy", 3, seconds=1.0)
    mapping = daemon_mapping(sim, s3_bucket, redis_url, ["envoy"])
    settings = settings_from_mapping(mapping, sim.environ())
    account = settings.accounts[0]
    coord = Coordinator.from_url(redis_url)
    ctx = open_context(settings, retry=RetryPolicy(max_attempts=2, park_on_exhaustion=False))
    queued: list[Recording] = []
    try:
        first = discover_and_enqueue(ctx, account, queued.append, coord.lock(account.name, 60), coord.dedupe)
        assert first.enqueued == len(recordings)
        for recording in queued:  # what the download workers do
            assert archive_task_body(ctx, account, recording_to_payload(recording)).outcome == "archived"
            coord.dedupe.release(account.name, recording.recording_id)
        archived_day = datetime.now(UTC).date()
        prefix = f"recordings/_manifests/{account.name}/"
        assert not [k for k in _keys(s3_bucket, prefix) if k.endswith(".jsonl")]  # today is still open

        # the next discovery runs after midnight (plus the closing grace): the daemon closes the day
        tomorrow = datetime.combine(archived_day + timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=2)
        later = discover_and_enqueue(ctx, account, queued.append, coord.lock(account.name, 60), coord.dedupe,
                                     now=tomorrow)
        assert later.enqueued == 0 and later.archived == len(recordings)
    finally:
        ctx.close()
        coord.close()

    closed = sorted(k for k in _keys(s3_bucket, prefix) if k.endswith(".jsonl"))
    assert closed == [f"{prefix}{archived_day:%Y-%m-%d}.jsonl"]
    lines = [json.loads(line) for line in _read(s3_bucket, closed[0]).decode().splitlines()]
    header, entries = lines[0], lines[1:]
    assert header["prev_sha256"] is None
    assert {e["recording_id"] for e in entries} == {r.id for r in recordings}
    assert not [k for k in _keys(s3_bucket, prefix + "pending/") if f"/{archived_day:%Y-%m-%d}/" in k]

    # the auditor's check, as a separate process without any vendor token
    config = write_config(tmp_path / "recarchive.toml", mapping)
    env = {k: v for k, v in os.environ.items() if k not in sim.environ()}
    env["AWS_ACCESS_KEY_ID"] = env.get("AWS_ACCESS_KEY_ID", "testing")
    proc = cli("verify", "--manifests", "--json", "--config", str(config), env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True
