"""The vendor simulator over real HTTP: each vendor's documented shapes, signed links, media serving
and every switchable fault. The provider clients are written against the same documents; these tests
pin what the simulator serves so both sides can be checked against one reading."""

from __future__ import annotations

import email.utils
import hashlib
import json
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from config import settings_from_mapping
from providers.simulator import VENDORS, Simulator, make_media, serve, sniff_kind
from providers.simulator.catalog import BAD_VALUE
from worker.media.ffmpeg import find_ffmpeg


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def auth(sim: Simulator, vendor: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.token(vendor)}"}


def convirza_list(http: httpx.Client, sim: Simulator, **params: Any) -> httpx.Response:
    params.setdefault("limit", 50)
    return http.get(f"{sim.base_url('convirza')}/v3/conversations/calls", params=params, headers=auth(sim, "convirza"))


def convirza_url(http: httpx.Client, sim: Simulator, call_id: str) -> str:
    body = convirza_list(http, sim, call_id=call_id, include="recordings").json()
    return str(body["data"]["calls"][0]["recording_details"]["url"])


def convoso_list(http: httpx.Client, sim: Simulator, path: str = "lead", **params: Any) -> httpx.Response:
    params.setdefault("auth_token", sim.token("convoso"))
    params.setdefault("lead_id", "270")
    return http.get(f"{sim.base_url('convoso')}/v1/{path}/get-recordings", params=params)


def envoy_url(http: httpx.Client, sim: Simulator, call_id: str) -> str:
    body = http.get(f"{sim.base_url('envoy')}/api/v1/calls/{call_id}/recording", headers=auth(sim, "envoy")).json()
    return str(body["url"])


def raw_get(url: str, extra: str = "", limit: int = 400_000) -> bytes:
    """A GET over a plain socket, returning whatever arrives (headers included) until EOF or ``limit``."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n{extra}\r\n".encode())
        received = b""
        while len(received) < limit:
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


# -- media --------------------------------------------------------------------------------------------


def test_generated_media_sniffs_as_its_kind_is_unique_and_decodes(tmp_path: Path) -> None:
    ffmpeg = find_ffmpeg().ffmpeg
    for kind in ("wav", "mp3", "m4a", "mp4"):
        one = make_media(kind, 2.5, "rec-1", cache_dir=tmp_path)
        other = make_media(kind, 2.5, "rec-2", cache_dir=tmp_path)
        assert sniff_kind(one[:16]) == kind
        assert hashlib.sha256(one).digest() != hashlib.sha256(other).digest()
        decoded = subprocess.run([ffmpeg, "-v", "error", "-i", "-", "-f", "null", "-"], input=one,
                                 capture_output=True, timeout=60, check=False)
        assert decoded.returncode == 0, decoded.stderr
        assert decoded.stderr == b""
    assert make_media("mp3", 2.5, "rec-1", cache_dir=tmp_path)[:3] == b"ID3"
    video = make_media("mp4", 2.5, "v", cache_dir=tmp_path)
    probe = subprocess.run([ffmpeg, "-hide_banner", "-i", "-"], input=video, capture_output=True, timeout=60,
                           check=False)
    assert b"Video: h264" in probe.stderr and b"Audio: aac" in probe.stderr
    audio = subprocess.run([ffmpeg, "-hide_banner", "-i", "-"], input=make_media("m4a", 2.5, "a", cache_dir=tmp_path),
                           capture_output=True, timeout=60, check=False)
    assert b"Audio: aac" in audio.stderr and b"Video:" not in audio.stderr


def test_wav_has_exact_riff_sizes() -> None:
    wav = make_media("wav", 1.25, "exact")
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    assert struct.unpack("<I", wav[4:8])[0] == len(wav) - 8
    offset, chunks = 12, {}
    while offset < len(wav):
        name, size = wav[offset : offset + 4], struct.unpack("<I", wav[offset + 4 : offset + 8])[0]
        chunks[name] = size
        offset += 8 + size + (size % 2)
    assert offset == len(wav)
    assert chunks[b"data"] == 10000 * 2  # 1.25 s at 8 kHz, 16-bit mono
    assert struct.unpack("<HHI", wav[20:28]) == (1, 1, 8000)


# -- Convirza -----------------------------------------------------------------------------------------


def test_convirza_list_shape_include_and_single_record_mode(sim: Simulator, http: httpx.Client) -> None:
    ready = sim.add("convirza", 2, kind="wav", seconds=3.2)
    silent = sim.add("convirza", state="no_recording")[0]
    body = convirza_list(http, sim).json()
    assert body["code"] == 200 and body["message"] == "Success"
    assert body["data"]["total"] == 3
    calls = body["data"]["calls"]
    assert [c["call_id"] for c in calls] == [int(r.id) for r in (*ready, silent)]
    assert all("recording_details" not in c for c in calls)  # only with include=recordings
    assert calls[0]["call_started"] == ready[0].started_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert calls[0]["duration"] == 3
    calls = convirza_list(http, sim, include="recordings,tags").json()["data"]["calls"]
    details = calls[0]["recording_details"]
    assert details["format"] == "wav" and details["url"].split("?")[0].endswith(f"/recordings/{ready[0].id}")
    assert parse_qs(urlsplit(details["url"]).query)["file_name"][0].endswith(".mp3")
    assert isinstance(details["expires_at"], int)
    assert "recording_details" not in calls[2] and calls[2]["disposition"] == "NO ANSWER"
    single = convirza_list(http, sim, call_id=ready[1].id, include="recordings", limit=None).json()["data"]
    assert single["total"] == 1 and single["calls"][0]["call_id"] == int(ready[1].id)
    assert convirza_list(http, sim, call_id="1").json()["data"] == {"total": 0, "calls": []}
    assert convirza_list(http, sim, call_id="abc").status_code == 400


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"limit": None}, 400),
        ({"limit": 0}, 400),
        ({"limit": 201}, 400),
        ({"limit": 200}, 200),
        ({"start": "2026-01-01T00:00:00Z", "end": "2026-02-02T00:00:01Z"}, 400),
        ({"start": "2026-01-01T00:00:00Z", "end": "2026-02-01T00:00:00Z"}, 200),
        ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-02T00:00:00Z"}, 400),
        ({"start": "not-a-date"}, 400),
    ],
)
def test_convirza_validates_limit_and_range(sim: Simulator, http: httpx.Client, params: dict[str, Any],
                                            status: int) -> None:
    response = convirza_list(http, sim, **params)
    assert response.status_code == status
    if status == 400:
        assert response.json()["code"] == 400 and response.json()["message"]


def test_convirza_window_is_half_open_and_paging_by_offset(sim: Simulator, http: httpx.Client) -> None:
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    recs = sim.add("convirza", 5, started_at=start, seconds=1.0)  # one a minute
    window = {"start": "2026-03-01T12:00:00Z", "end": "2026-03-01T12:04:00Z"}
    seen = []
    for offset in (0, 2, 4):
        data = convirza_list(http, sim, limit=2, offset=offset, **window).json()["data"]
        assert data["total"] == 4
        seen += [c["call_id"] for c in data["calls"]]
    assert seen == [int(r.id) for r in recs[:4]]


def test_convirza_auth_and_signed_link_expiry(sim: Simulator, http: httpx.Client) -> None:
    rec = sim.add("convirza", kind="wav", seconds=1.0)[0]
    url = f"{sim.base_url('convirza')}/v3/conversations/calls"
    assert http.get(url, params={"limit": 1}).status_code == 401
    assert http.get(url, params={"limit": 1}, headers={"Authorization": "Bearer nope"}).status_code == 401
    link = convirza_url(http, sim, rec.id)
    media = http.get(link)
    assert media.status_code == 200 and media.content == rec.data
    assert media.content[:4] == b"RIFF" and media.headers["content-type"] == "audio/mpeg"
    assert http.get(link.replace("secret=", "secret=0")).status_code == 403
    sim.expire_links("convirza")
    gone = http.get(link)
    assert gone.status_code == 410
    assert gone.text == "Recording URL has expired. Please re-fetch the call to get a fresh link."
    fresh = convirza_url(http, sim, rec.id)
    assert http.get(fresh).content == rec.data
    sim.advance_clock(sim.link_ttl("convirza") + 5)
    assert http.get(fresh).status_code == 410


def test_convirza_documented_ttl_is_seven_days(sim_factory: Any) -> None:
    assert sim_factory(link_ttl=None).link_ttl("convirza") == 7 * 86400


def test_links_expire_after_a_real_ttl(sim_factory: Any, http: httpx.Client) -> None:
    sim = sim_factory(link_ttl=1)
    rec = sim.add("envoy", seconds=1.0)[0]
    link = envoy_url(http, sim, rec.id)
    assert http.get(link).status_code == 200
    sim.advance_clock(1.5)
    expired = http.get(link)
    assert expired.status_code == 403 and b"Request has expired" in expired.content


# -- Convoso ------------------------------------------------------------------------------------------


def test_convoso_shape_string_numbers_and_both_spellings(sim: Simulator, http: httpx.Client) -> None:
    recs = sim.add("convoso", 12, seconds=2.0)
    sim.add("convoso", 2, lead_id=999)
    for path in ("lead", "leads"):
        body = convoso_list(http, sim, path).json()
        assert body["success"] is True
        data = body["data"]
        assert (data["offset"], data["limit"], data["total"]) == ("0", "10", "12")  # strings, default limit 10
        entry = data["entries"][0]
        assert entry["recording_id"] == int(recs[0].id) and entry["lead_id"] == 270 and entry["seconds"] == 2
        assert entry["url"].endswith("-all.wav")
    ends = [e["end_time"] for e in convoso_list(http, sim, limit=100).json()["data"]["entries"]]
    assert "" in ends and any(ends)
    sim.set_option("convoso_string_numbers", False)
    data = convoso_list(http, sim, offset=10, limit=5).json()["data"]
    assert (data["offset"], data["limit"], data["total"], len(data["entries"])) == (10, 5, 12, 2)
    media = http.get(urljoin(sim.media_base_url("convoso") or "", data["entries"][0]["url"]))
    assert media.status_code == 200 and media.content == recs[10].data


def test_convoso_errors_are_in_band(sim: Simulator, http: httpx.Client) -> None:
    for params in ({"auth_token": "wrong"}, {"lead_id": ""}, {"limit": 101}, {"start_time": "2026-01-01T00:00"}):
        response = convoso_list(http, sim, **params)
        assert response.status_code == 200
        assert response.json()["success"] is False and response.json()["text"]
    assert convoso_list(http, sim, auth_token="wrong").json()["text"] == "Invalid auth token"


def test_convoso_times_are_naive_in_its_zone_and_inclusive(sim: Simulator, http: httpx.Client) -> None:
    start = datetime(2026, 7, 1, 16, 0, tzinfo=UTC)  # 12:00 in New York (EDT)
    recs = sim.add("convoso", 3, started_at=start)
    body = convoso_list(http, sim, start_time="2026-07-01 12:00:00", end_time="2026-07-01 12:01:00").json()
    entries = body["data"]["entries"]
    assert [e["recording_id"] for e in entries] == [int(r.id) for r in recs[:2]]
    assert entries[0]["start_time"] == "2026-07-01 12:00:00"
    local = datetime.strptime(entries[1]["start_time"], "%Y-%m-%d %H:%M:%S")
    assert local.replace(tzinfo=ZoneInfo("America/New_York")) == recs[1].started_at


def test_convoso_lead_spelling_404_switch(sim: Simulator, http: httpx.Client) -> None:
    sim.add("convoso")
    sim.set_api_fault("convoso", "convoso_lead_404")
    assert convoso_list(http, sim, "lead").status_code == 404
    assert convoso_list(http, sim, "leads").json()["success"] is True
    assert convoso_list(http, sim, "lead").status_code == 404


# -- Salesloft ----------------------------------------------------------------------------------------


def convoso_log(http: httpx.Client, sim: Simulator, **params: Any) -> httpx.Response:
    params.setdefault("auth_token", sim.token("convoso"))
    params.setdefault("include_recordings", 1)
    return http.get(f"{sim.base_url('convoso')}/v1/log/retrieve", params=params)


def test_convoso_call_log_shape_order_and_media_fields(sim: Simulator, http: httpx.Client) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    ready = sim.add("convoso", 2, seconds=3.0, started_at=start)
    waiting = sim.add("convoso", state="not_ready", started_at=start + timedelta(minutes=5))[0]
    newest = convoso_log(http, sim).json()["data"]
    assert set(newest) == {"offset", "limit", "total_found", "entries", "results"}
    assert newest["total_found"] == "3" and newest["entries"] == 3 and newest["limit"] == 500
    assert [c["id"] for c in newest["results"]] == [r.extra["call_id"] for r in (waiting, *reversed(ready))]
    oldest = convoso_log(http, sim, order="asc", limit=2).json()["data"]
    call = oldest["results"][0]
    assert {"id", "lead_id", "call_date", "call_length", "status", "user_id", "recording"} <= set(call)
    assert call["call_date"] == start.astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m-%d %H:%M:%S")
    [element] = call["recording"]
    assert set(element) == {"recording_id", "src", "type", "filename", "public_url"}
    assert str(element["recording_id"]) == ready[0].id and http.get(element["src"]).content == ready[0].data
    assert newest["results"][0]["recording"] == []  # not ready: the call exists, its recording not yet
    assert "recording" not in convoso_log(http, sim, include_recordings=0).json()["data"]["results"][0]
    sim.set_option("convoso_log_media", "filename")
    element = convoso_log(http, sim, order="asc").json()["data"]["results"][0]["recording"][0]
    assert element["src"] == "" and element["filename"] == ready[0].extra["filename"]
    sim.set_option("convoso_log_media", "public_url")
    element = convoso_log(http, sim, order="asc").json()["data"]["results"][0]["recording"][0]
    assert element["src"] == "" and http.get(element["public_url"]).content == ready[0].data
    assert convoso_log(http, sim, auth_token="wrong").json() == {"success": False, "code": 401,
                                                                 "text": "Invalid auth token"}
    assert convoso_log(http, sim, limit=0).json()["success"] is False


def test_convoso_unknown_lead_is_code_6001(sim: Simulator, http: httpx.Client) -> None:
    sim.add("convoso")
    sim.set_option("convoso_unknown_leads", ["404404"])
    assert convoso_list(http, sim, lead_id="404404").json() == {"success": False, "code": 6001,
                                                                "text": "No such Lead"}
    assert convoso_list(http, sim).json()["success"] is True


def test_salesloft_envelope_paging_sorting_and_filters(sim: Simulator, http: httpx.Client) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    recs = sim.add("salesloft", 5, seconds=2.5, started_at=start)
    video = sim.add("salesloft", kind="mp4", seconds=1.0, started_at=start + timedelta(minutes=5))[0]
    waiting = sim.add("salesloft", state="not_ready", started_at=start + timedelta(minutes=6))[0]
    url = f"{sim.base_url('salesloft')}/v2/conversations"
    params: dict[str, Any] = {"sort_by": "created_at", "sort_direction": "ASC", "per_page": 3}
    first = http.get(url, params={**params, "page": 1}, headers=auth(sim, "salesloft")).json()
    assert first["metadata"]["paging"] == {"per_page": 3, "current_page": 1, "next_page": 2, "prev_page": None}
    last = http.get(url, params={**params, "page": 3}, headers=auth(sim, "salesloft")).json()
    assert last["metadata"]["paging"]["next_page"] is None and last["metadata"]["paging"]["prev_page"] == 2
    items = first["data"] + http.get(url, params={**params, "page": 2}, headers=auth(sim, "salesloft")).json()["data"]
    items += last["data"]
    assert [i["id"] for i in items] == [r.id for r in (*recs, video, waiting)]
    assert items[0]["duration"] == 2500 and items[0]["media_type"] == "audio"
    assert items[0]["recording"]["_href"] == f"{sim.url}/salesloft/v2/conversations/{items[0]['id']}/recording"
    assert items[0]["recording"]["id"] == recs[0].extra["recording_id"]
    assert items[5]["media_type"] == "video" and items[6]["recording"] is None
    default = http.get(url, headers=auth(sim, "salesloft")).json()["data"]
    assert [i["id"] for i in default] == [r.id for r in (waiting, video, *reversed(recs))]  # DESC by default
    since = recs[2].created_at.isoformat()
    until = video.created_at.isoformat()
    window = http.get(url, params={"created_at[gte]": since, "created_at[lt]": until, "sort_direction": "asc"},
                      headers=auth(sim, "salesloft")).json()["data"]
    assert [i["id"] for i in window] == [r.id for r in recs[2:]]
    for bad in ({"per_page": 0}, {"per_page": 101}, {"sort_by": "title"}, {"created_at[gte]": "yesterday"}):
        assert http.get(url, params=bad, headers=auth(sim, "salesloft")).status_code == 400
    assert http.get(url).status_code == 401
    sim.set_option("salesloft_bare_array", True)
    bare = http.get(url, headers=auth(sim, "salesloft")).json()
    assert isinstance(bare, list) and len(bare) == 7


def test_salesloft_recording_href_json_redirect_and_bytes(sim: Simulator, http: httpx.Client) -> None:
    recs = sim.add("salesloft", 3, seconds=1.0)
    href = f"{sim.base_url('salesloft')}/v2/recordings/{recs[0].extra['recording_id']}"
    assert http.get(href).status_code == 401
    body = http.get(href, headers=auth(sim, "salesloft")).json()["data"]
    assert set(body) >= {"url", "expires_at"}
    assert http.get(body["url"]).content == recs[0].data
    sim.set_delivery("salesloft", recs[1].id, "redirect")
    moved = http.get(f"{sim.base_url('salesloft')}/v2/recordings/{recs[1].extra['recording_id']}",
                     headers=auth(sim, "salesloft"))
    assert moved.status_code == 302 and http.get(moved.headers["location"]).content == recs[1].data
    sim.set_delivery("salesloft", recs[2].id, "bytes")
    direct = http.get(f"{sim.base_url('salesloft')}/v2/recordings/{recs[2].extra['recording_id']}",
                      headers=auth(sim, "salesloft"))
    assert direct.content == recs[2].data and direct.headers["content-type"] == "audio/mpeg"
    sim.expire_links("salesloft")
    expired = http.get(body["url"])
    assert expired.status_code == 403 and b"AccessDenied" in expired.content


@pytest.mark.parametrize(("mode", "where"), [("json", ("data", "url")), ("json_top", ("url",)),
                                             ("recording_url", ("data", "recording_url")),
                                             ("download_url", ("download_url",))])
def test_salesloft_recording_endpoint_answer_shapes_on_the_storage_host(sim: Simulator, http: httpx.Client,
                                                                        mode: str, where: tuple[str, ...]) -> None:
    rec = sim.add("salesloft", seconds=1.0)[0]
    sim.set_delivery("salesloft", rec.id, mode)
    body: Any = http.get(f"{sim.base_url('salesloft')}/v2/conversations/{rec.id}/recording",
                         headers=auth(sim, "salesloft")).json()
    for key in where:
        body = body[key]
    assert urlsplit(body).hostname == "localhost" and urlsplit(body).port == sim.port  # not the API host
    assert http.get(body).content == rec.data
    with pytest.raises(ValueError):
        sim.set_delivery("salesloft", rec.id, "carrier-pigeon")


def test_salesloft_download_permission_and_shared_minute_budget(sim: Simulator, http: httpx.Client) -> None:
    rec = sim.add("salesloft", seconds=1.0)[0]
    url = f"{sim.base_url('salesloft')}/v2/conversations"
    first = http.get(url, headers=auth(sim, "salesloft"))
    assert first.headers["x-ratelimit-endpoint-cost"] == "1"
    assert first.headers["x-ratelimit-remaining-minute"] == "599"
    assert http.get(url, params={"page": 101}, headers=auth(sim, "salesloft")).headers[
        "x-ratelimit-endpoint-cost"] == "3"
    assert http.get(url, params={"page": 501}, headers=auth(sim, "salesloft")).headers[
        "x-ratelimit-remaining-minute"] == str(600 - 1 - 3 - 30)
    sim.set_option("salesloft_other_usage", 600 - 34 - 2)  # the customer's other integrations
    assert http.get(url, headers=auth(sim, "salesloft")).headers["x-ratelimit-remaining-minute"] == "1"
    assert http.get(url, headers=auth(sim, "salesloft")).headers["x-ratelimit-remaining-minute"] == "0"
    spent = http.get(url, headers=auth(sim, "salesloft"))
    assert spent.status_code == 429 and 1 <= int(spent.headers["retry-after"]) <= 60
    sim.set_option("salesloft_other_usage", 0)
    sim.set_option("salesloft_download_permission", False)
    denied = http.get(f"{url}/{rec.id}/recording", headers=auth(sim, "salesloft"))
    assert denied.status_code == 403 and "Download Conversations" in denied.text


# -- Envoy --------------------------------------------------------------------------------------------


def envoy_pages(http: httpx.Client, sim: Simulator, size: int, **params: Any) -> list[dict[str, Any]]:
    url, number, calls = f"{sim.base_url('envoy')}/api/v1/calls", 1, []
    while True:
        page = http.get(url, params={"page": number, "page_size": size, **params}, headers=auth(sim, "envoy")).json()
        calls += page["data"]
        if not page["data"] or number >= page["pagination"]["total_pages"]:
            return calls
        number += 1


def test_envoy_lists_pages_of_the_documented_envelope(sim: Simulator, http: httpx.Client) -> None:
    recs = sim.add("envoy", 5, seconds=2.0)
    url = f"{sim.base_url('envoy')}/api/v1/calls"
    first = http.get(url, params={"page": 1, "page_size": 2}, headers=auth(sim, "envoy")).json()
    assert first["pagination"] == {"page": 1, "page_size": 2, "total_count": 5, "total_pages": 3, "has_next": True,
                                   "has_prev": False}
    assert set(first["data"][0]) == {"id", "status", "call_time", "created_at", "updated_at", "call_direction",
                                     "phone_number", "to_number", "from_number", "call_start_time", "call_end_time",
                                     "call_type", "load_id", "organization_id", "created_by_id", "recording_status",
                                     "load_number"}  # the keys of the "List calls" example
    calls = envoy_pages(http, sim, 2)
    assert [c["id"] for c in calls] == [r.id for r in reversed(recs)]  # newest first
    assert {c["recording_status"] for c in calls} == {"AVAILABLE"} and calls[0]["status"] == "COMPLETED"
    assert http.get(url, headers=auth(sim, "envoy")).json()["pagination"]["page_size"] == 20
    today, tomorrow = recs[0].created_at.date(), recs[0].created_at.date() + timedelta(days=1)
    assert len(envoy_pages(http, sim, 100, start_date=today.isoformat(), end_date=today.isoformat())) == 5
    assert envoy_pages(http, sim, 100, start_date=tomorrow.isoformat()) == []
    for bad in ({"page_size": 101}, {"page_size": 0}, {"page": 0}, {"start_date": "yesterday"}):
        assert http.get(url, params=bad, headers=auth(sim, "envoy")).status_code == 422
    one = http.get(f"{url}/{recs[0].id}", headers=auth(sim, "envoy")).json()
    assert one["id"] == recs[0].id and one["call_start_time"] == recs[0].started_at.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_envoy_recording_fields_on_the_storage_host(sim: Simulator, http: httpx.Client) -> None:
    recs = sim.add("envoy", 2, seconds=2.0)
    url = f"{sim.base_url('envoy')}/api/v1/calls"
    body = http.get(f"{url}/{recs[0].id}/recording", headers=auth(sim, "envoy")).json()
    assert set(body) == {"call_id", "url", "content_type", "expires_at", "recording_status", "duration_seconds",
                         "file_size_bytes", "recording_start_time"}
    assert body["recording_status"] == "AVAILABLE" and body["content_type"] == "audio/mp4"
    assert body["file_size_bytes"] == recs[0].size and body["duration_seconds"] == 2.0
    assert body["recording_start_time"] == recs[0].started_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert urlsplit(body["url"]).hostname == "localhost"  # the storage host, not the API's 127.0.0.1
    media = http.get(body["url"])
    assert media.content == recs[0].data and media.content[4:8] == b"ftyp"
    bare_uuid = recs[1].id.removeprefix("call_")
    assert http.get(f"{url}/{bare_uuid}/recording", headers=auth(sim, "envoy")).json()["call_id"] == recs[1].id
    assert sim.account("envoy")["allowed_media_hosts"] == [f"localhost:{sim.port}"]


def test_envoy_not_ready_missing_malformed_and_org(sim: Simulator, http: httpx.Client) -> None:
    waiting = sim.add("envoy", state="not_ready")[0]
    none = sim.add("envoy", state="no_recording")[0]
    video = sim.add("envoy", kind="mp4", seconds=1.0)[0]
    url = f"{sim.base_url('envoy')}/api/v1/calls"
    body = http.get(f"{url}/{waiting.id}/recording", headers=auth(sim, "envoy")).json()
    assert body["recording_status"] == "PROCESSING" and body["url"] is None
    sim.set_state("envoy", waiting.id, "not_ready", detail="pending")
    assert http.get(f"{url}/{waiting.id}/recording", headers=auth(sim, "envoy")).json()["recording_status"] == "PENDING"
    assert http.get(f"{url}/{none.id}/recording", headers=auth(sim, "envoy")).status_code == 404
    listed = {c["id"]: c["recording_status"] for c in envoy_pages(http, sim, 100)}
    assert listed == {waiting.id: "PENDING", none.id: "NOT_RECORDED", video.id: "AVAILABLE"}
    sim.set_state("envoy", none.id, "no_recording", detail="failed")
    assert http.get(f"{url}/{none.id}", headers=auth(sim, "envoy")).json()["recording_status"] == "FAILED"
    assert http.get(f"{url}/call_00000000-0000-0000-0000-000000000000/recording",
                    headers=auth(sim, "envoy")).status_code == 404
    assert http.get(f"{url}/not-an-id/recording", headers=auth(sim, "envoy")).status_code == 422
    assert http.get(f"{url}/{video.id}/recording", headers=auth(sim, "envoy")).json()["content_type"] == "video/mp4"
    assert http.get(f"{url}/{video.id}/recording").status_code == 401
    sim.set_option("envoy_organization_id", "org_1")
    assert sim.account("envoy")["organization_id"] == "org_1"
    assert http.get(url, headers={**auth(sim, "envoy"), "X-Organization-ID": "org_2"}).status_code == 403
    assert http.get(url, headers={**auth(sim, "envoy"), "X-Organization-ID": "org_1"}).status_code == 200
    assert http.get(url, headers=auth(sim, "envoy")).status_code == 200


# -- Siro ---------------------------------------------------------------------------------------------


SIRO_ITEM_KEYS = {"id", "organizationId", "userId", "title", "durationInMilliseconds", "latitude", "longitude",
                  "createdAt", "updatedAt", "links", "rootDataPurgedAt", "isProcessingDone",
                  "isEntityExtractionDone", "isSummaryDone"}  # docs.siro.ai "Get recordings", the example's keys


def siro_mint(http: httpx.Client, sim: Simulator, **body: Any) -> httpx.Response:
    account = sim.account("siro")
    values = {"clientSecret": sim.environ()[account["oauth_client_secret_env"]],
              "userId": account["oauth_user_id"], "scope": "read", **body}
    app = values.pop("app", account["oauth_client_id"])
    return http.post(f"{sim.base_url('siro')}/v1/core/oauth/apps/{app}/access-token", json=values,
                     headers=auth(sim, "siro"))


def siro_signed(http: httpx.Client, sim: Simulator, recording_id: str, token: str) -> httpx.Response:
    return http.post(f"{sim.media_api_url('siro')}/v1/core/recordings/{recording_id}/signedUrl",
                     headers={"x-siro-auth-token": token})


def test_siro_external_api_lists_the_public_shape(sim: Simulator, http: httpx.Client) -> None:
    audio = sim.add("siro", seconds=1.5)[0]
    video = sim.add("siro", kind="mp4", seconds=1.0)[0]
    waiting = sim.add("siro", state="not_ready")[0]
    gone = sim.add("siro", state="deleted")[0]
    url = f"{sim.base_url('siro')}/v1/core/recordings"
    page = http.get(url, params={"pageSize": 3}, headers=auth(sim, "siro")).json()
    assert set(page) == {"data", "cursor"} and page["cursor"]
    rest = http.get(url, params={"pageSize": 3, "cursor": page["cursor"]}, headers=auth(sim, "siro")).json()
    assert rest["cursor"] is None
    items = {i["id"]: i for i in page["data"] + rest["data"]}
    assert list(items) == [audio.id, video.id, waiting.id, gone.id]
    assert all(set(i) == SIRO_ITEM_KEYS for i in items.values())
    assert items[audio.id]["isProcessingDone"] is True and items[audio.id]["durationInMilliseconds"] == 1500
    assert items[audio.id]["rootDataPurgedAt"] is None and items[audio.id]["createdAt"].endswith("Z")
    assert items[waiting.id]["isProcessingDone"] is False
    assert items[gone.id]["rootDataPurgedAt"] is not None
    sim.set_state("siro", waiting.id, "not_ready", detail="queued")  # a status word no client knows
    single = http.get(f"{url}/{waiting.id}", headers=auth(sim, "siro")).json()
    assert single["id"] == waiting.id and single["isProcessingDone"] == "queued"  # unwrapped, as documented
    assert http.get(f"{url}/missing", headers=auth(sim, "siro")).status_code == 404
    assert http.get(url, params={"pageSize": 101}, headers=auth(sim, "siro")).status_code == 400
    assert http.get(url).status_code == 401
    since = {"updatedAt:gte": video.created_at.isoformat()}
    assert [i["id"] for i in http.get(url, params=since, headers=auth(sim, "siro")).json()["data"]] == [
        audio.id, video.id, waiting.id, gone.id]  # updated after creation: an earlier one's update counts
    since = {"createdAt:gte": video.created_at.isoformat()}
    assert [i["id"] for i in http.get(url, params=since, headers=auth(sim, "siro")).json()["data"]] == [
        video.id, waiting.id, gone.id]


def test_siro_mints_tokens_signs_on_the_gateway_and_serves_from_storage(sim: Simulator, http: httpx.Client) -> None:
    audio = sim.add("siro", seconds=1.5)[0]
    video = sim.add("siro", kind="mp4", seconds=1.0)[0]
    waiting = sim.add("siro", state="not_ready")[0]
    gone = sim.add("siro", state="deleted")[0]
    origins = {urlsplit(u).port for u in (sim.base_url("siro"), sim.media_api_url("siro"), sim.origin("siro-storage"))}
    assert len(origins) == 3  # three hosts, as at the vendor
    assert siro_mint(http, sim, clientSecret="wrong").status_code == 401
    assert siro_mint(http, sim, app="unknown-app").status_code == 404
    assert siro_mint(http, sim, userId="someone-else").status_code == 400
    assert siro_mint(http, sim, scope="admin").status_code == 400
    minted = siro_mint(http, sim).json()
    assert set(minted) == {"accessTokenId", "accessToken"}
    token = minted["accessToken"]
    assert siro_signed(http, sim, audio.id, "").status_code == 401
    assert siro_signed(http, sim, audio.id, sim.token("siro")).status_code == 401  # not the org token
    answer = siro_signed(http, sim, audio.id, token).json()["data"]
    signed = answer["signedUrl"]
    assert urlsplit(signed).port == urlsplit(sim.origin("siro-storage")).port and "Signature=" in signed
    assert datetime.fromisoformat(answer["expiresAt"].replace("Z", "+00:00")) > datetime.now(UTC)
    assert http.get(signed).content == audio.data
    assert http.get(signed.split("?")[0]).status_code == 403  # unsigned
    video_audio = http.get(siro_signed(http, sim, video.id, token).json()["data"]["signedUrl"]).content
    assert video_audio[8:12] == b"M4A " and video_audio != video.data  # the redacted audio of a video
    for rid in (waiting.id, gone.id, "missing"):
        assert siro_signed(http, sim, rid, token).status_code == 404
    detail = http.get(f"{sim.media_api_url('siro')}/v1/core/recordings/{gone.id}",
                      headers={"x-siro-auth-token": token}).json()["data"]
    assert detail["deleted"] is True and detail["dateCreated"].endswith("Z")  # document 004's record
    sim.expire_links("siro")
    assert http.get(signed).status_code == 403
    sim.advance_clock(16 * 3600 + 1)  # the token's 16 hours are over
    assert siro_signed(http, sim, audio.id, token).status_code == 401
    fresh = siro_mint(http, sim).json()["accessToken"]
    assert siro_signed(http, sim, audio.id, fresh).status_code == 200
    paths = {(r.path, r.kind) for r in sim.requests if r.vendor == "siro"}
    assert (f"/siro/v1/core/recordings/{audio.id}/signedUrl", "api") in paths
    assert (f"/siro/media/recordings/{audio.id}/redacted.m4a", "media") in paths


# -- media serving ------------------------------------------------------------------------------------


def test_range_etag_and_head(sim: Simulator, http: httpx.Client) -> None:
    rec = sim.add("envoy", seconds=3.0)[0]
    link = envoy_url(http, sim, rec.id)
    full = http.get(link)
    assert full.headers["content-length"] == str(rec.size) and full.headers["accept-ranges"] == "bytes"
    etag = full.headers["etag"]
    part = http.get(link, headers={"Range": "bytes=1000-"})
    assert part.status_code == 206 and part.content == rec.data[1000:]
    assert part.headers["content-range"] == f"bytes 1000-{rec.size - 1}/{rec.size}"
    assert http.get(link, headers={"Range": "bytes=10-19"}).content == rec.data[10:20]
    assert http.get(link, headers={"Range": f"bytes={rec.size}-"}).status_code == 416
    assert http.get(link, headers={"Range": "bytes=5-", "If-Range": '"other"'}).status_code == 200
    assert http.get(link, headers={"Range": "bytes=5-", "If-Range": etag}).status_code == 206
    head = http.head(link)
    assert head.status_code == 200 and head.headers["content-length"] == str(rec.size) and head.content == b""


def test_media_faults_that_replace_the_response(sim: Simulator, http: httpx.Client) -> None:
    rec = sim.add("convirza", seconds=1.0)[0]
    link = convirza_url(http, sim, rec.id)
    sim.set_fault("convirza", rec.id, "rate_limit", times=1, retry_after=7)
    limited = http.get(link)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
    assert http.get(link).content == rec.data  # times=1: then it behaves
    sim.set_fault("convirza", rec.id, "rate_limit", times=1, retry_after=30, http_date=True)
    when = email.utils.parsedate_to_datetime(http.get(link).headers["retry-after"])
    assert timedelta(seconds=20) < when - datetime.now(UTC) < timedelta(seconds=40)
    sim.set_fault("convirza", rec.id, "html200", times=1)
    page = http.get(link)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html") and b"<html" in page.content
    sim.set_fault("convirza", rec.id, "json200", times=1)
    assert http.get(link).json()["error"]
    sim.set_fault("convirza", rec.id, "empty200", times=1)
    empty = http.get(link)
    assert empty.status_code == 200 and empty.content == b""
    sim.set_fault("convirza", rec.id, "error500", times=1)
    assert http.get(link).status_code == 500
    sim.set_fault("convirza", rec.id, "expired", times=2)
    assert [http.get(link).status_code for _ in range(3)] == [410, 410, 200]
    sim.set_fault("convirza", rec.id, "redirect", times=1)
    moved = http.get(link)
    assert moved.status_code == 302 and moved.headers["location"].startswith(f"{sim.url}/convirza/media/")
    assert http.get(moved.headers["location"]).content == rec.data
    sim.set_fault("convirza", rec.id, "redirect", times=None)
    assert http.get(link, follow_redirects=True).content == rec.data  # the second hop is served
    sim.set_fault("convirza", rec.id, "redirect_foreign")
    assert http.get(link).headers["location"] == "http://169.254.169.254/latest/meta-data/"
    sim.clear_fault("convirza", rec.id)
    assert http.get(link).content == rec.data
    assert sim.media_requests(rec.id) == len([r for r in sim.requests if r.kind == "media"])


def test_media_faults_that_break_delivery(sim: Simulator, http: httpx.Client) -> None:
    rec = sim.add("envoy", seconds=4.0)[0]
    link = envoy_url(http, sim, rec.id)
    sim.set_fault("envoy", rec.id, "cut", at=5000)
    with pytest.raises(httpx.RemoteProtocolError):
        http.get(link)
    raw = raw_get(link)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert f"Content-Length: {rec.size}".encode() in head and body == rec.data[:5000]
    resumed = http.get(link, headers={"Range": "bytes=5000-"})  # a range past the cut is served whole
    assert body + resumed.content == rec.data
    sim.set_fault("envoy", rec.id, "slow", delay=0.001, chunk=4096)
    assert http.get(link).content == rec.data
    sim.set_fault("envoy", rec.id, "wrong_length", extra=10)
    with pytest.raises(httpx.RemoteProtocolError):
        http.get(link)
    sim.set_fault("envoy", rec.id, "giant_length")
    with http.stream("GET", link) as response:
        assert response.headers["content-length"] == str(10**13)
    sim.set_fault("envoy", rec.id, "endless")
    received = 0
    with http.stream("GET", link) as response:
        assert "content-length" not in response.headers
        for chunk in response.iter_bytes():
            received += len(chunk)
            if received > 2 * 1024 * 1024:
                break
    assert received > 2 * 1024 * 1024
    sim.set_fault("envoy", rec.id, "huge_headers")
    head = raw_get(link).partition(b"\r\n\r\n")[0]
    assert len(head) > 100_000
    sim.set_fault("envoy", rec.id, "foreign_url", times=1)
    assert urlsplit(envoy_url(http, sim, rec.id)).hostname == "127.0.0.2"
    assert urlsplit(envoy_url(http, sim, rec.id)).hostname == "localhost"


@pytest.mark.parametrize("vendor", ["convoso", "siro", "salesloft", "convirza"])
def test_foreign_url_fault_per_vendor(sim: Simulator, http: httpx.Client, vendor: str) -> None:
    rec = sim.add(vendor)[0]
    sim.set_fault(vendor, rec.id, "foreign_url", target_host="127.0.0.9")
    if vendor == "convoso":
        url = convoso_list(http, sim).json()["data"]["entries"][0]["url"]
    elif vendor == "siro":
        url = siro_signed(http, sim, rec.id, siro_mint(http, sim).json()["accessToken"]).json()["data"]["signedUrl"]
    elif vendor == "salesloft":
        href = f"{sim.base_url('salesloft')}/v2/recordings/{rec.extra['recording_id']}"
        url = http.get(href, headers=auth(sim, "salesloft")).json()["data"]["url"]
    else:
        url = convirza_url(http, sim, rec.id)
    port = urlsplit(sim.origin("siro-storage")).port if vendor == "siro" else sim.port
    assert urlsplit(url).hostname == "127.0.0.9" and urlsplit(url).port == port


def test_bad_field_fault_spoils_one_record_every_time(sim: Simulator, http: httpx.Client) -> None:
    good, bad = sim.add("envoy", 2, seconds=1.0)
    sim.set_fault("envoy", bad.id, "bad_field", field="call_start_time")
    for _ in range(2):  # the fault stays
        calls = {c["id"]: c for c in envoy_pages(http, sim, 100)}
        assert calls[bad.id]["call_start_time"] == BAD_VALUE and calls[good.id]["call_start_time"] != BAD_VALUE
    assert http.get(envoy_url(http, sim, bad.id)).content == bad.data  # its media is untouched
    [call] = sim.add("convirza", 1)
    sim.set_fault("convirza", call.id, "bad_field", field="recording_details.expires_at")
    details = convirza_list(http, sim, include="recordings").json()["data"]["calls"][0]["recording_details"]
    assert details["expires_at"] == BAD_VALUE and details["url"].startswith("http")


# -- API faults ---------------------------------------------------------------------------------------


def test_api_faults_rate_limit_error_auth_and_bodies(sim: Simulator, http: httpx.Client) -> None:
    sim.add("siro", 3)
    url = f"{sim.base_url('siro')}/v1/core/recordings"
    sim.set_api_fault("siro", "rate_limit", times=1, retry_after=3)
    limited = http.get(url, headers=auth(sim, "siro"))
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    sim.set_api_fault("siro", "error500", times=1)
    assert http.get(url, headers=auth(sim, "siro")).status_code == 500
    sim.set_api_fault("siro", "auth_fail", times=1)
    assert http.get(url, headers=auth(sim, "siro")).status_code == 401
    assert http.get(url, headers=auth(sim, "siro")).status_code == 200
    sim.set_api_fault("siro", "malformed_json", page=2)
    first = http.get(url, params={"pageSize": 2}, headers=auth(sim, "siro"))
    assert first.json()["cursor"]
    second = http.get(url, params={"pageSize": 2, "cursor": first.json()["cursor"]}, headers=auth(sim, "siro"))
    with pytest.raises(json.JSONDecodeError):
        json.loads(second.content)
    sim.set_api_fault("siro", "oversized_json", times=1)
    with http.stream("GET", url, headers=auth(sim, "siro")) as response:
        assert int(response.headers["content-length"]) > 40 * 1024 * 1024
        assert next(response.iter_bytes()).startswith(b'{"padding": "')
    sim.set_api_fault("siro", "string_numbers", times=1)
    page = http.get(url, headers=auth(sim, "siro")).json()
    assert page["data"][0]["durationInMilliseconds"] == "5000"
    assert http.get(url, headers=auth(sim, "siro")).json()["data"][0]["durationInMilliseconds"] == 5000


def test_api_rate_budget_per_token(sim: Simulator, http: httpx.Client) -> None:
    url = f"{sim.base_url('convirza')}/v3/conversations/calls"
    sim.set_rate_limit("convirza", 2, per=60)
    statuses = [http.get(url, params={"limit": 1}, headers=auth(sim, "convirza")).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    retry = http.get(url, params={"limit": 1}, headers=auth(sim, "convirza")).headers["retry-after"]
    assert 50 <= int(retry) <= 60
    sim.set_rate_limit("convirza", 1, per=60, retry_after=5, http_date=True)
    assert http.get(url, params={"limit": 1}, headers=auth(sim, "convirza")).status_code == 200
    assert email.utils.parsedate_to_datetime(
        http.get(url, params={"limit": 1}, headers=auth(sim, "convirza")).headers["retry-after"])
    sim.set_rate_limit("convirza", None)
    assert http.get(url, params={"limit": 1}, headers=auth(sim, "convirza")).status_code == 200


def test_convoso_and_convirza_string_numbers_and_inflated_total(sim: Simulator, http: httpx.Client) -> None:
    sim.add("convirza", 3)
    sim.add("convoso", 3)
    sim.set_api_fault("convirza", "string_numbers", times=1)
    call = convirza_list(http, sim, include="recordings").json()["data"]
    assert call["total"] == "3" and call["calls"][0]["call_id"].isdigit()
    assert isinstance(call["calls"][0]["recording_details"]["expires_at"], str)
    sim.set_api_fault("convoso", "string_numbers", times=1)
    entry = convoso_list(http, sim).json()["data"]["entries"][0]
    assert entry["recording_id"].isdigit() and entry["seconds"] == "5"
    sim.set_api_fault("convirza", "empty_page_nonzero_total")
    sim.set_api_fault("convoso", "empty_page_nonzero_total")
    tail = convirza_list(http, sim, limit=3, offset=3).json()["data"]
    assert tail["calls"] == [] and tail["total"] == 8
    tail = convoso_list(http, sim, limit=3, offset=3).json()["data"]
    assert tail["entries"] == [] and int(tail["total"]) > 3


def page_ids_convoso(http: httpx.Client, sim: Simulator, limit: int) -> list[int]:
    ids: list[int] = []
    offset = 0
    while True:
        data = convoso_list(http, sim, limit=limit, offset=offset).json()["data"]
        ids += [e["recording_id"] for e in data["entries"]]
        if not data["entries"] or offset + len(data["entries"]) >= int(data["total"]):
            return ids
        offset += limit


@pytest.mark.parametrize("count", [7, 8, 9])
def test_duplicates_across_pages_still_list_everything(sim: Simulator, http: httpx.Client, count: int) -> None:
    recs = sim.add("convoso", count, seconds=1.0)
    sim.set_api_fault("convoso", "duplicates_across_pages")
    ids = page_ids_convoso(http, sim, 4)
    assert len(ids) > len(set(ids)) and set(ids) == {int(r.id) for r in recs}


def test_duplicates_across_envoy_pages_and_inflated_total(sim: Simulator, http: httpx.Client) -> None:
    recs = sim.add("envoy", 5, seconds=1.0)
    sim.set_api_fault("envoy", "duplicates_across_pages")
    seen = [c["id"] for c in envoy_pages(http, sim, 2)]
    assert len(seen) > 5 and set(seen) == {r.id for r in recs}
    sim.clear_api_fault("envoy")
    sim.set_api_fault("envoy", "empty_page_nonzero_total", extra=5)
    tail = http.get(f"{sim.base_url('envoy')}/api/v1/calls", params={"page": 2, "page_size": 5},
                    headers=auth(sim, "envoy")).json()
    assert tail["data"] == [] and tail["pagination"]["total_count"] == 10 and tail["pagination"]["total_pages"] == 2


def test_insert_during_paging_shifts_offsets(sim: Simulator, http: httpx.Client) -> None:
    recs = sim.add("convoso", 6, seconds=1.0)
    sim.set_api_fault("convoso", "insert_during_paging", times=1, count=2)
    first_pass = page_ids_convoso(http, sim, 3)
    inserted = {int(r.id) for r in sim.recordings("convoso")} - {int(r.id) for r in recs}
    assert len(inserted) == 2
    assert set(first_pass) == {int(r.id) for r in recs}  # the inserted ones were skipped by the shift
    assert len(first_pass) == 8  # and two old ones were listed twice
    assert set(page_ids_convoso(http, sim, 3)) == {int(r.id) for r in sim.recordings("convoso")}


# -- control API, accounts, demo ----------------------------------------------------------------------


def test_control_endpoints(sim: Simulator, http: httpx.Client) -> None:
    added = http.post(f"{sim.url}/_sim/add", json={"vendor": "envoy", "count": 2, "seconds": 1.0}).json()
    assert len(added) == 2 and added[0]["ext"] == "m4a" and len(added[0]["sha256"]) == 64
    listed = http.get(f"{sim.url}/_sim/recordings", params={"vendor": "envoy"}).json()
    assert [r["id"] for r in listed] == [r["id"] for r in added]
    assert listed[0]["sha256"] == sim.get("envoy", listed[0]["id"]).sha256
    assert set(listed[0]) >= {"id", "vendor", "sha256", "size", "ext", "state", "started_at"}
    first = added[0]["id"]
    assert http.post(f"{sim.url}/_sim/fault", json={"vendor": "envoy", "id": first, "fault": "error500",
                                                      "times": 1}).status_code == 200
    assert http.get(envoy_url(http, sim, first)).status_code == 500
    http.post(f"{sim.url}/_sim/state", json={"vendor": "envoy", "id": first, "state": "not_ready"})
    assert sim.get("envoy", first).state == "not_ready"
    http.post(f"{sim.url}/_sim/api_fault", json={"vendor": "envoy", "fault": "error500", "times": 1})
    assert http.get(f"{sim.base_url('envoy')}/api/v1/calls", headers=auth(sim, "envoy")).status_code == 500
    log = http.get(f"{sim.url}/_sim/requests").json()
    assert {"time", "vendor", "method", "path", "status", "kind"} <= set(log[0])
    assert all(entry["vendor"] != "_sim" for entry in log)
    accounts = http.get(f"{sim.url}/_sim/accounts").json()
    assert [a["name"] for a in accounts["accounts"]] == [f"sim-{v}" for v in VENDORS] + ["sim-convoso-all"]
    assert "lead_ids" not in accounts["accounts"][-1] and set(accounts["environ"]) == set(sim.environ())
    bogus = {"vendor": "envoy", "id": first, "fault": "bogus"}
    assert http.post(f"{sim.url}/_sim/fault", json=bogus).status_code == 400
    assert http.post(f"{sim.url}/_sim/add", content=b"[1]").status_code == 400
    assert http.get(f"{sim.url}/_sim/nope").status_code == 404


def test_request_log_never_holds_queries(sim: Simulator, http: httpx.Client) -> None:
    sim.add("convoso")
    convoso_list(http, sim)
    assert sim.requests[-1].path == "/convoso/v1/lead/get-recordings" and sim.requests[-1].kind == "api"
    assert all("?" not in r.path and sim.token("convoso") not in r.path for r in sim.requests)
    sim.clear_requests()
    assert sim.requests == []


def test_accounts_are_valid_config(sim: Simulator, tmp_path: Path) -> None:
    for vendor in VENDORS:
        sim.add(vendor)
    accounts = [sim.account(vendor) for vendor in VENDORS]
    settings = settings_from_mapping({"storage": {"url": str(tmp_path)}, "accounts": accounts}, sim.environ())
    convoso = settings.account("sim-convoso")
    assert convoso.lead_ids == ["270"] and convoso.timezone == "America/New_York"
    assert convoso.media_base_url == f"{sim.url}/convoso/recordings/"
    siro = settings.account("sim-siro")
    assert siro.media_base_url is None and siro.media_api_url == sim.media_api_url("siro") != siro.base_url
    assert siro.oauth_client_secret.get_secret_value() == sim.environ()[siro.oauth_client_secret_env or ""]
    assert settings.account("sim-envoy").token.get_secret_value() == sim.token("envoy")
    earliest = min(r.started_at for r in sim.recordings("convirza"))
    assert settings.account("sim-convirza").start == earliest - timedelta(days=1)
    assert sim.account("siro", name="x", start="2026-01-01T00:00:00Z")["start"] == "2026-01-01T00:00:00Z"
    whole = settings_from_mapping({"storage": {"url": str(tmp_path)}, "accounts": [
        sim.account("convoso", name="all", lead_ids=None, media_base_url=None)]}, sim.environ()).account("all")
    assert whole.lead_ids is None and whole.media_base_url is None and whole.timezone == "America/New_York"
    for vendor in ("envoy", "salesloft"):
        assert settings.account(f"sim-{vendor}").allowed_media_hosts == [f"localhost:{sim.port}"]


def test_demo_dataset_mix(demo_sim: Simulator) -> None:
    kinds = {vendor: {r.kind for r in demo_sim.recordings(vendor)} for vendor in VENDORS}
    assert kinds == {"convirza": {"wav", "mp3"}, "convoso": {"wav"}, "salesloft": {"mp3", "mp4"},
                     "envoy": {"m4a", "mp4"}, "siro": {"m4a", "mp4"}}
    states = {vendor: sorted(r.state for r in demo_sim.recordings(vendor) if r.state != "ready") for vendor in VENDORS}
    assert states == {"convirza": ["no_recording"], "convoso": [], "salesloft": ["not_ready"],
                      "envoy": ["not_ready"], "siro": ["deleted", "not_ready"]}
    now = datetime.now(UTC)
    for vendor in VENDORS:
        recs = demo_sim.recordings(vendor)
        assert 8 <= len(recs) <= 12
        assert all(now - timedelta(days=3) <= r.started_at < now for r in recs)
        assert len({r.sha256 for r in recs}) == len(recs)
        assert all(sniff_kind(r.data[:16]) == r.kind for r in recs)
    assert max(r.seconds for r in demo_sim.recordings("convirza")) >= 100


def test_serve_output_lists_vendors(capsys: pytest.CaptureFixture[str]) -> None:
    stop = threading.Event()
    stop.set()  # serve announces, then returns at once
    serve(port=0, dataset="empty", stop=stop)
    out = capsys.readouterr().out
    for vendor in VENDORS:
        assert "base_url=http://127.0.0.1:" in out and f"/{vendor} " in out
    assert "SIM_CONVOSO_TOKEN" in out and "media_base_url=" in out and "sim-convoso-all " in out
    assert Simulator().token("convoso") not in out


def test_replace_media_changes_the_served_bytes(sim: Simulator, http: httpx.Client) -> None:
    rec = sim.add("envoy", seconds=1.0)[0]
    before = rec.sha256
    sim.replace_media("envoy", rec.id, kind="mp4")
    assert rec.sha256 != before and rec.kind == "mp4"
    body = http.get(f"{sim.base_url('envoy')}/api/v1/calls/{rec.id}/recording", headers=auth(sim, "envoy")).json()
    assert body["content_type"] == "video/mp4" and body["file_size_bytes"] == rec.size
    assert hashlib.sha256(http.get(body["url"]).content).hexdigest() == rec.sha256


def test_sim_env_sets_every_token(sim_env: Simulator) -> None:
    import os

    for vendor in VENDORS:
        assert os.environ[sim_env.token_env(vendor)] == sim_env.token(vendor)
