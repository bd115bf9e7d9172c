"""Salesloft provider against a MockTransport: page-number paging, both answer shapes, recording refs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

import providers.salesloft as salesloft_module
from providers._http import VendorClient
from providers.base import Readiness, Window
from providers.salesloft import SalesloftProvider
from tests._provider_mock import TOKEN, assert_clean, assert_no_query, build, make_account, raw_reply, reply, utc
from tests.fixtures.vendor_pages import SALESLOFT_CONVERSATIONS
from worker.errors import AuthError, BadVendorData, NoRecording, NotReady, UnsafeURL

__all__ = ["build"]

BASE = "https://api.salesloft.com/sl"
WINDOW = Window(utc(2025, 2, 13), utc(2025, 2, 14))


def conversation(cid: Any, created: str = "2025-02-13T22:11:57.792Z", *, recording: Any = "ref",
                 **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"id": cid, "duration": 61500, "platform": "zoom", "media_type": "audio",
                              "created_at": created, "updated_at": created, **extra}
    if recording == "ref":
        record["recording"] = {"id": f"rec-{cid}", "_href": f"{BASE}/v2/recordings/rec-{cid}"}
    elif recording != "missing":
        record["recording"] = recording
    return record


def envelope(items: list[Any], next_page: Any) -> dict[str, Any]:
    return {"data": items, "metadata": {"paging": {"per_page": 100, "current_page": 1, "next_page": next_page,
                                                   "prev_page": None}}}


def account(**extra: Any) -> Any:
    return make_account("salesloft", BASE, **extra)


def test_list_sends_the_documented_params(build: Any) -> None:
    h = build(SalesloftProvider, account(), lambda r: reply(envelope([conversation("c1")], None)))
    assert [r.recording_id for r in h.provider.list_recordings(WINDOW)] == ["c1"]
    assert h.paths() == ["/sl/v2/conversations"]
    assert h.params(0) == {"created_at[gte]": "2025-02-13T00:00:00Z", "created_at[lt]": "2025-02-14T00:00:00Z",
                           "sort_by": "created_at", "sort_direction": "ASC", "per_page": "100", "page": "1"}
    assert h.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_fields(build: Any) -> None:
    items = [conversation("a", event_start_date="2025-02-13T21:00:00Z"),
             conversation("b", "2025-02-13T10:00:00Z", recording=None, duration="1500", media_type="video"),
             conversation("c", "2025-02-13T11:00:00Z", recording="missing", duration=None)]
    h = build(SalesloftProvider, account(), lambda r: reply(envelope(items, None)))
    found = {r.recording_id: r for r in h.provider.list_recordings(WINDOW)}
    assert found["a"].started_at == datetime(2025, 2, 13, 21, tzinfo=UTC)
    assert found["a"].listed_at == datetime(2025, 2, 13, 22, 11, 57, 792000, tzinfo=UTC)
    assert found["a"].vendor_duration_seconds == 61.5
    assert found["a"].readiness is Readiness.READY and found["a"].is_video is False
    assert found["b"].started_at == found["b"].listed_at == datetime(2025, 2, 13, 10, tzinfo=UTC)
    # no recording reference on a conversation older than no_recording_after (24 h): none, final
    assert found["b"].readiness is Readiness.NO_RECORDING and found["b"].is_video is True
    assert found["b"].vendor_duration_seconds == 1.5
    assert found["c"].readiness is Readiness.NO_RECORDING and found["c"].vendor_duration_seconds is None
    for recording in found.values():
        assert_no_query(recording.source)


def test_envelope_paging_follows_next_page(build: Any) -> None:
    pages = {1: envelope([conversation(i) for i in range(100)], 2),
             2: envelope([conversation(i) for i in range(100, 150)], None)}
    h = build(SalesloftProvider, account(), lambda r: reply(pages[int(r.url.params["page"])]))
    ids = [r.recording_id for r in h.provider.list_recordings(WINDOW)]
    assert len(ids) == len(set(ids)) == 150
    assert [h.params(i)["page"] for i in range(len(h.requests))] == ["1", "2"]


def test_a_shifted_listing_is_run_once_more(build: Any) -> None:
    data = [conversation(i, f"2025-02-13T10:{i // 60:02d}:{i % 60:02d}Z") for i in range(150)]

    def handler(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["page"])
        chunk = data[(number - 1) * 100:number * 100]
        answer = reply(envelope(chunk, number + 1 if number * 100 < len(data) else None))
        if len(data) == 150:  # created right after the first one while we page: the rest shift by one
            data.insert(1, conversation("late", "2025-02-13T10:00:00Z"))
        return answer

    h = build(SalesloftProvider, account(), handler)
    ids = [r.recording_id for r in h.provider.list_recordings(WINDOW)]
    assert "late" in ids and len(ids) == len(set(ids)) == 151
    assert [h.params(i)["page"] for i in range(len(h.requests))] == ["1", "2", "1", "2"]


def test_empty_page_stops_despite_next_page(build: Any) -> None:
    h = build(SalesloftProvider, account(), lambda r: reply(envelope([], 7)))
    assert list(h.provider.list_recordings(WINDOW)) == []
    assert len(h.requests) == 1


def test_same_next_page_twice_is_bad_vendor_data(build: Any) -> None:
    h = build(SalesloftProvider, account(), lambda r: reply(envelope([conversation(r.url.params["page"])], 2)))
    with pytest.raises(BadVendorData) as info:
        list(h.provider.list_recordings(WINDOW))
    assert "same page token" in str(info.value)


@pytest.mark.parametrize(("sizes", "requests"), [([100, 100, 3], 3), ([100, 0], 2), ([42], 1), ([0], 1)])
def test_bare_array_pages_until_a_short_page(build: Any, sizes: list[int], requests: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["page"])
        return reply([conversation(f"{number}-{i}") for i in range(sizes[number - 1])])

    h = build(SalesloftProvider, account(), handler)
    assert len(list(h.provider.list_recordings(WINDOW))) == sum(sizes)
    assert len(h.requests) == requests


def test_window_edges(build: Any) -> None:
    items = [conversation("before", "2025-02-12T23:59:59.999Z"), conversation("since", "2025-02-13T00:00:00Z"),
             conversation("until", "2025-02-14T00:00:00Z")]
    h = build(SalesloftProvider, account(), lambda r: reply(envelope(items, None)))
    assert [r.recording_id for r in h.provider.list_recordings(WINDOW)] == ["since"]


def _listed(build: Any, href_handler: Any) -> tuple[Any, Any]:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/v2/conversations"):
            return reply(envelope([conversation("c1")], None))
        return href_handler(request)

    h = build(SalesloftProvider, account(), handler)
    return h, next(iter(h.provider.list_recordings(WINDOW)))


def test_recording_ref_as_json_data_url(build: Any) -> None:
    h, recording = _listed(build, lambda r: reply({"data": {"url": "https://media.example.com/a.mp4?sig=1",
                                                            "expires_at": "2025-02-14T00:00:00Z"}}))
    link = h.provider.resolve_media(recording)
    assert link.url == "https://media.example.com/a.mp4?sig=1"
    assert link.expires_at == datetime(2025, 2, 14, tzinfo=UTC)
    assert dict(link.headers) == {}
    assert h.requests[-1].url.path == "/sl/v2/recordings/rec-c1"
    assert h.requests[-1].headers["Authorization"] == f"Bearer {TOKEN}"


def test_recording_ref_as_json_top_level_url(build: Any) -> None:
    h, recording = _listed(build, lambda r: reply({"url": "https://media.example.com/b.wav"}))
    assert h.provider.resolve_media(recording).url == "https://media.example.com/b.wav"


def test_recording_ref_as_redirect(build: Any) -> None:
    h, recording = _listed(build, lambda r: httpx.Response(302, headers={"Location": "/files/c1.mp3?x=1"}))
    link = h.provider.resolve_media(recording)
    assert link.url == "https://api.salesloft.com/files/c1.mp3?x=1"
    assert dict(link.headers) == {}


def test_recording_ref_serving_the_bytes_keeps_the_auth_for_the_downloader(build: Any) -> None:
    h, recording = _listed(build, lambda r: raw_reply(b"ID3" + b"\0" * 5000, content_type="audio/mpeg"))
    link = h.provider.resolve_media(recording)
    assert link.url == f"{BASE}/v2/recordings/rec-c1"
    assert dict(link.headers)["Authorization"] == f"Bearer {TOKEN}"
    assert link.content_type == "audio/mpeg"


def test_recording_ref_on_another_host_is_refused_without_a_request(build: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/v2/conversations"):
            ref = {"id": "r", "_href": "https://elsewhere.example.com/r?x=1"}
            return reply(envelope([conversation("c1", recording=ref)], None))
        return reply({"url": "https://media.example.com/c.wav"})

    h = build(SalesloftProvider, account(), handler)
    recording = next(iter(h.provider.list_recordings(WINDOW)))
    with pytest.raises(UnsafeURL) as info:
        h.provider.resolve_media(recording)
    assert_clean(info.value)
    assert "x=1" not in str(info.value)
    assert len(h.requests) == 1


@pytest.mark.parametrize(("response", "error"), [
    (lambda: reply({"error": "gone"}, 404), NoRecording),
    (lambda: reply({"error": "no"}, 401), AuthError),
    (lambda: httpx.Response(302), BadVendorData),
    (lambda: reply({"data": {"status": "ok"}}), BadVendorData),
    (lambda: raw_reply(b"<html></html>"), BadVendorData),
])
def test_recording_ref_failures(build: Any, response: Any, error: type[Exception]) -> None:
    h, recording = _listed(build, lambda r: response())
    with pytest.raises(error) as info:
        h.provider.resolve_media(recording)
    assert_clean(info.value)


def test_not_ready_conversation_is_reread_before_resolving(build: Any) -> None:
    state = {"recording": None}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/sl/v2/conversations":
            return reply(envelope([conversation("c1", recording=None)], None))
        if request.url.path == "/sl/v2/conversations/c1":
            return reply({"data": conversation("c1", recording=state["recording"])})
        return reply({"url": "https://media.example.com/late.wav"})

    h = build(SalesloftProvider, account(), handler)
    recording = next(iter(h.provider.list_recordings(WINDOW)))
    with pytest.raises(NotReady):
        h.provider.resolve_media(recording)
    state["recording"] = {"id": "r", "_href": f"{BASE}/v2/recordings/r"}
    assert h.provider.resolve_media(recording).url == "https://media.example.com/late.wav"


def test_get_recording(build: Any) -> None:
    h = build(SalesloftProvider, account(), lambda r: reply({"data": conversation("c/2")}))
    assert h.provider.get_recording("c/2").recording_id == "c/2"
    assert h.requests[0].url.raw_path.decode() == "/sl/v2/conversations/c%2F2"
    h404 = build(SalesloftProvider, account(), lambda r: reply({}, 404))
    with pytest.raises(NoRecording):
        h404.provider.get_recording("x")


@pytest.mark.parametrize(("body", "field"), [
    (envelope([{"created_at": "2025-02-13T01:00:00Z"}], None), "id"),
    (envelope(["a conversation"], None), "salesloft conversation"),
    ({"data": "x"}, "data"),
    ("conversations", "response"),
    (envelope([conversation("a")], "next"), "next page"),
])
def test_malformed_answers(build: Any, body: Any, field: str) -> None:
    h = build(SalesloftProvider, account(), lambda r: reply(body))
    with pytest.raises(BadVendorData) as info:
        list(h.provider.list_recordings(WINDOW))
    assert field in str(info.value)
    assert_clean(info.value)


def test_http_401_is_auth_error_without_the_token(build: Any) -> None:
    h = build(SalesloftProvider, account(), lambda r: reply({"error": TOKEN}, 401))
    with pytest.raises(AuthError) as info:
        list(h.provider.list_recordings(WINDOW))
    assert_clean(info.value)
    assert SalesloftProvider.listing_sorted is True and SalesloftProvider.default_rate_limit == 2.0
    assert h.provider.media_hosts() == ["*.salesloft.com", "*.amazonaws.com", "*.cloudfront.net",
                                        "storage.googleapis.com"]


@pytest.mark.parametrize(("bad", "field"), [
    ({"created_at": "yesterday"}, "created_at"),
    ({"event_start_date": "soon"}, "event_start_date"),
    ({"recording": "r1"}, "recording"),
    ({"duration": "long"}, "duration"),
])
def test_one_bad_conversation_is_invalid_the_others_are_listed(build: Any, bad: dict[str, Any], field: str) -> None:
    items = [conversation("a", "2025-02-13T01:00:00Z"), {**conversation("b", "2025-02-13T02:00:00Z"), **bad},
             conversation("c", "2025-02-13T03:00:00Z")]
    h = build(SalesloftProvider, account(), lambda r: reply(envelope(items, None)))
    found = {r.recording_id: r for r in h.provider.list_recordings(WINDOW)}
    assert sorted(found) == ["a", "b", "c"]
    assert found["b"].readiness is Readiness.INVALID and field in (found["b"].problem or "")
    assert WINDOW.contains(found["b"].listed_at)
    assert found["a"].readiness is found["c"].readiness is Readiness.READY


def test_a_recent_conversation_without_a_recording_is_not_ready(build: Any) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    recent = (now - timedelta(hours=2)).isoformat()
    h = build(SalesloftProvider, account(), lambda r: reply(envelope([conversation("n", recent, recording=None)],
                                                                     None)))
    [found] = h.provider.list_recordings(Window(now - timedelta(days=1), now))
    assert found.readiness is Readiness.NOT_READY
    h = build(SalesloftProvider, account(no_recording_after="1h"),
              lambda r: reply(envelope([conversation("n", recent, recording=None)], None)))
    [found] = h.provider.list_recordings(Window(now - timedelta(days=1), now))
    assert found.readiness is Readiness.NO_RECORDING


@pytest.mark.parametrize("body", [
    {"data": {"recording_url": "https://media.example.com/r.mp3"}},
    {"recording_url": "https://media.example.com/r.mp3"},
    {"download_url": "https://media.example.com/r.mp3"},
    {"data": {"download_url": "https://media.example.com/r.mp3", "id": "x"}},
    {"data": {"id": "x"}, "url": "https://media.example.com/r.mp3"},
])
def test_recording_url_in_every_listed_field(build: Any, body: dict[str, Any]) -> None:
    h, recording = _listed(build, lambda r: reply(body))
    assert h.provider.resolve_media(recording).url == "https://media.example.com/r.mp3"


def test_a_403_on_the_recording_names_the_missing_permission(build: Any) -> None:
    h, recording = _listed(build, lambda r: reply({"error": f"Forbidden {TOKEN}"}, 403))
    with pytest.raises(AuthError) as info:
        h.provider.resolve_media(recording)
    assert "Download Conversations" in str(info.value)
    assert_clean(info.value)


def test_a_recording_reference_without_href_uses_the_documented_path(build: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/sl/v2/conversations":
            return reply(envelope([conversation("c1", recording={"id": "r9"})], None))
        return reply({"url": "https://media.example.com/r9.mp3"})

    h = build(SalesloftProvider, account(), handler)
    recording = next(iter(h.provider.list_recordings(WINDOW)))
    assert h.provider.resolve_media(recording).url == "https://media.example.com/r9.mp3"
    assert h.requests[-1].url.path == "/sl/v2/conversations/c1/recording"
    assert h.requests[-1].headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize("href", [
    "http://api.salesloft.com/sl/v2/conversations/c1/recording",  # same host, plain http
    "https://api.salesloft.com:8443/sl/v2/conversations/c1/recording",  # same host, another port
    "https://api.salesloft.com.evil.example/sl/r",
])
def test_the_token_goes_to_the_exact_api_origin_only(build: Any, href: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/sl/v2/conversations":
            return reply(envelope([conversation("c1", recording={"id": "r", "_href": href})], None))
        raise AssertionError(f"{request.url} must not be requested")

    h = build(SalesloftProvider, account(), handler)
    recording = next(iter(h.provider.list_recordings(WINDOW)))
    with pytest.raises(UnsafeURL):
        h.provider.resolve_media(recording)
    assert len(h.requests) == 1


def test_exact_origin_rules_of_the_client() -> None:
    client = VendorClient("https://api.salesloft.com/sl", http=httpx.Client(), auth_headers={"A": "b"})
    try:
        assert client.is_api_host("https://api.salesloft.com/x")
        assert client.is_api_host("https://API.salesloft.com:443/x")
        assert not client.is_api_host("http://api.salesloft.com/x")
        assert not client.is_api_host("http://api.salesloft.com:443/x")
        assert not client.is_api_host("https://api.salesloft.com:444/x")
        assert client.auth_headers_for("http://api.salesloft.com/x") == {}
        plain = VendorClient("http://127.0.0.1:8080/salesloft", http=client.http)
        assert plain.is_api_host("http://127.0.0.1:8080/salesloft/v2") and not plain.is_api_host(
            "https://127.0.0.1:8080/salesloft/v2")
    finally:
        client.http.close()


class PauseRecorder:
    def __init__(self) -> None:
        self.pauses: list[float] = []

    def acquire(self) -> None:
        return None

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)


@pytest.mark.parametrize(("remaining", "expected"), [("600", []), ("101", []), ("100", [60 / 101]),
                                                     ("9", [6.0]), ("0", [60.0]), ("junk", [])])
def test_slows_down_as_the_shared_minute_budget_runs_low(build: Any, remaining: str,
                                                         expected: list[float]) -> None:
    h = build(SalesloftProvider, account(), lambda r: reply(envelope([conversation("a")], None), headers={
        "x-ratelimit-remaining-minute": remaining, "x-ratelimit-endpoint-cost": "1"}))
    h.client.limiter = recorder = PauseRecorder()
    list(h.provider.list_recordings(WINDOW))
    assert recorder.pauses == pytest.approx(expected)


def test_page_numbers_stay_low_by_moving_created_at_forward(build: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(salesloft_module, "RESTART_AFTER_PAGE", 2)
    # 10 conversations, two per second, so the restart point is shared by two of them
    data = [conversation(f"c{i}", f"2025-02-13T10:00:{i // 2:02d}.000Z") for i in range(10)]

    def handler(request: httpx.Request) -> httpx.Response:
        since = datetime.fromisoformat(request.url.params["created_at[gte]"].replace("Z", "+00:00"))
        matching = [c for c in data if datetime.fromisoformat(c["created_at"].replace("Z", "+00:00")) >= since]
        number = int(request.url.params["page"])
        chunk = matching[(number - 1) * 3:number * 3]
        return reply(envelope(chunk, number + 1 if number * 3 < len(matching) else None))

    h = build(SalesloftProvider, account(), handler)
    ids = [r.recording_id for r in h.provider.list_recordings(WINDOW)]
    assert ids == [f"c{i}" for i in range(10)]
    pages = [(h.params(i)["created_at[gte]"], h.params(i)["page"]) for i in range(len(h.requests))]
    assert max(int(number) for _, number in pages) == 2
    assert pages[:3] == [("2025-02-13T00:00:00Z", "1"), ("2025-02-13T00:00:00Z", "2"),
                         ("2025-02-13T10:00:02Z", "1")]


def test_a_page_sharing_one_created_at_pages_on_instead_of_restarting(build: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(salesloft_module, "RESTART_AFTER_PAGE", 1)
    data = [conversation(f"c{i}", "2025-02-13T00:00:00.000Z") for i in range(5)]  # all at the window's since

    def handler(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["page"])
        return reply(envelope(data[(number - 1) * 2:number * 2], number + 1 if number * 2 < len(data) else None))

    h = build(SalesloftProvider, account(), handler)
    assert [r.recording_id for r in h.provider.list_recordings(WINDOW)] == [f"c{i}" for i in range(5)]
    assert [h.params(i)["page"] for i in range(len(h.requests))] == ["1", "2", "3"]


def test_the_public_pages_example_parses(build: Any) -> None:
    """"Fetch conversations": the document's example (a bare array) is one ready conversation."""
    h = build(SalesloftProvider, account(), lambda r: reply(SALESLOFT_CONVERSATIONS))
    [found] = h.provider.list_recordings(Window(utc(2025, 2, 13), utc(2025, 2, 14)))
    assert found.recording_id == "3fa85f64-5717-4562-b3fc-2c963f66afa6" and found.readiness is Readiness.READY
    assert found.started_at == found.listed_at == datetime(2025, 2, 13, 22, 11, 57, 792000, tzinfo=UTC)
    assert found.vendor_duration_seconds == 0.0 and found.is_video is False
    assert found.hint["href"] == "string"  # resolved against base_url: on the API origin
    assert len(h.requests) == 1  # a short bare page is the last
