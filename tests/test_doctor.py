"""``recarchive doctor`` from outside: a sound set-up passes; each broken part is one FAIL line.

Real parts only: the vendor simulator over HTTP, moto's S3 server (with and without Object Lock,
and behind a proxy that drops ``If-None-Match`` to play a store that ignores conditional writes),
the real ffmpeg (behind a wrapper that hides an encoder), and a real redis-server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from providers.simulator import Simulator
from tests.faults.s3proxy import S3FaultProxy
from tests.fixtures._ports import free_port
from tests.fixtures.redis import RedisServer
from tests.fixtures.s3 import S3Bucket
from worker.media.ffmpeg import find_ffmpeg

pytestmark = pytest.mark.usefixtures("s3_env")

VENDORS = ("convirza", "salesloft")
BIN = Path(sys.executable).parent / "recarchive"


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env, timeout=300)


def _config(tmp_path: Path, sim: Simulator, *, bucket: str, endpoint: str, broker: str,
            retention: bool = True, rendition: str = "mp3", vendors: tuple[str, ...] = VENDORS) -> Path:
    lines = ["[storage]", f'url = "s3://{bucket}/recordings"', f'endpoint_url = "{endpoint}"',
             'region = "us-east-1"', "", "[transcode]", f'rendition = "{rendition}"', "",
             "[broker]", f'url = "{broker}"', ""]
    if retention:
        lines += ["[retention]", 'mode = "GOVERNANCE"', "days = 1", ""]
    for vendor in vendors:
        lines += ["[[accounts]]"] + [f"{key} = {json.dumps(value)}" for key, value in sim.account(vendor).items()]
    path = tmp_path / "recarchive.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _env(sim: Simulator, **overrides: str) -> dict[str, str]:
    env = {**os.environ, **sim.environ(), **overrides}
    env.pop("RECARCHIVE_CONFIG", None)
    return env


def _doctor(config: Path, env: dict[str, str]) -> tuple[int, list[str]]:
    done = cli("doctor", "--config", str(config), "--broker-timeout", "1", env=env)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout.splitlines()


def _failures(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("FAIL")]


@pytest.fixture
def no_lock_bucket(s3_bucket: S3Bucket) -> S3Bucket:
    return s3_bucket


@pytest.fixture
def ignoring_proxy(s3_lock_bucket: S3Bucket) -> Iterator[S3FaultProxy]:
    with S3FaultProxy(s3_lock_bucket.endpoint_url, drop_headers=("If-None-Match",)) as proxy:
        yield proxy


@pytest.fixture
def no_mp3_ffmpeg(tmp_path: Path) -> Path:
    """The real ffmpeg, except that ``-encoders`` no longer lists libmp3lame."""
    real = find_ffmpeg().ffmpeg
    wrapper = tmp_path / "ffmpeg-no-mp3"
    wrapper.write_text(
        "#!/bin/sh\n"
        'for arg in "$@"; do\n'
        f'  if [ "$arg" = "-encoders" ]; then "{real}" "$@" | grep -v libmp3lame; exit 0; fi\n'
        "done\n"
        f'exec "{real}" "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


def test_doctor_passes_on_a_sound_setup(tmp_path: Path, sim: Simulator, s3_lock_bucket: S3Bucket,
                                        redis_server: RedisServer) -> None:
    sim.add("convirza", 1)
    config = _config(tmp_path, sim, bucket=s3_lock_bucket.name, endpoint=s3_lock_bucket.endpoint_url,
                     broker=redis_server.url)
    code, lines = _doctor(config, _env(sim))
    assert code == 0, lines
    assert _failures(lines) == []
    for prefix in ("ok    config:", "ok    credentials sim-convirza:", "ok    credentials sim-salesloft:",
                   "ok    ffmpeg:", "ok    encoder mp3:", f"ok    storage s3://{s3_lock_bucket.name}/recordings:",
                   "ok    conditional writes", "ok    upload checksums", "ok    object lock",
                   "ok    broker redis://127.0.0.1:"):
        assert sum(line.startswith(prefix) for line in lines) == 1, (prefix, lines)
    # the JSON form says the same, with a schema, for scripts
    done = cli("doctor", "--config", str(config), "--json", env=_env(sim))
    document = json.loads(done.stdout)
    assert done.returncode == 0
    assert document["schema"] == "recarchive.doctor/1" and document["ok"] is True
    assert {c["check"] for c in document["checks"]} >= {"config", "credentials", "ffmpeg", "encoder", "storage",
                                                         "conditional writes", "upload checksums", "object lock",
                                                         "broker"}
    # the doctor archived nothing: its probe (and the storage check's) live under _state/ alone
    keys = [o["Key"] for o in s3_lock_bucket.client.list_objects_v2(Bucket=s3_lock_bucket.name).get("Contents", [])]
    assert "recordings/_state/doctor-probe" in keys
    assert all(key.startswith("recordings/_state/") for key in keys), keys
    # the object lock check proved it may set retention: on its probe, for one day only
    probe = s3_lock_bucket.client.head_object(Bucket=s3_lock_bucket.name, Key="recordings/_state/doctor-probe")
    assert probe["ObjectLockMode"] == "GOVERNANCE"
    assert probe["ObjectLockRetainUntilDate"].timestamp() - time.time() < 2 * 86400


def test_doctor_names_a_refused_token(tmp_path: Path, sim: Simulator, s3_lock_bucket: S3Bucket,
                                      redis_server: RedisServer) -> None:
    config = _config(tmp_path, sim, bucket=s3_lock_bucket.name, endpoint=s3_lock_bucket.endpoint_url,
                     broker=redis_server.url)
    wrong = "not-the-salesloft-token-1234"
    code, lines = _doctor(config, _env(sim, **{sim.token_env("salesloft"): wrong}))
    assert code == 1
    failures = _failures(lines)
    assert len(failures) == 1 and failures[0].startswith("FAIL  credentials sim-salesloft:"), lines
    assert wrong not in "\n".join(lines)
    assert any(line.startswith("ok    credentials sim-convirza:") for line in lines)


def test_doctor_names_a_refused_siro_oauth_app(tmp_path: Path, sim: Simulator, s3_lock_bucket: S3Bucket,
                                               redis_server: RedisServer) -> None:
    """Siro has two credentials: the listing token can be right while the OAuth app that signs media
    is not — the doctor mints a token to prove the second one too."""
    from providers.simulator import siro

    config = _config(tmp_path, sim, bucket=s3_lock_bucket.name, endpoint=s3_lock_bucket.endpoint_url,
                     broker=redis_server.url, vendors=("siro", "convirza"))
    code, lines = _doctor(config, _env(sim))
    assert code == 0, lines
    assert any(line.startswith("ok    credentials sim-siro:") and "minted" in line for line in lines), lines
    wrong = "not-the-client-secret-5678"
    code, lines = _doctor(config, _env(sim, **{siro.OAUTH_SECRET_ENV: wrong}))
    assert code == 1, lines
    failures = _failures(lines)
    assert len(failures) == 1 and failures[0].startswith("FAIL  credentials sim-siro:"), lines
    assert "oauth_client_secret_env" in failures[0] and wrong not in "\n".join(lines)
    assert any(line.startswith("ok    credentials sim-convirza:") for line in lines)


def test_doctor_names_a_missing_encoder(tmp_path: Path, sim: Simulator, s3_lock_bucket: S3Bucket,
                                        redis_server: RedisServer, no_mp3_ffmpeg: Path) -> None:
    config = _config(tmp_path, sim, bucket=s3_lock_bucket.name, endpoint=s3_lock_bucket.endpoint_url,
                     broker=redis_server.url)
    code, lines = _doctor(config, _env(sim, RECARCHIVE_FFMPEG=str(no_mp3_ffmpeg)))
    assert code == 1
    failures = _failures(lines)
    assert len(failures) == 1 and failures[0].startswith("FAIL  encoder mp3:") and "libmp3lame" in failures[0]
    assert any(line.startswith("ok    ffmpeg:") for line in lines)


def test_doctor_names_a_bucket_without_object_lock(tmp_path: Path, sim: Simulator, no_lock_bucket: S3Bucket,
                                                   redis_server: RedisServer) -> None:
    config = _config(tmp_path, sim, bucket=no_lock_bucket.name, endpoint=no_lock_bucket.endpoint_url,
                     broker=redis_server.url)
    code, lines = _doctor(config, _env(sim))
    assert code == 1
    failures = _failures(lines)
    assert len(failures) == 1 and failures[0].startswith("FAIL  object lock") and "Object Lock" in failures[0]
    # without [retention] the same bucket is fine
    config = _config(tmp_path, sim, bucket=no_lock_bucket.name, endpoint=no_lock_bucket.endpoint_url,
                     broker=redis_server.url, retention=False)
    code, lines = _doctor(config, _env(sim))
    assert code == 0 and _failures(lines) == [], lines


def test_doctor_names_a_store_ignoring_conditional_writes(tmp_path: Path, sim: Simulator, s3_lock_bucket: S3Bucket,
                                                          ignoring_proxy: S3FaultProxy,
                                                          redis_server: RedisServer) -> None:
    config = _config(tmp_path, sim, bucket=s3_lock_bucket.name, endpoint=ignoring_proxy.url,
                     broker=redis_server.url)
    code, lines = _doctor(config, _env(sim))
    assert code == 1
    failures = _failures(lines)
    assert len(failures) == 1 and failures[0].startswith("FAIL  conditional writes"), lines
    assert "If-None-Match" in failures[0]


def test_doctor_names_an_unreachable_broker(tmp_path: Path, sim: Simulator, s3_lock_bucket: S3Bucket) -> None:
    config = _config(tmp_path, sim, bucket=s3_lock_bucket.name, endpoint=s3_lock_bucket.endpoint_url,
                     broker=f"redis://127.0.0.1:{free_port()}/0")
    code, lines = _doctor(config, _env(sim))
    assert code == 1
    failures = _failures(lines)
    assert len(failures) == 1 and failures[0].startswith("FAIL  broker redis://127.0.0.1:"), lines


def test_doctor_config_errors_exit_2_in_one_line(tmp_path: Path, sim: Simulator, s3_lock_bucket: S3Bucket,
                                                 redis_server: RedisServer) -> None:
    config = _config(tmp_path, sim, bucket=s3_lock_bucket.name, endpoint=s3_lock_bucket.endpoint_url,
                     broker=redis_server.url)
    env = _env(sim)
    env.pop(sim.token_env("convirza"))
    code, lines = _doctor(config, env)
    assert code == 2
    failures = _failures(lines)
    assert len(failures) == 1 and failures[0].startswith("FAIL  config sim-convirza:")
    assert sim.token_env("convirza") in failures[0]
    assert any(line.startswith("ok    credentials sim-salesloft") for line in lines)
    broken = tmp_path / "broken.toml"
    broken.write_text(config.read_text().replace("[transcode]", "[transcode]\nspeed = 3"))
    code, lines = _doctor(broken, _env(sim))
    assert code == 2 and len(lines) == 2 and lines[0].startswith("FAIL  config:") and "speed" in lines[0]


def test_a_provider_may_offer_a_narrower_credentials_probe() -> None:
    """``check_credentials()`` on a provider replaces the listing probe; its refusal is a FAIL line."""
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace
    from typing import Any

    from providers.base import Window
    from worker.daemon.doctor import _one_account
    from worker.errors import AuthError

    class Narrow:
        listed = False

        def check_credentials(self) -> str:
            return "OAuth token minted"

        def list_recordings(self, window: Window) -> Any:
            Narrow.listed = True
            return iter(())

    class Refusing(Narrow):
        def check_credentials(self) -> str:
            raise AuthError("HTTP 401: the vendor refused the account's credentials")

    def ctx(provider: Any) -> Any:
        return SimpleNamespace(handle=lambda account: SimpleNamespace(client=SimpleNamespace(max_attempts=5),
                                                                      provider=provider))

    account = SimpleNamespace(name="acme", provider="siro", base_url="https://functions.example/api")
    now = datetime.now(UTC)
    window = Window(now - timedelta(hours=1), now)
    good = _one_account(ctx(Narrow()), account, window)
    assert good.status == "ok" and "OAuth token minted" in good.detail and Narrow.listed is False
    bad = _one_account(ctx(Refusing()), account, window)
    assert bad.status == "FAIL" and bad.target == "acme" and "401" in bad.detail
