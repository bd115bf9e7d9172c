"""Convoso provider against a MockTransport: per-lead listing, naive times, path fallback, media URLs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from providers.base import Readiness, Window
from providers.convoso import ConvosoProvider, naive_in_zone
from tests._provider_mock import TOKEN, assert_clean, assert_no_query, build, make_account, raw_reply, reply, utc
from worker.errors import AccountError, AuthError, BadVendorData, NoRecording, PermanentError

__all__ = ["build"]

BASE = "https://api.convoso.com/convoso"
MEDIA = "https://media.convoso.com/recordings"
NY = ZoneInfo("America/New_York")


def entry(recording_id: Any, start: str = "2026-07-01 12:00:00", **extra: Any) -> dict[str, Any]:
    return {"recording_id": recording_id, "lead_id": 270, "start_time": start, "end_time": "",
            "seconds": 10, "url": f"{recording_id}-all.wav", **extra}


def envelope(entries: list[Any], total: Any, offset: Any = "0") -> dict[str, Any]:
    return {"success": True, "data": {"offset": offset, "limit": "100", "total": total, "entries": entries}}


def account(**extra: Any) -> Any:
    values: dict[str, Any] = {"lead_ids": ["270"], "media_base_url": MEDIA, "timezone": "America/New_York"}
    values.update(extra)
    return make_account("convoso", BASE, **values)


JULY = Window(utc(2026, 7, 1, 4), utc(2026, 7, 2, 4))  # one New York day in summer time


def test_list_params_are_naive_in_the_account_zone_with_the_token_as_query(build: Any) -> None:
    h = build(ConvosoProvider, account(lead_ids=["270", "271"]), lambda r: reply(envelope([], "0")))
    assert list(h.provider.list_recordings(JULY)) == []
    assert h.paths() == ["/convoso/v1/lead/get-recordings"] * 2
    assert h.params(0) == {"lead_id": "270", "start_time": "2026-07-01 00:00:00",
                           "end_time": "2026-07-02 00:00:00", "limit": "100", "offset": "0",
                           "auth_token": TOKEN}
    assert h.params(1)["lead_id"] == "271"
    assert "Authorization" not in h.requests[0].headers


def test_naive_times_are_read_in_the_zone_across_dst(build: Any) -> None:
    entries = [entry(1, "2026-07-01 12:00:00"), entry(2, "2026-01-15 12:00:00"), entry(3, "2026-11-01 01:45:00")]
    h = build(ConvosoProvider, account(), lambda r: reply(envelope(entries, 3)))
    found = {r.recording_id: r for r in h.provider.list_recordings(Window(utc(2026, 1, 1), utc(2027, 1, 1)))}
    assert found["1"].started_at == datetime(2026, 7, 1, 16, tzinfo=UTC)  # EDT, UTC-4
    assert found["2"].started_at == datetime(2026, 1, 15, 17, tzinfo=UTC)  # EST, UTC-5
    assert found["3"].started_at == datetime(2026, 11, 1, 5, 45, tzinfo=UTC)  # repeated hour: first one
    assert found["1"].listed_at == found["1"].started_at
    assert found["1"].vendor_duration_seconds == 10.0


def test_bounds_are_widened_never_narrowed() -> None:
    # 06:30Z on 2026-11-01 is 01:30 EST, the second 01:30 of the night: the first 01:45 (05:45Z) is before it
    assert naive_in_zone(utc(2026, 11, 1, 6, 30), NY, upper=True) == "2026-11-01 02:30:00"
    assert naive_in_zone(utc(2026, 11, 1, 6, 30), NY, upper=False) == "2026-11-01 01:30:00"
    assert naive_in_zone(utc(2026, 11, 1, 5, 30), NY, upper=True) == "2026-11-01 01:30:00"
    moment = datetime(2026, 7, 1, 4, 0, 0, 250_000, tzinfo=UTC)
    assert naive_in_zone(moment, NY, upper=False) == "2026-07-01 00:00:00"
    assert naive_in_zone(moment, NY, upper=True) == "2026-07-01 00:00:01"
    assert naive_in_zone(utc(2026, 3, 8, 7, 30), NY, upper=True) == "2026-03-08 03:30:00"  # after spring gap


def test_window_in_the_repeated_hour_keeps_its_recordings(build: Any) -> None:
    h = build(ConvosoProvider, account(), lambda r: reply(envelope([entry(3, "2026-11-01 01:45:00")], 1)))
    window = Window(utc(2026, 11, 1, 5), utc(2026, 11, 1, 6, 30))
    assert [r.recording_id for r in h.provider.list_recordings(window)] == ["3"]
    assert h.params(0)["end_time"] == "2026-11-01 02:30:00"


def _paged(entries: list[Any], total: Any) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        return reply(envelope(entries[offset:offset + 100], total, offset=str(offset)))
    return handler


@pytest.mark.parametrize(("count", "total", "offsets"), [
    (150, "150", ["0", "100"]),
    (200, "200", ["0", "100"]),
    (100, 100, ["0"]),
    (100, "500", ["0", "100"]),  # the second page comes back empty: stop despite the total
    (0, "0", ["0"]),
])
def test_offset_paging_with_numbers_as_strings(build: Any, count: int, total: Any, offsets: list[str]) -> None:
    entries = [entry(i) for i in range(count)]
    h = build(ConvosoProvider, account(), _paged(entries, total))
    assert len(list(h.provider.list_recordings(JULY))) == count
    assert [h.params(i)["offset"] for i in range(len(h.requests))] == offsets


def test_404_switches_to_the_plural_path_for_good(build: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/v1/lead/get-recordings"):
            return reply({"error": "not found"}, 404)
        return reply(envelope([entry(int(request.url.params["lead_id"]))], 1))

    h = build(ConvosoProvider, account(lead_ids=["270", "271"]), handler)
    assert sorted(r.recording_id for r in h.provider.list_recordings(JULY)) == ["270", "271"]
    assert h.paths() == ["/convoso/v1/lead/get-recordings", "/convoso/v1/leads/get-recordings",
                         "/convoso/v1/leads/get-recordings"]
    assert h.params(1)["lead_id"] == "270" and h.params(1)["offset"] == "0"


def test_404_on_both_paths_is_an_account_error(build: Any) -> None:
    h = build(ConvosoProvider, account(), lambda r: reply({"error": "not found"}, 404))
    with pytest.raises(AccountError) as info:
        list(h.provider.list_recordings(JULY))
    assert_clean(info.value)


@pytest.mark.parametrize(("message", "error"), [
    ("Invalid auth token", AuthError),
    (f"Token {TOKEN} is expired", AuthError),
    ("Lead not found", BadVendorData),
])
def test_success_false_carries_the_vendor_message(build: Any, message: str, error: type[Exception]) -> None:
    h = build(ConvosoProvider, account(), lambda r: reply({"success": False, "text": message}))
    with pytest.raises(error) as info:
        list(h.provider.list_recordings(JULY))
    assert type(info.value) is error
    assert_clean(info.value)
    assert message.split(maxsplit=1)[0] in str(info.value)


def test_in_band_code_401_is_auth_error(build: Any) -> None:
    h = build(ConvosoProvider, account(), lambda r: reply({"success": False, "code": 401, "text": "Denied"}))
    with pytest.raises(AuthError):
        list(h.provider.list_recordings(JULY))


def test_http_401_is_auth_error_without_the_token(build: Any) -> None:
    h = build(ConvosoProvider, account(), lambda r: reply({"success": False}, 401))
    with pytest.raises(AuthError) as info:
        list(h.provider.list_recordings(JULY))
    assert_clean(info.value)


def test_duplicates_across_leads_and_window_edges(build: Any) -> None:
    entries = [entry("a", "2026-07-01 00:00:00"), entry("b", "2026-07-01 23:59:59"),
               entry("c", "2026-07-02 00:00:00"), entry("d", "2026-06-30 23:59:59")]
    h = build(ConvosoProvider, account(lead_ids=["1", "2"]), lambda r: reply(envelope(entries, 4)))
    assert [r.recording_id for r in h.provider.list_recordings(JULY)] == ["a", "b"]


def test_resolve_media_joins_the_media_base(build: Any) -> None:
    entries = [entry(1), entry(2, url="https://cdn.example.net/x/2.wav"), entry(3, url=""),
               entry(4, url="sub/4.wav?sig=abc")]
    h = build(ConvosoProvider, account(), lambda r: reply(envelope(entries, 4)))
    found = {r.recording_id: r for r in h.provider.list_recordings(JULY)}
    link = h.provider.resolve_media(found["1"])
    assert link.url == "https://media.convoso.com/recordings/1-all.wav"
    assert dict(link.headers) == {} and TOKEN not in link.url
    assert h.provider.resolve_media(found["2"]).url == "https://cdn.example.net/x/2.wav"
    assert h.provider.resolve_media(found["4"]).url == "https://media.convoso.com/recordings/sub/4.wav?sig=abc"
    assert found["4"].source["url"] == "sub/4.wav?***"
    assert found["3"].readiness is Readiness.NO_RECORDING
    with pytest.raises(NoRecording):
        h.provider.resolve_media(found["3"])
    for recording in found.values():
        assert_no_query(recording.source)
    assert len(h.requests) == 1  # resolving needs no API call


def test_resolve_refuses_other_schemes(build: Any) -> None:
    h = build(ConvosoProvider, account(), lambda r: reply(envelope([entry(1, url="ftp://x/1.wav")], 1)))
    recording = next(iter(h.provider.list_recordings(JULY)))
    with pytest.raises(PermanentError):
        h.provider.resolve_media(recording)


def test_get_recording_lists_every_lead_from_the_account_start(build: Any) -> None:
    h = build(ConvosoProvider, account(lead_ids=["1", "2"]),
              lambda r: reply(envelope([entry(10 + int(r.url.params["lead_id"]))], 1)))
    assert h.provider.get_recording("12").recording_id == "12"
    assert h.params(0)["start_time"] == "2025-12-31 19:00:00"  # account start 2026-01-01Z in New York
    with pytest.raises(NoRecording):
        h.provider.get_recording("99")


@pytest.mark.parametrize(("body", "field"), [
    ({"success": True, "data": {"total": 1, "entries": [{"start_time": "2026-07-01 12:00:00"}]}}, "recording_id"),
    (envelope([entry(1, "not a time")], 1), "start_time"),
    (envelope([entry(1, seconds="ten")], 1), "seconds"),
    (envelope("entries", 1), "entries"),
    (envelope([entry(1)], "lots"), "total"),
    ({"success": True, "data": "nothing"}, "data"),
    ([1, 2], "response"),
])
def test_malformed_answers_raise_bad_vendor_data(build: Any, body: Any, field: str) -> None:
    h = build(ConvosoProvider, account(), lambda r: reply(body))
    with pytest.raises(BadVendorData) as info:
        list(h.provider.list_recordings(JULY))
    assert field in str(info.value)
    assert_clean(info.value)


def test_non_json_body_is_bad_vendor_data_without_the_token(build: Any) -> None:
    h = build(ConvosoProvider, account(), lambda r: raw_reply(b"<html>maintenance</html>"))
    with pytest.raises(BadVendorData) as info:
        list(h.provider.list_recordings(JULY))
    assert_clean(info.value)


def test_client_auth_is_a_query_parameter() -> None:
    assert ConvosoProvider.client_auth(account()) == ({}, {"auth_token": TOKEN})
    assert ConvosoProvider.max_page_size == 100 and ConvosoProvider.listing_sorted is False


def test_a_lead_whose_pages_shifted_is_listed_once_more(build: Any) -> None:
    data = [entry(i) for i in range(150)]

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        answer = reply(envelope(data[offset:offset + 100], str(len(data)), offset=str(offset)))
        if len(data) == 150:
            data.insert(1, entry("late"))
        return answer

    h = build(ConvosoProvider, account(), handler)
    ids = [r.recording_id for r in h.provider.list_recordings(JULY)]
    assert "late" in ids and len(ids) == len(set(ids)) == 151
    assert [h.params(i)["offset"] for i in range(len(h.requests))] == ["0", "100", "0", "100"]
