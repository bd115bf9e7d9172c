"""docker-compose.yml and the Dockerfile: runnable, and safe to run (issue 14.6).

Runnable: every service, command, module and queue they name exists here, and the inline config is a
valid recarchive config. Safe: pinned images, a password on Redis, Flower behind basic auth, every
published port on 127.0.0.1 (metrics on a configurable address), the workers on their own
least-privilege S3 user (never MinIO's root), secrets only from the git-ignored ``.env`` (documented
by ``.env.example``), a healthcheck on every long-running service.

The file is checked against the Compose specification twice over: ``docker compose config`` when the
docker CLI has its compose plugin, and always against the compose-spec JSON schema, vendored as
``tests/data/compose-spec.json`` (github.com/compose-spec/compose-spec, ``schema/compose-spec.json``
at commit 170098ba07d9f53c383a41bfd4c5166b0a4529a6, Apache-2.0), after interpolating ``.env.example``
as compose would. Neither needs a Docker engine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click
import pytest

from config import settings_from_mapping
from providers.simulator import Simulator
from tasks.app import QUEUES
from worker.cli import cli

yaml = pytest.importorskip("yaml", reason="PyYAML parses docker-compose.yml")
jsonschema = pytest.importorskip("jsonschema", reason="jsonschema checks the compose file against its spec")

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
SCHEMA = Path(__file__).with_name("data") / "compose-spec.json"
EXPECTED = {"redis", "minio", "createbucket", "simulator", "worker", "discoverer", "transcoder", "beat", "flower"}
WORKERS = ("worker", "discoverer", "transcoder")
ROOT_VARIABLES = ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD")
#: what the workers' S3 user may do, and what it must never be able to do
WORKER_ACTIONS = {
    "s3:ListBucket", "s3:GetBucketLocation", "s3:GetBucketObjectLockConfiguration", "s3:GetBucketVersioning",
    "s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
    "s3:PutObjectRetention", "s3:GetObjectRetention", "s3:PutObjectLegalHold", "s3:GetObjectLegalHold",
    "s3:DeleteObject",
}
NEVER = {"s3:BypassGovernanceRetention", "s3:DeleteObjectVersion", "s3:PutBucketObjectLockConfiguration",
         "s3:PutBucketVersioning", "s3:PutBucketPolicy", "s3:DeleteBucket"}

_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}"
                       r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


def _env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's interpolation (``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``, ``$$``) of every string."""
    if isinstance(value, dict):
        return {key: _interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg, found = match.group("op") or "", match.group("arg") or "", env.get(name)
        if op in (":-", "-"):
            return found if found or (op == "-" and found is not None) else arg
        if op in (":?", "?"):
            if not found and not (op == "?" and found is not None):
                raise AssertionError(f"compose would stop: {name}: {arg}")
            return found or ""
        if op in (":+", "+"):
            return arg if found else ""
        return found or ""

    return _VARIABLE.sub(one, value)


def _variables(text: str) -> set[str]:
    return {m.group("name") or m.group("bare") for m in _VARIABLE.finditer(text) if m.group(0) != "$$"}


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    """The file as compose sees it with the values of ``.env.example``."""
    document = _interpolate(raw, _env_file(ENV_EXAMPLE))
    assert isinstance(document, dict)
    return document


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def _built_here(service: dict[str, Any]) -> bool:
    return service.get("build") in (".", "./")


def _one_shot(name: str, services: dict[str, Any]) -> bool:
    """A job that runs once and that the others wait for by its exit (its healthcheck may be off)."""
    waited = any(spec.get("condition") == "service_completed_successfully"
                 for other in services.values() for dep, spec in (other.get("depends_on") or {}).items()
                 if dep == name and isinstance(spec, dict))
    return services[name].get("restart") == "no" and waited


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
        import worker

        assert worker.app.main == "recarchive"  # `celery -A worker` finds the app lazily
        assert command[3] in ("worker", "beat", "flower"), f"{name}: celery {command[3]}"
        if command[3] == "flower":
            pytest.importorskip("flower")
        if command[3] == "worker" and "-Q" in command:
            queues = set(command[command.index("-Q") + 1].split(","))
            assert queues <= set(QUEUES), f"{name}: unknown queue in {queues}"
            consumed |= queues
    assert consumed == set(QUEUES)  # every queue has a consumer


def _simulator_accounts() -> dict[str, dict[str, Any]]:
    """The simulator's own demo accounts (``recarchive simulate --port 8080``), as compose must name
    them: a simulator started here on free ports, its ports mapped to 8080 and the extra servers'."""
    from providers.simulator.core import _EXTRA_SERVERS
    from providers.simulator.demo import demo_accounts, demo_dataset

    with Simulator(seed=0) as sim:
        demo_dataset(sim)
        accounts = demo_accounts(sim, prefix="demo")
        ports = {sim.port: 8080}
        for role, (offset, _routes) in _EXTRA_SERVERS.items():
            ports[int(sim.origin(role).rsplit(":", 1)[1])] = 8080 + offset

    def mapped(value: Any) -> Any:
        if isinstance(value, list):
            return [mapped(item) for item in value]
        if not isinstance(value, str):
            return value
        return re.sub(r"(?<=(?:127\.0\.0\.1|localhost):)(\d+)", lambda m: str(ports.get(int(m.group(1)), m.group(1))),
                      value)

    return {a["name"]: {k: mapped(v) for k, v in a.items() if k != "start"} for a in accounts}


def test_inline_config_is_a_valid_recarchive_config(compose: dict[str, Any]) -> None:
    data = tomllib.loads(compose["configs"]["recarchive_toml"]["content"])
    worker = compose["services"]["worker"]
    environ = {k: str(v) for k, v in worker["environment"].items()}
    settings = settings_from_mapping(data, environ)
    password = _env_file(ENV_EXAMPLE)["REDIS_PASSWORD"]
    assert settings.broker.url == f"redis://:{password}@redis:6379/0"  # the broker needs the password
    assert settings.storage.url.startswith("s3://recordings/")
    assert settings.retention is not None and settings.retention.mode == "GOVERNANCE"
    assert {a.provider for a in settings.accounts} == {"convirza", "convoso", "envoy", "salesloft", "siro"}
    sim = Simulator(seed=0)  # not started: only its tokens are read
    for variable, value in sim.environ().items():
        assert environ[variable] == value, f"{variable}: not the simulator's secret"
    # every account as the simulator serves it on port 8080 (its Siro gateway and storage beside it)
    expected = _simulator_accounts()
    written = {a["name"]: {k: v for k, v in a.items() if k != "start"} for a in data["accounts"]}
    assert written == expected
    target = worker["configs"][0]["target"]
    assert environ["RECARCHIVE_CONFIG"] == target
    simulate = _command(compose["services"]["simulator"])
    assert simulate[simulate.index("--port") + 1] == "8080"


def test_images_are_pinned(raw: dict[str, Any]) -> None:
    for name, service in raw["services"].items():
        image = str(service.get("image", ""))
        if _built_here(service):
            assert image == "recarchive:local", f"{name}: a built image keeps the local name"
            continue
        assert ":" in image and not image.endswith((":latest", ":stable")), f"{name}: {image} is not pinned"
        if "minio" in image:
            # MinIO publishes its images on its own registry only, tagged by release
            assert re.fullmatch(r"quay\.io/minio/(minio|mc):RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ(@sha256:[0-9a-f]{64})?",
                                image), f"{name}: {image}"
        else:
            assert re.search(r":\d+\.\d+\.\d+", image), f"{name}: {image} has no exact version"
    base = re.search(r"^FROM (\S+)", (REPO / "Dockerfile").read_text(encoding="utf-8"), re.M)
    assert base and re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base.group(1)), base


def test_secrets_come_from_the_env_file(raw: dict[str, Any]) -> None:
    text = yaml.safe_dump(raw)  # the values, not the comments
    example = _env_file(ENV_EXAMPLE)
    assert _variables(text) <= set(example), f"not in .env.example: {_variables(text) - set(example)}"
    for variable in ("REDIS_PASSWORD", *ROOT_VARIABLES, "RECARCHIVE_S3_SECRET_KEY", "FLOWER_PASSWORD"):
        assert variable in _variables(text), f"{variable} is not read from .env"
    for name, service in raw["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET_KEY|ACCESS_KEY|BASIC_AUTH", key):
                assert "${" in str(value), f"{name}: {key} is written in the file instead of read from .env"
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO, check=False)
    assert ignored.returncode == 0, ".env must be git-ignored"


def test_workers_get_no_root_credentials(raw: dict[str, Any], compose: dict[str, Any]) -> None:
    for name, service in raw["services"].items():
        if name in ("minio", "createbucket"):
            continue
        dumped = yaml.safe_dump(service)
        for variable in ROOT_VARIABLES:
            assert variable not in dumped, f"{name} sees {variable}"
    example = _env_file(ENV_EXAMPLE)
    assert example["RECARCHIVE_S3_ACCESS_KEY"] != example["MINIO_ROOT_USER"]
    for name in WORKERS:
        environment = raw["services"][name]["environment"]
        assert "RECARCHIVE_S3_ACCESS_KEY" in environment["AWS_ACCESS_KEY_ID"], name
        assert "RECARCHIVE_S3_SECRET_KEY" in environment["AWS_SECRET_ACCESS_KEY"], name
    for name in ("beat", "flower", "simulator"):  # they never touch storage
        assert "AWS_SECRET_ACCESS_KEY" not in (compose["services"][name].get("environment") or {}), name
    # createbucket makes that user and gives it the worker policy
    script = " ".join(_command(raw["services"]["createbucket"]))
    assert 'user add local "$$RECARCHIVE_S3_ACCESS_KEY"' in script
    assert 'policy attach local recarchive-worker --user "$$RECARCHIVE_S3_ACCESS_KEY"' in script
    assert "policy create local recarchive-worker /etc/recarchive/worker-s3-policy.json" in script
    mounted = {c["source"]: c["target"] for c in raw["services"]["createbucket"]["configs"]}
    assert mounted["worker_s3_policy"] == "/etc/recarchive/worker-s3-policy.json"


def test_worker_s3_policy_is_least_privilege(compose: dict[str, Any]) -> None:
    policy = json.loads(compose["configs"]["worker_s3_policy"]["content"])
    allowed: dict[str, set[str]] = {}
    denied: set[str] = set()
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not any("*" in action for action in actions), f"wildcard action in {statement}"
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in actions:
            if statement["Effect"] == "Allow":
                allowed.setdefault(action, set()).update(resources)
            else:
                denied.add(action)
    assert set(allowed) == WORKER_ACTIONS
    assert not NEVER & set(allowed)
    assert NEVER <= denied  # denied outright: no later grant can add them
    # deleting only the worker's own bookkeeping (parked records, pending manifest entries), never a
    # recording's object: the only storage.delete callers are worker/pipeline/state.py (unpark) and
    # worker/compliance/manifests.py (pending entries of a closed day)
    assert allowed["s3:DeleteObject"] == {"arn:aws:s3:::recordings/archive/_state/*",
                                          "arn:aws:s3:::recordings/archive/_manifests/*"}
    config = tomllib.loads(compose["configs"]["recarchive_toml"]["content"])
    assert config["storage"]["url"] == "s3://recordings/archive"  # the bookkeeping lives under this prefix


def test_redis_requires_a_password(raw: dict[str, Any], compose: dict[str, Any]) -> None:
    command = raw["services"]["redis"]["command"]
    assert "--requirepass" in command
    assert command[command.index("--requirepass") + 1].startswith("${REDIS_PASSWORD")
    redis = compose["services"]["redis"]
    assert redis["environment"]["REDISCLI_AUTH"] == _env_file(ENV_EXAMPLE)["REDIS_PASSWORD"]  # healthcheck logs in
    assert "PONG" in " ".join(redis["healthcheck"]["test"])
    assert "ports" not in redis  # reachable from the stack only


def test_flower_is_behind_basic_auth_on_loopback(raw: dict[str, Any], compose: dict[str, Any]) -> None:
    flower = compose["services"]["flower"]
    example = _env_file(ENV_EXAMPLE)
    assert flower["environment"]["FLOWER_BASIC_AUTH"] == f"{example['FLOWER_USER']}:{example['FLOWER_PASSWORD']}"
    assert "FLOWER_UNAUTHENTICATED_API" not in flower["environment"]
    assert flower["ports"] == ["127.0.0.1:5555:5555"]


def test_published_ports_are_on_loopback(raw: dict[str, Any], compose: dict[str, Any]) -> None:
    for name, service in raw["services"].items():
        for port in service.get("ports", []):
            text = str(port)
            assert text.startswith(("127.0.0.1:", "${RECARCHIVE_METRICS_BIND:-127.0.0.1}:")), f"{name}: {text}"
    metrics = [p for p in raw["services"]["simulator"]["ports"] if "METRICS" in str(p)]
    assert {str(p).rsplit(":", 1)[1] for p in metrics} == {"9808", "9809"}
    assert {compose["services"][w]["environment"]["RECARCHIVE_METRICS_PORT"] for w in ("worker", "discoverer")} == \
        {"9808", "9809"}
    # the address is configurable: another value of RECARCHIVE_METRICS_BIND moves only the metrics
    moved = _interpolate(raw, {**_env_file(ENV_EXAMPLE), "RECARCHIVE_METRICS_BIND": "10.1.2.3"})
    assert sorted(moved["services"]["simulator"]["ports"]) == ["10.1.2.3:9808:9808", "10.1.2.3:9809:9809",
                                                               "127.0.0.1:8080:8080"]


def test_every_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        check = service.get("healthcheck")
        if _one_shot(name, services):
            continue
        assert check and not check.get("disable"), f"{name}: no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1, name
    for name in WORKERS:  # each worker pings itself by the node name it runs under
        node = _command(services[name])[_command(services[name]).index("-n") + 1].replace("%h", "$HOSTNAME")
        assert services[name]["healthcheck"]["test"][1].endswith(f"-d {node}"), name
    for name, service in services.items():  # a dependency's health is what is waited for
        for dependency, spec in (service.get("depends_on") or {}).items():
            if isinstance(spec, dict) and not _one_shot(dependency, services):
                assert spec["condition"] == "service_healthy", f"{name} -> {dependency}"


def test_dockerfile_installs_every_package_it_runs() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    for package in ("config", "providers", "storage", "tasks", "worker"):
        assert re.search(rf"^COPY {package} \./{package}$", text, re.M), f"Dockerfile does not copy {package}/"
        assert (REPO / package / "__init__.py").exists()
    assert "pip install ." in text and "flower" in text
    assert re.search(r"^USER (?!root)", text, re.M)


def test_compose_file_matches_the_compose_spec_schema(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)
    broken = {**compose, "services": {**compose["services"], "redis": {**compose["services"]["redis"],
                                                                          "healthcheck": {"test": 5}}}}
    assert not validator.is_valid(broken)  # the schema check is live


def _compose_plugin() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return "no docker CLI on this machine"
    try:
        done = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"docker compose version failed: {exc}"
    return None if done.returncode == 0 else "the docker CLI has no compose plugin (schema check above instead)"


def test_docker_compose_config_validates() -> None:
    reason = _compose_plugin()
    if reason is not None:
        pytest.skip(f"docker compose config not run: {reason}")
    done = subprocess.run(["docker", "compose", "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE), "config",
                           "--quiet"], capture_output=True, text=True, timeout=60, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def iam_s3() -> Iterator[str]:
    """moto's server with IAM enforced (after the 3 requests that create an admin): its endpoint.

    A process of its own: the enforcement switch is process-wide, and the other S3 tests share one
    unauthenticated server."""
    moto_server = Path(sys.executable).with_name("moto_server")
    if not moto_server.exists():
        pytest.skip("moto's server (test extra) is not installed")
    port = _free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}
    proc = subprocess.Popen([str(moto_server), "-H", "127.0.0.1", "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_worker_s3_policy_holds_on_a_server_that_enforces_it(compose: dict[str, Any], iam_s3: str) -> None:
    """The policy as an IAM engine evaluates it (moto's): the worker writes, reads, lists and deletes
    its own bookkeeping; it cannot delete a recording's object nor destroy any version (not even its
    start-up probe's, which it leaves behind), nor change the bucket's versioning or policy, nor
    delete the bucket."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    from storage.keys import MANIFEST_PREFIX, STATE_PREFIX

    config = Config(retries={"max_attempts": 1})

    def client(service: str, key: str, secret: str) -> Any:
        return boto3.client(service, endpoint_url=iam_s3, region_name="us-east-1", aws_access_key_id=key,
                            aws_secret_access_key=secret, config=config)

    anonymous = client("iam", "setup", "setup")  # the 3 requests before enforcement: an admin
    anonymous.create_user(UserName="admin")
    anonymous.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = anonymous.create_access_key(UserName="admin")["AccessKey"]
    iam = client("iam", key["AccessKeyId"], key["SecretAccessKey"])
    admin = client("s3", key["AccessKeyId"], key["SecretAccessKey"])
    admin.create_bucket(Bucket="recordings", ObjectLockEnabledForBucket=True)
    # what createbucket does with mc, through IAM
    iam.create_user(UserName="recarchive-worker")
    arn = iam.create_policy(PolicyName="recarchive-worker",
                            PolicyDocument=compose["configs"]["worker_s3_policy"]["content"])["Policy"]["Arn"]
    iam.attach_user_policy(UserName="recarchive-worker", PolicyArn=arn)
    key = iam.create_access_key(UserName="recarchive-worker")["AccessKey"]
    worker = client("s3", key["AccessKeyId"], key["SecretAccessKey"])

    def denied(call: Any, **kwargs: Any) -> bool:
        try:
            call(Bucket="recordings", **kwargs)
        except ClientError as exc:
            return exc.response["Error"]["Code"] in ("AccessDenied", "403")
        return False

    original = "archive/convirza/acme/2026/02/14/987654/original.wav"
    version = worker.put_object(Bucket="recordings", Key=original, Body=b"RIFF", IfNoneMatch="*")["VersionId"]
    assert worker.head_object(Bucket="recordings", Key=original)["ContentLength"] == 4
    assert worker.get_object(Bucket="recordings", Key=original)["Body"].read() == b"RIFF"
    assert [o["Key"] for o in worker.list_objects_v2(Bucket="recordings", Prefix="archive/")["Contents"]] == [original]
    worker.get_object_lock_configuration(Bucket="recordings")
    assert denied(worker.delete_object, Key=original)  # not even a delete marker over a recording
    assert denied(worker.delete_object, Key=original, VersionId=version)
    kept = admin.list_object_versions(Bucket="recordings", Prefix=original)
    assert [v["VersionId"] for v in kept["Versions"]] == [version] and not kept.get("DeleteMarkers")
    probe = worker.put_object(Bucket="recordings", Key="archive/_state/_checks/conditional-write", Body=b"p")
    assert denied(worker.delete_object, Key="archive/_state/_checks/conditional-write", VersionId=probe["VersionId"])
    for own in (f"archive/{STATE_PREFIX}/acme/parked/987654.json",
                f"archive/{MANIFEST_PREFIX}/acme/pending/2026-02-14/987654.json"):
        worker.put_object(Bucket="recordings", Key=own, Body=b"{}")
        worker.delete_object(Bucket="recordings", Key=own)  # unpark / a closed day's pending entry
        assert not worker.list_objects_v2(Bucket="recordings", Prefix=own).get("Contents")
    assert denied(worker.put_bucket_versioning, VersioningConfiguration={"Status": "Suspended"})
    assert denied(worker.put_bucket_policy, Policy=json.dumps({"Version": "2012-10-17", "Statement": []}))
    assert denied(worker.delete_bucket)
