"""External media in the simulator: ``Simulator.add(data=...)`` / ``add(media_file=...)`` and the plain
``/files/`` listing the throughput benchmark copies with rclone. A file-backed recording is streamed from
disk on every request (never held in memory), with ranges and faults behaving as for generated media."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from config import settings_from_mapping
from providers.simulator import Simulator, make_media
from providers.simulator.listing import file_name
from worker.compliance.session import open_context
from worker.pipeline.archive import Outcome
from worker.pipeline.context import RetryPolicy
from worker.pipeline.passes import run_pass


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def envoy_link(http: httpx.Client, sim: Simulator, call_id: str) -> dict[str, Any]:
    answer = http.get(f"{sim.base_url('envoy')}/api/v1/calls/{call_id}/recording",
                      headers={"Authorization": f"Bearer {sim.token('envoy')}"})
    return dict(answer.json())


def wav_file(tmp_path: Path, seconds: float = 3.0, name: str = "big.wav") -> Path:
    path = tmp_path / name
    path.write_bytes(make_media("wav", seconds, f"file:{name}"))
    return path


def test_media_file_is_served_from_disk_byte_exact_with_ranges(sim: Simulator, http: httpx.Client,
                                                               tmp_path: Path) -> None:
    path = wav_file(tmp_path)
    content = path.read_bytes()
    (rec,) = sim.add("envoy", media_file=path, seconds=3.0)
    assert rec.kind == "wav"  # sniffed from the file, not the vendor's default (m4a)
    assert rec.data == b""  # nothing held in memory
    assert rec.size == len(content) and rec.sha256 == hashlib.sha256(content).hexdigest()
    body = envoy_link(http, sim, rec.id)
    assert body["file_size_bytes"] == len(content) and body["content_type"] == "audio/wav"
    whole = http.get(body["url"])
    assert whole.status_code == 200 and whole.content == content
    assert whole.headers["content-length"] == str(len(content))
    part = http.get(body["url"], headers={"Range": "bytes=100-"})
    assert part.status_code == 206 and part.content == content[100:]
    assert part.headers["content-range"] == f"bytes 100-{len(content) - 1}/{len(content)}"
    tail = http.get(body["url"], headers={"Range": "bytes=-10"})
    assert tail.content == content[-10:]


def test_media_file_faults_still_apply(sim: Simulator, http: httpx.Client, tmp_path: Path) -> None:
    path = wav_file(tmp_path, seconds=4.0)
    content = path.read_bytes()
    (rec,) = sim.add("envoy", media_file=path, seconds=4.0)
    sim.set_fault("envoy", rec.id, "cut", times=1, at=5000)
    url = envoy_link(http, sim, rec.id)["url"]
    with pytest.raises(httpx.RemoteProtocolError):
        http.get(url)
    resumed = http.get(url, headers={"Range": "bytes=5000-"})
    assert resumed.content == content[5000:]
    sim.set_fault("envoy", rec.id, "endless", times=1)
    received = b""
    with http.stream("GET", url) as response:
        assert "content-length" not in response.headers
        for chunk in response.iter_bytes():
            received += chunk
            if len(received) > len(content) + 200_000:
                break
    assert received.startswith(content) and received[len(content):len(content) + 1000] == bytes(1000)


def test_data_bytes_are_served_and_kind_is_sniffed(sim: Simulator, http: httpx.Client) -> None:
    data = make_media("wav", 1.0, "bytes-given")
    (rec,) = sim.add("convirza", data=data, seconds=1.0)
    assert rec.kind == "wav" and rec.data == data
    listing = http.get(f"{sim.base_url('convirza')}/v3/conversations/calls",
                       params={"limit": 10, "include": "recordings"},
                       headers={"Authorization": f"Bearer {sim.token('convirza')}"}).json()
    url = listing["data"]["calls"][0]["recording_details"]["url"]
    assert http.get(url).content == data


def test_add_refuses_ambiguous_or_unknown_media(sim: Simulator, tmp_path: Path) -> None:
    path = wav_file(tmp_path)
    with pytest.raises(ValueError, match="not both"):
        sim.add("envoy", data=b"RIFF", media_file=path)
    with pytest.raises(ValueError, match="none of"):
        sim.add("envoy", data=b"<html>not media</html>")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        sim.add("envoy", media_file=tmp_path / "empty.wav")
    with pytest.raises(FileNotFoundError):
        sim.add("envoy", media_file=tmp_path / "missing.wav")


def test_files_listing_links_every_ready_recording(sim: Simulator, http: httpx.Client, tmp_path: Path) -> None:
    path = wav_file(tmp_path)
    (big,) = sim.add("convirza", media_file=path, seconds=3.0)
    (small,) = sim.add("siro", seconds=1.0)
    (waiting,) = sim.add("siro", seconds=1.0, state="not_ready")
    index = http.get(f"{sim.url}/files/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    names = re.findall(r'href="([^"]+)"', index.text)
    assert sorted(names) == sorted([file_name(big), file_name(small)])
    assert file_name(waiting) not in index.text
    head = http.head(f"{sim.url}/files/{file_name(big)}")
    assert head.status_code == 200 and head.headers["content-length"] == str(path.stat().st_size)
    assert "last-modified" in head.headers
    assert http.get(f"{sim.url}/files/{file_name(big)}").content == path.read_bytes()
    assert http.get(f"{sim.url}/files/{file_name(small)}").content == small.data
    assert http.get(f"{sim.url}/files/nope.wav").status_code == 404
    sim.set_fault("siro", small.id, "html200")  # the listing never applies (nor uses up) a fault
    assert http.get(f"{sim.url}/files/{file_name(small)}").content == small.data
    assert sim.catalog.faults[("siro", small.id)].name == "html200"
    assert {r.kind for r in sim.requests} == {"listing"}


def test_pipeline_archives_a_file_backed_recording_byte_exact(sim: Simulator, tmp_path: Path) -> None:
    path = wav_file(tmp_path, seconds=6.0)
    (rec,) = sim.add("convirza", media_file=path, seconds=6.0)
    settings = settings_from_mapping({
        "storage": {"url": str(tmp_path / "archive"), "work_dir": str(tmp_path / "work")},
        "accounts": [sim.account("convirza")],
    }, sim.environ())
    ctx = open_context(settings, retry=RetryPolicy(backoff_base=0.01, backoff_max=0.05))
    try:
        summary = run_pass(ctx, settings.accounts, concurrency=1)
    finally:
        ctx.close()
    assert summary.accounts[0].counts[Outcome.ARCHIVED] == 1
    stored = list((tmp_path / "archive").rglob("original.wav"))
    assert len(stored) == 1 and stored[0].read_bytes() == path.read_bytes()
    assert f"/{rec.id}/" in stored[0].as_posix()
