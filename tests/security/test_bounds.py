"""Hostile bodies and headers are bounded (CONTRACT §4.9): a gigantic ``Content-Length`` is refused
before the body is read, an endless body stops at the byte bound, huge response headers end in a
bounded error, and an oversized JSON page stops only its own account. Memory stays bounded while
that happens (Python allocations traced with ``tracemalloc``; no assertion on time)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from providers._http import MAX_JSON_BYTES, VendorClient
from providers.simulator import Simulator
from tests.security._support import FAST, one_pass, outcomes, sim_settings
from worker.errors import BadVendorData

MiB = 1024 * 1024


def work_files(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "work").rglob("*") if p.is_file()]


def test_gigantic_content_length_is_refused_before_download(sim: Simulator, tmp_path: Path) -> None:
    good, giant = sim.add("convirza", 2, seconds=1.0)
    sim.set_fault("convirza", giant.id, "giant_length")  # Content-Length: 10**13
    summary = one_pass(sim_settings(sim, tmp_path, ("convirza",)))
    assert outcomes(summary) == {good.id: ("archived", None), giant.id: ("parked", "too_large")}
    assert sim.media_requests(giant.id) == 1  # permanent: not retried
    assert work_files(tmp_path) == []


def test_endless_body_stops_at_the_byte_bound_with_bounded_memory(sim: Simulator, tmp_path: Path) -> None:
    (endless,) = sim.add("convirza", 1, seconds=1.0)
    sim.set_fault("convirza", endless.id, "endless")  # the WAV, then zeros for ever, no Content-Length
    bound = 48 * MiB
    tracemalloc.start()
    try:
        summary = one_pass(sim_settings(sim, tmp_path, ("convirza",)), max_bytes=bound)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcomes(summary) == {endless.id: ("parked", "too_large")}
    assert f"exceeds the {bound} byte bound" in (summary.accounts[0].results[0].message or "")
    assert peak < 12 * MiB, f"{peak / MiB:.1f} MiB of Python memory while receiving {bound / MiB:.0f} MiB"
    assert work_files(tmp_path) == []  # the spool of 48 MiB was removed


def test_huge_response_headers_end_in_a_bounded_error(sim: Simulator, tmp_path: Path) -> None:
    good, padded = sim.add("envoy", 2, seconds=1.0)
    sim.set_fault("envoy", padded.id, "huge_headers", size=4 * MiB)
    summary = one_pass(sim_settings(sim, tmp_path, ("envoy",)))
    # h11 refuses a header block past its 16 KiB buffer: a protocol error, retried, then parked
    assert outcomes(summary) == {good.id: ("archived", None), padded.id: ("parked", "unavailable")}
    assert sim.media_requests(padded.id) == FAST.max_attempts
    assert not list((tmp_path / "archive").rglob(f"{padded.id}/*"))


def test_oversized_json_page_stops_only_its_account(sim: Simulator, tmp_path: Path) -> None:
    sim.add("siro", 2, seconds=1.0)
    others = sim.add("envoy", 2, seconds=1.0)
    sim.set_api_fault("siro", "oversized_json", times=1)  # a 41 MiB page, announced by Content-Length
    summary = one_pass(sim_settings(sim, tmp_path, ("siro", "envoy")))
    siro, envoy = summary.accounts
    assert siro.error_reason == "too_large" and siro.results == []
    assert envoy.error is None and sorted(r.recording_id for r in envoy.results) == sorted(r.id for r in others)
    assert "beyond our bound" in (siro.error or "")  # refused on its Content-Length, before reading
    assert not list((tmp_path / "archive").rglob("siro/**/metadata.json"))


def test_oversized_json_without_a_length_is_bad_vendor_data_with_bounded_memory() -> None:
    def endless_json() -> Iterator[bytes]:
        yield b'{"data": ["'
        block = b"x" * MiB
        while True:
            yield block

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless_json(), headers={"Content-Type": "application/json"})

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        client = VendorClient("https://api.vendor.test/", http=http, sleep=lambda _s: None)
        tracemalloc.start()
        try:
            with pytest.raises(BadVendorData, match="larger than"):
                client.get_json("v1/core/recordings")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < MAX_JSON_BYTES + 8 * MiB  # held at most one page's bound, never the endless body
