"""Read-only auditing from outside (issue 15, item 2; CONTRACT §1): ``verify``, ``status``, ``show``
and ``export`` run as separate processes with no vendor token variable set and through storage
credentials that can only read — and all exit 0 on a sound archive.

A private moto server (its own process: IAM enforcement is process-wide in moto, and the session's
shared S3 server must stay open) archives with full access first; then IAM enforcement is switched on
(``/moto-api/reset-auth``, the server-mode form of ``INITIAL_NO_AUTH_ACTION_COUNT``) and only an IAM
user with a read-only policy is used. That the policy really is read-only is checked too: a write
with those credentials is refused, and ``run`` with them stops at its storage check (exit 3).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests._compliance import write_config
from tests._e2e import BIN
from tests.fixtures._ports import free_port

REGION = "us-east-1"
ADMIN = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
READ_ONLY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:ListBucket", "s3:GetObjectRetention", "s3:GetObjectLegalHold",
                   "s3:GetBucketObjectLockConfiguration", "s3:GetBucketVersioning", "s3:GetBucketLocation",
                   # AWS authorizes HeadBucket by s3:ListBucket; moto asks for an action of its own name
                   "s3:HeadBucket"],
        "Resource": ["arn:aws:s3:::*", "arn:aws:s3:::*/*"],
    }],
}


@pytest.fixture
def iam_s3(tmp_path: Path) -> Iterator[str]:
    """A moto server of our own, in its own process, on a free loopback port; its endpoint URL."""
    binary = Path(sys.executable).parent / "moto_server"
    log = open(tmp_path / "moto.log", "wb")  # noqa: SIM115 - closed below, after the process
    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log,
                                env={**_base_env(tmp_path), **ADMIN})
        endpoint = f"http://127.0.0.1:{port}"
        for _wait in range(100):
            if proc.poll() is not None:
                break
            try:
                httpx.get(f"{endpoint}/moto-api/", timeout=0.5)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        if proc.poll() is None:
            break
    else:
        log.close()
        pytest.fail("moto_server did not start")
    try:
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _base_env(tmp_path: Path) -> dict[str, str]:
    """No inherited secrets or AWS set-up: PATH (ffmpeg) and a throw-away HOME only."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(home / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(home / "none"),
            "AWS_EC2_METADATA_DISABLED": "true"}


def _client(service: str, endpoint: str, keys: dict[str, str]) -> Any:
    make: Any = boto3.session.Session().client  # one helper for "s3" and "iam"
    return make(
        service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
        config=Config(request_checksum_calculation="when_required", response_checksum_validation="when_required",
                      s3={"addressing_style": "path"}),
    )


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env, timeout=300)


def test_auditing_needs_no_token_and_no_write_access(tmp_path: Path, sim: Any, iam_s3: str) -> None:
    s3 = _client("s3", iam_s3, ADMIN)
    s3.create_bucket(Bucket="audit", ObjectLockEnabledForBucket=True)
    recs = sim.add("convirza", 3, kind="wav", seconds=1.0)
    config = write_config(tmp_path / "recarchive.toml", {
        "storage": {"url": "s3://audit/arch", "endpoint_url": iam_s3, "region": REGION,
                    "work_dir": str(tmp_path / "work")},
        "retention": {"mode": "GOVERNANCE", "days": 1},
        "transcode": {"rendition": "mp3"},
        "accounts": [sim.account("convirza", name="c-convirza")],
    })
    base = _base_env(tmp_path)
    archived = _cli({**base, **ADMIN, **sim.environ()}, "run", "--once", "--config", str(config))
    assert archived.returncode == 0, archived.stderr

    iam = _client("iam", iam_s3, ADMIN)
    iam.create_user(UserName="auditor")
    iam.put_user_policy(UserName="auditor", PolicyName="read-only", PolicyDocument=json.dumps(READ_ONLY_POLICY))
    key = iam.create_access_key(UserName="auditor")["AccessKey"]
    auditor = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    httpx.post(f"{iam_s3}/moto-api/reset-auth", content=b"0").raise_for_status()  # IAM enforced from now on

    with pytest.raises(ClientError) as refused:
        _client("s3", iam_s3, auditor).put_object(Bucket="audit", Key="arch/_state/x", Body=b"x")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    cannot_archive = _cli({**base, **auditor, **sim.environ()}, "run", "--once", "--config", str(config))
    assert cannot_archive.returncode == 3, cannot_archive.stderr

    env = {**base, **auditor}  # and not one vendor token variable
    assert not any(name in env for name in sim.environ())
    for args in (["verify", "--manifests"], ["verify", "--json"], ["status"], ["status", "--json"],
                 ["show", "--account", "c-convirza", "--id", recs[0].id],
                 ["show", "--account", "c-convirza", "--id", recs[1].id, "--json"]):
        result = _cli(env, *args, "--config", str(config))
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    shown = json.loads(_cli(env, "show", "--account", "c-convirza", "--id", recs[2].id, "--json", "--config",
                            str(config)).stdout)
    objects = [o for folder in shown["folders"] for r in folder["revisions"] for o in r["objects"]]
    assert {o["role"] for o in objects} == {"original", "rendition", "metadata"}
    assert all(o["retention"] and o["retention"]["mode"] == "GOVERNANCE" for o in objects), objects
    verified = json.loads(_cli(env, "verify", "--json", "--config", str(config)).stdout)
    assert verified["ok"] is True and verified["recordings"] == 3 and verified["failures"] == []

    out = tmp_path / "handover"
    exported = _cli(env, "export", "--account", "c-convirza", "--id", recs[0].id, "--id", recs[2].id,
                    "--out", str(out), "--json", "--config", str(config))
    assert exported.returncode == 0, (exported.stdout, exported.stderr)
    assert json.loads(exported.stdout)["ok"] is True
    listed: dict[str, str] = {}
    for line in (out / "MANIFEST.sha256").read_text().splitlines():
        sha, name = line.split("  ", 1)
        listed[name] = sha
    actual = {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
              for p in out.rglob("*") if p.is_file() and p.name != "MANIFEST.sha256"}
    assert listed == actual
    originals = [name for name in listed if name.endswith("/original.wav")]
    assert len(originals) == 2
    check = subprocess.run(["sha256sum", "-c", "--quiet", "MANIFEST.sha256"], cwd=out, capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr
