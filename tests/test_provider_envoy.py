"""Envoy provider against a MockTransport: cursor listing, recording status, error statuses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from providers.base import Readiness, Window
from providers.envoy import EnvoyProvider
from tests._provider_mock import TOKEN, assert_clean, assert_no_query, build, make_account, raw_reply, reply, utc
from worker.errors import AccountError, AuthError, BadVendorData, NoRecording, NotReady, PermanentError

__all__ = ["build"]

BASE = "https://tryenvoy.ai/envoy"
CALL = "call_00000000-0000-0000-0000-000000000001"
WINDOW = Window(utc(2024, 1, 15), utc(2024, 1, 16))


def listed(cid: str = CALL, created: str = "2024-01-15T09:00:00Z", **extra: Any) -> dict[str, Any]:
    return {"call_id": cid, "created_at": created, "status": "ended", **extra}


def recording(status: str = "completed", **extra: Any) -> dict[str, Any]:
    return {"call_id": CALL, "url": "https://cdn.tryenvoy.ai/r/1.m4a?X-Amz-Signature=abc",
            "content_type": "audio/mp4", "expires_at": "2024-01-15T10:30:00Z", "recording_status": status,
            "duration_seconds": 61.5, "file_size_bytes": 123456, "recording_start_time": "2024-01-15T09:30:00Z",
            **extra}


def account(**extra: Any) -> Any:
    return make_account("envoy", BASE, **extra)


def test_list_params_cursor_and_org_header(build: Any) -> None:
    pages = {None: {"data": [listed("call_a")], "next_cursor": "c2"},
             "c2": {"data": [listed("call_b")], "next_cursor": None}}
    h = build(EnvoyProvider, account(organization_id="org-9"), lambda r: reply(pages[r.url.params.get("cursor")]))
    assert [r.recording_id for r in h.provider.list_recordings(WINDOW)] == ["call_a", "call_b"]
    assert h.paths() == ["/envoy/api/v1/calls"] * 2
    assert h.params(0) == {"limit": "100", "created_after": "2024-01-14T23:59:59Z"}
    assert h.params(1) == {"limit": "100", "created_after": "2024-01-14T23:59:59Z", "cursor": "c2"}
    assert h.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert h.requests[0].headers["X-Organization-ID"] == "org-9"


def test_no_org_header_without_organization_id() -> None:
    headers, params = EnvoyProvider.client_auth(account())
    assert headers == {"Authorization": f"Bearer {TOKEN}"} and params == {}


@pytest.mark.parametrize("key", ["data", "calls", "items"])
def test_item_keys_and_id_fallback(build: Any, key: str) -> None:
    body = {key: [{"id": "call_x", "created_at": "2024-01-15T01:00:00Z"}]}
    h = build(EnvoyProvider, account(), lambda r: reply(body))
    assert [r.recording_id for r in h.provider.list_recordings(WINDOW)] == ["call_x"]


def test_listing_fields_and_status(build: Any) -> None:
    items = [listed("a"), listed("b", recording_status="processing"), listed("c", recording_status="failed"),
             listed("d", recording_status="completed", recording_start_time="2024-01-15T09:01:00Z",
                    duration_seconds="12.5", content_type="video/mp4"),
             listed("a")]
    h = build(EnvoyProvider, account(), lambda r: reply({"data": items, "next_cursor": None}))
    found = {r.recording_id: r for r in h.provider.list_recordings(WINDOW)}
    assert len(found) == 4
    assert found["a"].readiness is Readiness.READY and found["a"].started_at == datetime(2024, 1, 15, 9, tzinfo=UTC)
    assert found["b"].readiness is Readiness.NOT_READY
    assert found["c"].readiness is Readiness.NO_RECORDING
    assert found["d"].started_at == datetime(2024, 1, 15, 9, 1, tzinfo=UTC)
    assert found["d"].listed_at == datetime(2024, 1, 15, 9, tzinfo=UTC)
    assert found["d"].vendor_duration_seconds == 12.5 and found["d"].is_video is True
    for item in found.values():
        assert_no_query(item.source)


def test_window_edges_and_empty_page(build: Any) -> None:
    items = [listed("early", "2024-01-14T23:59:59.500Z"), listed("since", "2024-01-15T00:00:00Z"),
             listed("until", "2024-01-16T00:00:00Z")]
    pages = {None: {"data": items, "next_cursor": "more"}, "more": {"data": [], "next_cursor": "again"}}
    h = build(EnvoyProvider, account(), lambda r: reply(pages[r.url.params.get("cursor")]))
    assert [r.recording_id for r in h.provider.list_recordings(WINDOW)] == ["since"]
    assert len(h.requests) == 2


def test_repeated_cursor_is_bad_vendor_data(build: Any) -> None:
    h = build(EnvoyProvider, account(), lambda r: reply({"data": [listed(str(len(r.url.params)))],
                                                         "next_cursor": "same"}))
    with pytest.raises(BadVendorData):
        list(h.provider.list_recordings(WINDOW))


def test_resolve_completed(build: Any) -> None:
    h = build(EnvoyProvider, account(), lambda r: reply(recording(content_type="video/mp4")))
    link = h.provider.resolve_media(h.provider.get_recording(CALL))
    assert h.paths()[-1] == f"/envoy/api/v1/calls/{CALL}/recording"
    assert link.url == "https://cdn.tryenvoy.ai/r/1.m4a?X-Amz-Signature=abc"
    assert link.expected_size == 123456 and link.is_video is True and link.content_type == "video/mp4"
    assert link.expires_at == datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    assert dict(link.headers) == {}


@pytest.mark.parametrize(("status", "error"), [("processing", NotReady), ("pending", NotReady),
                                               ("failed", NoRecording)])
def test_resolve_status(build: Any, status: str, error: type[Exception]) -> None:
    h = build(EnvoyProvider, account(), lambda r: reply(recording(status, url=None)))
    with pytest.raises(error):
        h.provider.resolve_media(h.provider.get_recording(CALL))


@pytest.mark.parametrize(("code", "error"), [(404, NoRecording), (422, PermanentError), (401, AuthError),
                                             (403, AuthError)])
def test_resolve_http_errors(build: Any, code: int, error: type[Exception]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/recording"):
            return reply({"detail": TOKEN}, code)
        return reply({"data": [listed()], "next_cursor": None})

    h = build(EnvoyProvider, account(), handler)
    item = next(iter(h.provider.list_recordings(WINDOW)))
    with pytest.raises(error) as info:
        h.provider.resolve_media(item)
    assert_clean(info.value)
    if code == 422:
        assert not isinstance(info.value, AccountError)


def test_resolve_completed_without_url_is_bad_vendor_data(build: Any) -> None:
    h = build(EnvoyProvider, account(), lambda r: reply(recording(url="")))
    with pytest.raises(BadVendorData) as info:
        h.provider.resolve_media(h.provider.get_recording(CALL))
    assert "url" in str(info.value)


def test_get_recording_builds_from_the_recording_endpoint(build: Any) -> None:
    h = build(EnvoyProvider, account(), lambda r: reply(recording()))
    item = h.provider.get_recording(CALL)
    assert item.recording_id == CALL and item.readiness is Readiness.READY
    assert item.started_at == item.listed_at == datetime(2024, 1, 15, 9, 30, tzinfo=UTC)
    assert item.vendor_duration_seconds == 61.5
    assert_no_query(item.source)
    pending = build(EnvoyProvider, account(), lambda r: reply(recording("pending", recording_start_time=None)))
    with pytest.raises(NotReady):
        pending.provider.get_recording(CALL)


@pytest.mark.parametrize(("body", "field"), [
    ({"data": [{"created_at": "2024-01-15T01:00:00Z"}]}, "call_id"),
    ({"data": [listed(created="noon")]}, "created_at"),
    ({"data": [listed(recording_status=["done"])]}, "recording_status"),
    ({"data": "calls"}, "data"),
    ({"next_cursor": None}, "data"),
])
def test_malformed_answers(build: Any, body: Any, field: str) -> None:
    h = build(EnvoyProvider, account(), lambda r: reply(body))
    with pytest.raises(BadVendorData) as info:
        list(h.provider.list_recordings(WINDOW))
    assert field in str(info.value)
    assert_clean(info.value)


def test_malformed_recording_answers(build: Any) -> None:
    for body in (recording(file_size_bytes="big"), recording(expires_at="later"), ["x"]):
        h = build(EnvoyProvider, account(), lambda r, b=body: reply(b))
        with pytest.raises(BadVendorData) as info:
            h.provider.resolve_media(h.provider.get_recording(CALL))
        assert_clean(info.value)
    h = build(EnvoyProvider, account(), lambda r: raw_reply(b"not json", content_type="text/plain"))
    with pytest.raises(BadVendorData):
        list(h.provider.list_recordings(WINDOW))


def test_list_401_is_auth_error(build: Any) -> None:
    h = build(EnvoyProvider, account(), lambda r: reply({"detail": "no"}, 401))
    with pytest.raises(AuthError) as info:
        list(h.provider.list_recordings(WINDOW))
    assert_clean(info.value)


def test_listing_start_time_fallbacks_and_has_recording(build: Any) -> None:
    items = [listed("a", started_at="2024-01-15T08:59:00Z"), listed("b", has_recording=False),
             listed("c", has_recording=True, recording_start_time="2024-01-15T08:58:00Z",
                    started_at="2024-01-15T08:57:00Z")]
    h = build(EnvoyProvider, account(), lambda r: reply({"data": items, "next_cursor": None}))
    found = {r.recording_id: r for r in h.provider.list_recordings(WINDOW)}
    assert found["a"].started_at == datetime(2024, 1, 15, 8, 59, tzinfo=UTC)
    assert found["a"].listed_at == datetime(2024, 1, 15, 9, tzinfo=UTC)
    assert found["b"].readiness is Readiness.NO_RECORDING
    assert found["c"].readiness is Readiness.READY
    assert found["c"].started_at == datetime(2024, 1, 15, 8, 58, tzinfo=UTC)
