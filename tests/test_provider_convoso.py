"""Convoso provider against a MockTransport: per-lead listing, naive times, path fallback, media URLs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from providers.base import Readiness, Window
from providers.convoso import ConvosoProvider, naive_in_zone
from tests._provider_mock import TOKEN, assert_clean, assert_no_query, build, make_account, raw_reply, reply, utc
from tests.fixtures.vendor_pages import CONVOSO_CALL_LOG, CONVOSO_LEAD_RECORDINGS
from worker.errors import AccountError, AuthError, BadVendorData, NoRecording

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
    ("Database unavailable", BadVendorData),
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


def test_other_schemes_park_that_recording_only(build: Any) -> None:
    entries = [entry(1, url="ftp://x/1.wav"), entry(2)]
    h = build(ConvosoProvider, account(), lambda r: reply(envelope(entries, 2)))
    found = {r.recording_id: r for r in h.provider.list_recordings(JULY)}
    assert found["1"].readiness is Readiness.INVALID and "ftp" in (found["1"].problem or "")
    assert found["2"].readiness is Readiness.READY
    with pytest.raises(NoRecording):
        h.provider.resolve_media(found["1"])


def test_get_recording_lists_every_lead_from_the_account_start(build: Any) -> None:
    h = build(ConvosoProvider, account(lead_ids=["1", "2"]),
              lambda r: reply(envelope([entry(10 + int(r.url.params["lead_id"]))], 1)))
    assert h.provider.get_recording("12").recording_id == "12"
    assert h.params(0)["start_time"] == "2025-12-31 19:00:00"  # account start 2026-01-01Z in New York
    with pytest.raises(NoRecording):
        h.provider.get_recording("99")


@pytest.mark.parametrize(("body", "field"), [
    ({"success": True, "data": {"total": 1, "entries": [{"start_time": "2026-07-01 12:00:00"}]}}, "recording_id"),
    (envelope(["an entry"], 1), "convoso recording"),
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


@pytest.mark.parametrize(("bad", "field"), [({"start_time": "not a time"}, "start_time"),
                                            ({"seconds": "ten"}, "seconds"), ({"url": ["x"]}, "url")])
def test_one_bad_entry_is_invalid_the_others_are_listed(build: Any, bad: dict[str, Any], field: str) -> None:
    entries = [entry(1), {**entry(2), **bad}, entry(3)]
    h = build(ConvosoProvider, account(), lambda r: reply(envelope(entries, 3)))
    found = {r.recording_id: r for r in h.provider.list_recordings(JULY)}
    assert sorted(found) == ["1", "2", "3"]
    assert found["2"].readiness is Readiness.INVALID and field in (found["2"].problem or "")
    assert JULY.contains(found["2"].listed_at)
    assert found["1"].readiness is found["3"].readiness is Readiness.READY


@pytest.mark.parametrize("answer", [{"success": False, "code": 6001, "text": "No such Lead"},
                                    {"success": False, "code": "6001", "message": "whatever"},
                                    {"success": False, "code": 404, "error": "Lead not found"}])
def test_an_unknown_lead_is_skipped_and_reported(build: Any, answer: dict[str, Any],
                                                 caplog: pytest.LogCaptureFixture) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params["lead_id"] == "404404":
            return reply(answer)
        return reply(envelope([entry(int(request.url.params["lead_id"]))], 1))

    h = build(ConvosoProvider, account(lead_ids=["1", "404404", "2"]), handler)
    with caplog.at_level("WARNING", logger="providers.convoso"):
        assert sorted(r.recording_id for r in h.provider.list_recordings(JULY)) == ["1", "2"]
    assert h.provider.unknown_leads == ["404404"]
    assert "404404" in caplog.text and TOKEN not in caplog.text


def test_a_bad_token_fails_the_account_even_for_a_lead(build: Any) -> None:
    h = build(ConvosoProvider, account(), lambda r: reply({"success": False, "code": 401, "text": "Lead denied"}))
    with pytest.raises(AuthError):
        list(h.provider.list_recordings(JULY))


def test_a_file_name_without_media_base_url_parks_that_recording_only(build: Any) -> None:
    entries = [entry(1), entry(2, url="https://files.convoso.com/2.wav")]
    h = build(ConvosoProvider, account(media_base_url=None), lambda r: reply(envelope(entries, 2)))
    found = {r.recording_id: r for r in h.provider.list_recordings(JULY)}
    assert found["1"].readiness is Readiness.INVALID and "media_base_url" in (found["1"].problem or "")
    assert found["2"].readiness is Readiness.READY
    assert h.provider.resolve_media(found["2"]).url == "https://files.convoso.com/2.wav"


def test_a_recent_entry_without_a_file_is_not_ready(build: Any) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    local = (now - timedelta(hours=1)).astimezone(NY).strftime("%Y-%m-%d %H:%M:%S")
    h = build(ConvosoProvider, account(), lambda r: reply(envelope([entry(1, local, url="")], 1)))
    [found] = h.provider.list_recordings(Window(now - timedelta(days=1), now))
    assert found.readiness is Readiness.NOT_READY


def test_default_media_hosts(build: Any) -> None:
    h = build(ConvosoProvider, account(), lambda r: reply(envelope([], 0)))
    assert h.provider.media_hosts() == ["convoso.com", "*.convoso.com"]


# -- the whole account, from the call log ------------------------------------------------------------


def call(call_id: Any, date: str = "2026-07-01 12:00:00", recordings: list[dict[str, Any]] | None = None,
         **extra: Any) -> dict[str, Any]:
    return {"id": str(call_id), "lead_id": "270", "list_id": "1", "campaign_id": "2", "user_id": "9",
            "status": "SALE", "call_length": "42", "call_date": date,
            "recording": recordings if recordings is not None else [
                {"recording_id": f"r{call_id}", "src": f"https://rec.convoso.com/r{call_id}.mp3?sig=1",
                 "type": "mp3", "filename": f"r{call_id}.mp3", "public_url": f"https://convoso.com/p/r{call_id}"}],
            **extra}


def log_page(results: list[Any], total: Any, offset: int = 0) -> dict[str, Any]:
    return {"success": True, "data": {"offset": offset, "limit": 100, "total_found": str(total),
                                      "entries": len(results), "results": results}}


def test_without_lead_ids_the_call_log_is_read_in_ascending_order(build: Any) -> None:
    h = build(ConvosoProvider, account(lead_ids=None), lambda r: reply(log_page([call(1), call(2)], 2)))
    found = {r.recording_id: r for r in h.provider.list_recordings(JULY)}
    assert sorted(found) == ["r1", "r2"]
    assert h.paths() == ["/convoso/v1/log/retrieve"]
    assert h.params(0) == {"start_time": "2026-07-01 00:00:00", "end_time": "2026-07-02 00:00:00", "limit": "100",
                           "include_recordings": "1", "order": "asc", "offset": "0", "auth_token": TOKEN}
    first = found["r1"]
    assert first.started_at == first.listed_at == datetime(2026, 7, 1, 16, tzinfo=UTC)
    assert first.vendor_duration_seconds == 42.0 and first.readiness is Readiness.READY
    assert h.provider.resolve_media(first).url == "https://rec.convoso.com/r1.mp3?sig=1"
    assert_no_query(first.source)


def test_call_log_media_prefers_src_then_public_url_then_the_file_name(build: Any) -> None:
    results = [call(1, recordings=[{"recording_id": "a", "src": "", "public_url": "https://convoso.com/p/a",
                                    "filename": "a.wav"}]),
               call(2, recordings=[{"recording_id": "b", "filename": "b.wav"}]),
               call(3, recordings=[{"recording_id": "c1", "src": "https://x.convoso.com/c1.wav"},
                                   {"recording_id": "c2", "src": "https://x.convoso.com/c2.wav"},
                                   {"type": "mp3"}])]
    h = build(ConvosoProvider, account(lead_ids=None), lambda r: reply(log_page(results, 3)))
    found = {r.recording_id: r for r in h.provider.list_recordings(JULY)}
    assert sorted(found) == ["a", "b", "c1", "c2"]
    assert h.provider.resolve_media(found["a"]).url == "https://convoso.com/p/a"
    assert h.provider.resolve_media(found["b"]).url == "https://media.convoso.com/recordings/b.wav"
    assert h.provider.resolve_media(found["c2"]).url == "https://x.convoso.com/c2.wav"


def test_a_call_without_recordings_waits_then_has_none(build: Any) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    recent = (now - timedelta(hours=1)).astimezone(NY).strftime("%Y-%m-%d %H:%M:%S")
    old = (now - timedelta(hours=30)).astimezone(NY).strftime("%Y-%m-%d %H:%M:%S")
    results = [call(1, recent, recordings=[]), call(2, old, recordings=[])]
    h = build(ConvosoProvider, account(lead_ids=None), lambda r: reply(log_page(results, 2)))
    found = {r.recording_id: r.readiness for r in h.provider.list_recordings(Window(now - timedelta(days=2), now))}
    assert found == {"call-1": Readiness.NOT_READY, "call-2": Readiness.NO_RECORDING}


def test_call_log_pages_by_offset_until_total_found(build: Any) -> None:
    calls = [call(i) for i in range(150)]

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        return reply(log_page(calls[offset:offset + 100], 150, offset))

    h = build(ConvosoProvider, account(lead_ids=None), handler)
    assert len(list(h.provider.list_recordings(JULY))) == 150
    assert [h.params(i)["offset"] for i in range(len(h.requests))] == ["0", "100"]


def test_a_bad_call_is_invalid_a_bad_page_stops(build: Any) -> None:
    results = [call(1), call(2, date="noon"), call(3, recordings=[{"recording_id": "r3", "src": ["x"]}])]
    h = build(ConvosoProvider, account(lead_ids=None), lambda r: reply(log_page(results, 3)))
    found = {r.recording_id: r for r in h.provider.list_recordings(JULY)}
    assert found["r1"].readiness is Readiness.READY
    assert found["r2"].readiness is Readiness.INVALID and "call_date" in (found["r2"].problem or "")
    assert found["r3"].readiness is Readiness.INVALID and "src" in (found["r3"].problem or "")
    for body in ({"success": True, "data": {"results": "x"}}, {"success": True, "data": {"results": [{"x": 1}]}}):
        bad = build(ConvosoProvider, account(lead_ids=None), lambda r, b=body: reply(b))
        with pytest.raises(BadVendorData):
            list(bad.provider.list_recordings(JULY))
    denied = build(ConvosoProvider, account(lead_ids=None),
                   lambda r: reply({"success": False, "code": 401, "text": "Invalid auth token"}))
    with pytest.raises(AuthError):
        list(denied.provider.list_recordings(JULY))


# -- the public pages' examples -----------------------------------------------------------------------


def test_lead_get_recordings_example_parses(build: Any) -> None:
    h = build(ConvosoProvider, account(), lambda r: reply(CONVOSO_LEAD_RECORDINGS))
    [found] = h.provider.list_recordings(Window(utc(2014, 6, 1), utc(2014, 7, 1)))
    assert found.recording_id == "8" and found.readiness is Readiness.READY
    assert found.started_at == datetime(2014, 6, 20, 1, 11, 36, tzinfo=UTC)  # EDT
    assert found.vendor_duration_seconds == 10.0
    assert h.provider.resolve_media(found).url == "https://media.convoso.com/recordings/1403237496-all.wav"


def test_call_log_example_parses(build: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:  # the example's page, then an empty one
        return reply(CONVOSO_CALL_LOG if request.url.params["offset"] == "0" else log_page([], 546, 1))

    h = build(ConvosoProvider, account(lead_ids=None), handler)
    found = list(h.provider.list_recordings(Window(utc(2026, 3, 3), utc(2026, 3, 4))))
    assert [r.recording_id for r in found] == ["rec123"]
    assert found[0].started_at == datetime(2026, 3, 3, 19, 30, tzinfo=UTC)  # EST
    assert h.provider.resolve_media(found[0]).url == "https://convoso.com/recording/rec123"
    assert [h.params(i)["offset"] for i in range(len(h.requests))] == ["0", "1"]
