"""Hostile vendor data (issue 14, item 1): a JSON page nested 10,000 levels deep, or past the size
bound, fails its own account with one clear line; the other accounts of the same pass archive as
usual, ``run --once`` exits 1, and no traceback (no ``RecursionError``) reaches the operator."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from providers._http import VendorClient
from providers._jsonbounds import MAX_JSON_DEPTH, json_depth_exceeds
from providers.simulator import Simulator
from tests._e2e import cli, write_config
from worker.errors import BadVendorData


def nested(depth: int, inner: bytes = b"1") -> bytes:
    return b'{"data": ' + b"[" * depth + inner + b"]" * depth + b"}"


@pytest.mark.parametrize(("text", "too_deep"), [
    (nested(MAX_JSON_DEPTH - 1), False),            # the object plus 63 arrays: 64 levels
    (nested(MAX_JSON_DEPTH), True),
    (nested(10_000), True),
    (b"[" * 10_000, True),                            # unbalanced, would still recurse in json.loads
    (b"[" * 10, False),                               # unbalanced and shallow: json.loads refuses it
    (json.dumps({"id": "[" * 500, "x": "\\\"{" * 500}).encode(), False),  # brackets inside strings
    (json.dumps({"data": [{"a": {"b": [1, 2, {"c": "x\\"}]}}] * 5000}).encode(), False),
])
def test_depth_is_measured_outside_strings_without_recursion(text: bytes, too_deep: bool) -> None:
    assert json_depth_exceeds(text) is too_deep


def test_a_deep_page_is_bad_vendor_data_with_one_line() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=nested(10_000), headers={"Content-Type": "application/json"})

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        client = VendorClient("https://api.vendor.test/", http=http, sleep=lambda _s: None)
        with pytest.raises(BadVendorData) as caught:
            client.get_json("v1/recordings?page=1")
    message = str(caught.value)
    assert "nested deeper than 64 levels" in message and "\n" not in message
    assert "page=1" not in message  # the URL is shown without its query


def test_run_once_fails_the_hostile_account_and_archives_the_other(sim: Simulator, tmp_path: Path) -> None:
    sim.add("envoy", 2, seconds=1.0)
    others = sim.add("convirza", 2, seconds=1.0)
    sim.set_api_fault("envoy", "deep_json", depth=10_000)
    accounts = [sim.account("envoy", name="hostile"), sim.account("convirza", name="fine")]
    config = write_config(tmp_path / "recarchive.toml",
                          {"url": str(tmp_path / "archive"), "work_dir": str(tmp_path / "work")}, accounts)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **sim.environ()}
    done = cli("run", "--once", "--config", str(config), env=env)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output and "RecursionError" not in output
    failing = [line for line in done.stderr.splitlines() if "nested deeper than" in line]
    assert len(failing) == 1 and "account hostile" in failing[0], output  # one line, naming the account
    assert "FAILED" in done.stdout and "fine" in done.stdout
    archived = {p.parent.name for p in (tmp_path / "archive").rglob("metadata.json") if "_state" not in p.parts}
    assert archived >= {rec.id for rec in others}
    assert not list((tmp_path / "archive").rglob("envoy/**/metadata.json"))
