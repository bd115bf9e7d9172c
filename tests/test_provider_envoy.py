"""Envoy provider against a MockTransport: page-based listing with whole-day dates, case-insensitive
statuses, the recording endpoint's answers, and the public pages' examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from providers.base import Readiness, Window
from providers.envoy import EnvoyProvider
from tests._provider_mock import TOKEN, assert_clean, assert_no_query, build, make_account, raw_reply, reply, utc
from tests.fixtures.vendor_pages import (
    ENVOY_CALL,
    ENVOY_CALLS,
    ENVOY_LOAD_CALL,
    ENVOY_PAGINATION_GUIDE,
    ENVOY_RECORDING,
)
from worker.errors import AccountError, AuthError, BadVendorData, NoRecording, NotReady, PermanentError

__all__ = ["build"]

BASE = "https://tryenvoy.ai/envoy"
CALL = "call_00000000-0000-0000-0000-000000000001"
WINDOW = Window(utc(2024, 1, 15), utc(2024, 1, 16))
OLD = "2024-01-15T09:00:00Z"  # older than no_recording_after: "no recording" is final


def listed(cid: str = CALL, created: str = OLD, **extra: Any) -> dict[str, Any]:
    return {"id": cid, "created_at": created, "status": "COMPLETED", "call_start_time": created,
            "recording_status": "AVAILABLE", **extra}


def page(items: list[Any], number: int = 1, pages: int = 1, **extra: Any) -> dict[str, Any]:
    return {"data": items, "pagination": {"page": number, "page_size": 100, "total_count": len(items),
                                          "total_pages": pages, "has_next": number < pages,
                                          "has_prev": number > 1, **extra}}


def recording(status: str = "AVAILABLE", **extra: Any) -> dict[str, Any]:
    return {"call_id": CALL, "url": "https://envoy-media.s3.amazonaws.com/r/1.m4a?X-Amz-Signature=abc",
            "content_type": "audio/mp4", "expires_at": "2024-01-15T10:30:00Z", "recording_status": status,
            "duration_seconds": 61.5, "file_size_bytes": 123456, "recording_start_time": "2024-01-15T09:30:00Z",
            **extra}


def account(**extra: Any) -> Any:
    return make_account("envoy", BASE, **extra)


def test_list_params_are_whole_days_a_day_wider_and_pages_from_one(build: Any) -> None:
    pages = {"1": page([listed("call_a")], 1, 2), "2": page([listed("call_b")], 2, 2)}
    h = build(EnvoyProvider, account(organization_id="org-9"), lambda r: reply(pages[r.url.params["page"]]))
    assert [r.recording_id for r in h.provider.list_recordings(WINDOW)] == ["call_a", "call_b"]
    assert h.paths() == ["/envoy/api/v1/calls"] * 2
    assert h.params(0) == {"start_date": "2024-01-14", "end_date": "2024-01-17", "page_size": "100", "page": "1"}
    assert h.params(1)["page"] == "2"
    assert h.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert h.requests[0].headers["X-Organization-ID"] == "org-9"


def test_no_org_header_without_organization_id() -> None:
    headers, params = EnvoyProvider.client_auth(account())
    assert headers == {"Authorization": f"Bearer {TOKEN}"} and params == {}


def test_stops_at_total_pages_even_if_has_next_says_more(build: Any) -> None:
    h = build(EnvoyProvider, account(), lambda r: reply(page([listed()], 1, 1, has_next=True)))
    assert len(list(h.provider.list_recordings(WINDOW))) == 1 and len(h.requests) == 1


def test_stops_when_has_next_is_false_or_a_page_is_empty(build: Any) -> None:
    h = build(EnvoyProvider, account(), lambda r: reply(page([listed()], 1, 5, has_next=False)))
    list(h.provider.list_recordings(WINDOW))
    assert len(h.requests) == 1
    answers = {"1": page([listed("a")], 1, 9, total_count=801), "2": page([], 2, 9, total_count=801)}
    h = build(EnvoyProvider, account(), lambda r: reply(answers[r.url.params["page"]]))
    assert [r.recording_id for r in h.provider.list_recordings(WINDOW)] == ["a"]
    assert len(h.requests) == 2


def test_only_the_window_is_kept_from_the_wider_days(build: Any) -> None:
    items = [listed("early", "2024-01-14T23:59:59.500Z"), listed("since", "2024-01-15T00:00:00Z"),
             listed("inside", "2024-01-15T12:00:00Z"), listed("until", "2024-01-16T00:00:00Z")]
    h = build(EnvoyProvider, account(), lambda r: reply(page(items)))
    assert [r.recording_id for r in h.provider.list_recordings(WINDOW)] == ["since", "inside"]


@pytest.mark.parametrize("status", ["AVAILABLE", "available", "Completed", "COMPLETE", "ready"])
def test_ready_statuses_in_any_case(build: Any, status: str) -> None:
    h = build(EnvoyProvider, account(), lambda r: reply(page([listed(recording_status=status)])))
    [found] = h.provider.list_recordings(WINDOW)
    assert found.readiness is Readiness.READY and found.unknown_status is None


@pytest.mark.parametrize("status", ["FAILED", "none", "NOT_RECORDED"])
def test_no_recording_is_final_only_when_old_enough(build: Any, status: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    window = Window(now - timedelta(days=2), now)
    old, recent = (now - timedelta(hours=30)).isoformat(), (now - timedelta(hours=1)).isoformat()
    items = [listed("old", old, recording_status=status), listed("new", recent, recording_status=status)]
    h = build(EnvoyProvider, account(), lambda r: reply(page(items)))
    found = {r.recording_id: r for r in h.provider.list_recordings(window)}
    assert found["old"].readiness is Readiness.NO_RECORDING and found["new"].readiness is Readiness.NOT_READY
    assert found["new"].unknown_status is None
    h = build(EnvoyProvider, account(no_recording_after="30m"), lambda r: reply(page(items)))
    assert {r.readiness for r in h.provider.list_recordings(window)} == {Readiness.NO_RECORDING}


@pytest.mark.parametrize("status", ["PROCESSING", "uploading", "string"])
def test_any_other_status_is_not_ready_and_named(build: Any, status: str) -> None:
    h = build(EnvoyProvider, account(), lambda r: reply(page([listed(recording_status=status)])))
    [found] = h.provider.list_recordings(WINDOW)
    assert found.readiness is Readiness.NOT_READY and found.unknown_status == status


def test_start_time_fallbacks_and_duration(build: Any) -> None:
    items = [listed("a", call_start_time="2024-01-15T08:59:00Z", call_end_time="2024-01-15T09:01:30Z"),
             listed("b", call_start_time=None, recording_start_time="2024-01-15T08:58:00Z"),
             listed("c", call_start_time=None, duration_seconds="12.5", content_type="video/mp4"),
             listed("d", recording_status=None)]
    h = build(EnvoyProvider, account(), lambda r: reply(page(items)))
    found = {r.recording_id: r for r in h.provider.list_recordings(WINDOW)}
    assert found["a"].started_at == datetime(2024, 1, 15, 8, 59, tzinfo=UTC)
    assert found["a"].listed_at == datetime(2024, 1, 15, 9, tzinfo=UTC)
    assert found["a"].vendor_duration_seconds == 150.0
    assert found["b"].started_at == datetime(2024, 1, 15, 8, 58, tzinfo=UTC)
    assert found["c"].started_at == datetime(2024, 1, 15, 9, tzinfo=UTC)
    assert found["c"].vendor_duration_seconds == 12.5 and found["c"].is_video is True
    assert found["d"].readiness is Readiness.READY  # no status: a candidate, resolve_media decides
    for item in found.values():
        assert_no_query(item.source)


def test_call_id_is_accepted_for_id(build: Any) -> None:
    h = build(EnvoyProvider, account(), lambda r: reply(page([{**listed(), "id": None, "call_id": "call_x"}])))
    assert [r.recording_id for r in h.provider.list_recordings(WINDOW)] == ["call_x"]


def test_pages_that_shift_are_listed_once_more(build: Any) -> None:
    data = [listed(f"call_{i}", f"2024-01-15T10:{i // 60:02d}:{i % 60:02d}Z") for i in range(150)]

    def handler(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["page"])
        chunk = data[(number - 1) * 100:number * 100]
        answer = reply({"data": chunk, "pagination": {"page": number, "page_size": 100, "total_count": len(data),
                                                      "total_pages": -(-len(data) // 100)}})
        data.insert(0, listed(f"call_new{len(data)}", "2024-01-15T09:30:00Z"))
        return answer

    h = build(EnvoyProvider, account(), handler)
    ids = [r.recording_id for r in h.provider.list_recordings(WINDOW)]
    assert len(ids) == len(set(ids)) and {f"call_{i}" for i in range(150)} <= set(ids)
    assert [h.params(i)["page"] for i in range(len(h.requests))] == ["1", "2", "1", "2"]


@pytest.mark.parametrize(("bad", "field"), [
    ({"created_at": "noon"}, "created_at"),
    ({"call_start_time": "soon"}, "call_start_time"),
    ({"recording_status": ["done"]}, "recording_status"),
    ({"duration_seconds": "long"}, "duration_seconds"),
])
def test_one_bad_call_is_invalid_the_others_are_listed(build: Any, bad: dict[str, Any], field: str) -> None:
    items = [listed("call_a"), {**listed("call_b", "2024-01-15T10:00:00Z"), **bad}, listed("call_c")]
    h = build(EnvoyProvider, account(), lambda r: reply(page(items)))
    found = {r.recording_id: r for r in h.provider.list_recordings(WINDOW)}
    assert sorted(found) == ["call_a", "call_b", "call_c"]
    assert found["call_b"].readiness is Readiness.INVALID and field in (found["call_b"].problem or "")
    assert WINDOW.contains(found["call_b"].listed_at)
    assert found["call_a"].readiness is found["call_c"].readiness is Readiness.READY


@pytest.mark.parametrize(("body", "field"), [
    (page([{"created_at": OLD}]), "id"),
    (page(["call"]), "envoy call"),
    ({"data": "calls"}, "data"),
    ({"pagination": {"page": 1}}, "data"),
    ({"data": [], "pagination": "none"}, "pagination"),
    ({"data": [listed()], "pagination": {"total_pages": "many"}}, "total_pages"),
])
def test_an_unusable_page_stops_the_account(build: Any, body: Any, field: str) -> None:
    h = build(EnvoyProvider, account(), lambda r: reply(body))
    with pytest.raises(BadVendorData) as info:
        list(h.provider.list_recordings(WINDOW))
    assert field in str(info.value)
    assert_clean(info.value)


def test_list_401_is_auth_error_and_non_json_is_bad_data(build: Any) -> None:
    h = build(EnvoyProvider, account(), lambda r: reply({"detail": "no"}, 401))
    with pytest.raises(AuthError) as info:
        list(h.provider.list_recordings(WINDOW))
    assert_clean(info.value)
    h = build(EnvoyProvider, account(), lambda r: raw_reply(b"not json", content_type="text/plain"))
    with pytest.raises(BadVendorData):
        list(h.provider.list_recordings(WINDOW))


# -- media --------------------------------------------------------------------------------------------


def _provider_with(build: Any, answer: httpx.Response | dict[str, Any], **extra: Any) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/recording"):
            return answer if isinstance(answer, httpx.Response) else reply(answer)
        return reply(listed(CALL))

    return build(EnvoyProvider, account(**extra), handler)


def test_resolve_available(build: Any) -> None:
    h = _provider_with(build, recording(content_type="video/mp4"))
    link = h.provider.resolve_media(h.provider.get_recording(CALL))
    assert h.paths() == [f"/envoy/api/v1/calls/{CALL}", f"/envoy/api/v1/calls/{CALL}/recording"]
    assert link.url == "https://envoy-media.s3.amazonaws.com/r/1.m4a?X-Amz-Signature=abc"
    assert link.expected_size == 123456 and link.is_video is True and link.content_type == "video/mp4"
    assert link.expires_at == datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    assert dict(link.headers) == {}


@pytest.mark.parametrize(("status", "error"), [("PROCESSING", NotReady), ("pending", NotReady),
                                               ("FAILED", NoRecording), ("not_recorded", NoRecording)])
def test_resolve_status(build: Any, status: str, error: type[Exception]) -> None:
    h = _provider_with(build, recording(status, url=None))
    with pytest.raises(error) as info:
        h.provider.resolve_media(h.provider.get_recording(CALL))
    assert status in str(info.value)


def test_resolve_404_is_no_recording_only_when_old_enough(build: Any) -> None:
    h = _provider_with(build, reply({"detail": "Recording not found"}, 404))
    old = h.provider.get_recording(CALL)
    with pytest.raises(NoRecording):
        h.provider.resolve_media(old)
    recent = old.__class__(**{**old.__dict__, "started_at": datetime.now(UTC) - timedelta(minutes=5)})
    with pytest.raises(NotReady):
        h.provider.resolve_media(recent)


@pytest.mark.parametrize(("code", "error"), [(422, PermanentError), (401, AuthError), (403, AuthError)])
def test_resolve_http_errors(build: Any, code: int, error: type[Exception]) -> None:
    h = _provider_with(build, reply({"detail": TOKEN}, code))
    with pytest.raises(error) as info:
        h.provider.resolve_media(h.provider.get_recording(CALL))
    assert_clean(info.value)
    if code == 422:
        assert not isinstance(info.value, AccountError)


def test_resolve_available_without_url_is_bad_vendor_data(build: Any) -> None:
    h = _provider_with(build, recording(url=""))
    with pytest.raises(BadVendorData) as info:
        h.provider.resolve_media(h.provider.get_recording(CALL))
    assert "url" in str(info.value)


def test_malformed_recording_answers(build: Any) -> None:
    for body in (recording(file_size_bytes="big"), recording(expires_at="later"), ["x"]):
        h = _provider_with(build, reply(body))
        with pytest.raises(BadVendorData) as info:
            h.provider.resolve_media(h.provider.get_recording(CALL))
        assert_clean(info.value)


def test_get_recording_reads_get_a_call(build: Any) -> None:
    h = build(EnvoyProvider, account(), lambda r: reply(listed(CALL, recording_status="processing")))
    item = h.provider.get_recording(CALL)
    assert h.paths() == [f"/envoy/api/v1/calls/{CALL}"]
    assert item.readiness is Readiness.NOT_READY and item.unknown_status == "processing"
    gone = build(EnvoyProvider, account(), lambda r: reply({"detail": "Call not found"}, 404))
    with pytest.raises(NoRecording):
        gone.provider.get_recording(CALL)


def test_default_media_hosts() -> None:
    assert EnvoyProvider.media_hosts(EnvoyProvider.__new__(EnvoyProvider)) == [
        "*.tryenvoy.ai", "*.amazonaws.com", "*.cloudfront.net", "storage.googleapis.com"]


# -- the public pages' examples -----------------------------------------------------------------------


def test_list_calls_example_parses(build: Any) -> None:
    """"List calls": its example (``recording_status: "string"``) is one call, not ready, status named."""
    h = build(EnvoyProvider, account(), lambda r: reply(ENVOY_CALLS))
    [found] = h.provider.list_recordings(WINDOW)
    assert found.recording_id == ENVOY_CALL["id"] and len(h.requests) == 1  # total_pages 1 ends it
    assert found.started_at == found.listed_at == datetime(2024, 1, 15, 9, 30, tzinfo=UTC)
    assert found.readiness is Readiness.NOT_READY and found.unknown_status == "string"


def test_get_a_call_and_load_call_examples_parse(build: Any) -> None:
    h = build(EnvoyProvider, account(), lambda r: reply(ENVOY_LOAD_CALL))
    found = h.provider.get_recording(ENVOY_LOAD_CALL["id"])
    assert found.readiness is Readiness.READY  # AVAILABLE
    assert found.started_at == datetime(2024, 4, 20, 14, 45, 5, tzinfo=UTC)
    assert found.listed_at == datetime(2024, 4, 20, 14, 45, tzinfo=UTC)
    assert found.vendor_duration_seconds == 325.0
    h = build(EnvoyProvider, account(), lambda r: reply(ENVOY_CALL))
    assert h.provider.get_recording(ENVOY_CALL["id"]).unknown_status == "string"


def test_pagination_guide_envelope_pages_on_to_total_pages(build: Any) -> None:
    h = build(EnvoyProvider, account(), lambda r: reply(
        {**ENVOY_PAGINATION_GUIDE, "data": [], "pagination": {**ENVOY_PAGINATION_GUIDE["pagination"],
                                                              "page": int(r.url.params["page"])}}))
    assert list(h.provider.list_recordings(WINDOW)) == []
    assert len(h.requests) == 1  # an empty page ends the listing whatever total_pages says


def test_get_call_recording_example_parses(build: Any) -> None:
    """"Get call recording": its example (status and url ``"string"``) is an unknown, not-ready status."""
    h = _provider_with(build, ENVOY_RECORDING)
    item = h.provider.get_recording(CALL)
    with pytest.raises(NotReady) as info:
        h.provider.resolve_media(item)
    assert "'string'" in str(info.value)
    available = _provider_with(build, {**ENVOY_RECORDING, "recording_status": "AVAILABLE",
                                       "url": "https://x.tryenvoy.ai/r.mp4?sig=1", "content_type": "video/mp4"})
    link = available.provider.resolve_media(item)
    assert link.url == "https://x.tryenvoy.ai/r.mp4?sig=1" and link.is_video and link.expected_size == 1
