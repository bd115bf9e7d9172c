"""Convirza provider against a MockTransport: params, 31-day chunks, offset paging, signed URL refresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from providers.base import Readiness, Window
from providers.convirza import ConvirzaProvider, chunk_window
from tests._provider_mock import TOKEN, assert_clean, assert_no_query, build, make_account, raw_reply, reply, utc
from tests.fixtures.vendor_pages import CONVIRZA_CALLS
from worker.errors import AccountError, AuthError, BadVendorData, NoRecording

__all__ = ["build"]

BASE = "https://platform-api.convirza.com/convirza"
SIGNED = "https://api.convirza.com/v3/recordings/{id}?secret=abc&access=def&expires=1&file_name={id}.mp3"
FUTURE = int((datetime.now(UTC) + timedelta(days=6)).timestamp())
PAST = int((datetime.now(UTC) - timedelta(days=1)).timestamp())


def call(call_id: Any, started: str = "2026-02-14T18:20:12.000Z", *, url: bool = True,
         expires: int = FUTURE, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"call_id": call_id, "call_started": started, "duration": 182,
                              "disposition": "ANSWERED", **extra}
    if url:
        record["recording_details"] = {"recording_id": 1000, "url": SIGNED.format(id=call_id),
                                       "expires_at": expires, "format": "wav"}
    return record


def page(calls: list[dict[str, Any]], total: Any) -> dict[str, Any]:
    return {"code": 200, "message": "Success", "data": {"total": total, "calls": calls},
            "request_id": "r1", "timestamp": "2026-01-20T12:34:56.789Z"}


def account(**extra: Any) -> Any:
    return make_account("convirza", BASE, **extra)


FEB = Window(utc(2026, 2, 1), utc(2026, 3, 1))


def test_list_sends_the_documented_params_to_the_prefixed_path(build: Any) -> None:
    h = build(ConvirzaProvider, account(), lambda r: reply(page([call(1), call(2)], 2)))
    found = list(h.provider.list_recordings(Window(utc(2026, 2, 1), utc(2026, 2, 3))))
    assert [r.recording_id for r in found] == []  # both calls started on Feb 14: outside the window
    assert h.paths() == ["/convirza/v3/conversations/calls"]
    assert h.params(0) == {"start": "2026-02-01T00:00:00Z", "end": "2026-02-03T00:00:00Z", "limit": "200",
                           "offset": "0", "include": "recordings"}
    assert h.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_records_become_recordings(build: Any) -> None:
    calls = [call(987654), call("55", "2026-02-10T08:00:00Z", url=False),
             {**call(56, "2026-02-11T08:00:00Z"), "recording_details": {"filename": "x"}}]
    h = build(ConvirzaProvider, account(), lambda r: reply(page(calls, "3")))
    found = {r.recording_id: r for r in h.provider.list_recordings(FEB)}
    first = found["987654"]
    assert first.provider == "convirza" and first.account == "acme-convirza"
    assert first.started_at == first.listed_at == datetime(2026, 2, 14, 18, 20, 12, tzinfo=UTC)
    assert first.readiness is Readiness.READY
    assert first.vendor_duration_seconds == 182.0
    assert first.expires_at == datetime.fromtimestamp(FUTURE, UTC)
    assert first.hint["url"] == SIGNED.format(id=987654)
    assert found["55"].readiness is Readiness.NO_RECORDING
    assert found["56"].readiness is Readiness.NO_RECORDING
    for recording in found.values():
        assert_no_query(recording.source)
    assert "secret=" not in str(first.source)


def test_window_is_cut_into_chunks_of_at_most_31_days() -> None:
    window = Window(utc(2026, 1, 1), utc(2026, 3, 12))
    chunks = list(chunk_window(window))
    assert chunks[0][0] == window.since and chunks[-1][1] == window.until
    assert all(end > start and end - start <= timedelta(days=31) for start, end in chunks)
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:], strict=False))
    assert len(chunks) == 3
    assert list(chunk_window(Window(utc(2026, 1, 1), utc(2026, 1, 1)))) == []
    odd = list(chunk_window(Window(utc(2026, 1, 1) + timedelta(microseconds=1500),
                                   utc(2026, 2, 1) + timedelta(microseconds=1500))))
    assert all(end - start <= timedelta(days=31) and end > start for start, end in odd)
    assert odd[0][0] <= utc(2026, 1, 1) + timedelta(microseconds=1500) <= odd[-1][1]


def test_chunks_are_requested_in_order_and_empty_window_sends_nothing(build: Any) -> None:
    h = build(ConvirzaProvider, account(), lambda r: reply(page([], 0)))
    assert list(h.provider.list_recordings(Window(utc(2026, 1, 1), utc(2026, 3, 12)))) == []
    spans = [(h.params(i)["start"], h.params(i)["end"]) for i in range(len(h.requests))]
    assert spans == [("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"),
                     ("2026-02-01T00:00:00Z", "2026-03-04T00:00:00Z"),
                     ("2026-03-04T00:00:00Z", "2026-03-12T00:00:00Z")]
    h2 = build(ConvirzaProvider, account(), lambda r: reply(page([], 0)))
    assert list(h2.provider.list_recordings(Window(utc(2026, 1, 2), utc(2026, 1, 1)))) == []
    assert h2.requests == []


def _paged(calls: list[dict[str, Any]], total: Any) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        limit = int(request.url.params["limit"])
        return reply(page(calls[offset:offset + limit], total))
    return handler


@pytest.mark.parametrize(("count", "requests"), [(400, 2), (401, 3), (199, 1), (0, 1)])
def test_offset_paging_stops_at_total(build: Any, count: int, requests: int) -> None:
    calls = [call(i, "2026-02-14T00:00:00Z") for i in range(count)]
    h = build(ConvirzaProvider, account(), _paged(calls, count))
    assert len(list(h.provider.list_recordings(FEB))) == count
    assert [h.params(i)["offset"] for i in range(len(h.requests))] == [str(200 * i) for i in range(requests)]


def test_empty_page_stops_even_if_total_says_more(build: Any) -> None:
    calls = [call(i, "2026-02-14T00:00:00Z") for i in range(200)]
    h = build(ConvirzaProvider, account(), _paged(calls, "1000"))
    assert len(list(h.provider.list_recordings(FEB))) == 200
    assert len(h.requests) == 2


def test_duplicates_across_pages_are_yielded_once(build: Any) -> None:
    pages = [page([call(i, "2026-02-14T00:00:00Z") for i in range(200)], 300),
             page([call(i, "2026-02-14T00:00:00Z") for i in range(199, 299)], 300)]
    h = build(ConvirzaProvider, account(), lambda r: reply(pages[int(r.url.params["offset"]) // 200]))
    ids = [r.recording_id for r in h.provider.list_recordings(FEB)]
    assert len(ids) == len(set(ids)) == 299


def test_a_changed_total_relists_the_chunk_from_offset_zero(build: Any) -> None:
    data = [call(i, "2026-02-14T00:00:00Z") for i in range(250)]

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        answer = reply(page(data[offset:offset + 200], len(data)))
        if len(data) == 250:  # a new call arrives right after the first page: everything shifts by one
            data.insert(0, call("late", "2026-02-14T00:00:00Z"))
        return answer

    h = build(ConvirzaProvider, account(), handler)
    ids = [r.recording_id for r in h.provider.list_recordings(FEB)]
    assert "late" in ids
    assert len(ids) == len(set(ids)) == 251
    assert [h.params(i)["offset"] for i in range(len(h.requests))] == ["0", "200", "0", "200"]


def test_window_edges_since_inclusive_until_exclusive(build: Any) -> None:
    calls = [call("before", "2026-01-31T23:59:59.999Z"), call("at-since", "2026-02-01T00:00:00Z"),
             call("inside", "2026-02-20T00:00:00Z"), call("at-until", "2026-03-01T00:00:00Z")]
    h = build(ConvirzaProvider, account(), lambda r: reply(page(calls, 4)))
    assert [r.recording_id for r in h.provider.list_recordings(FEB)] == ["at-since", "inside"]


def test_resolve_uses_the_listed_url_until_it_expires(build: Any) -> None:
    h = build(ConvirzaProvider, account(), lambda r: reply(page([call(7, "2026-02-14T00:00:00Z")], 1)))
    recording = next(iter(h.provider.list_recordings(FEB)))
    link = h.provider.resolve_media(recording)
    assert link.url == SIGNED.format(id=7)
    assert link.expires_at == datetime.fromtimestamp(FUTURE, UTC)
    assert dict(link.headers) == {}
    assert len(h.requests) == 1  # no extra call for a fresh link


@pytest.mark.parametrize("expired", [True, False])
def test_refresh_or_expiry_rereads_the_call(build: Any, expired: bool) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "call_id" in request.url.params:
            fresh = call(7, "2026-02-14T00:00:00Z")
            fresh["recording_details"]["url"] = "https://api.convirza.com/v3/recordings/7?secret=new"
            return reply(page([fresh], 1))
        return reply(page([call(7, "2026-02-14T00:00:00Z", expires=PAST if expired else FUTURE)], 1))

    h = build(ConvirzaProvider, account(), handler)
    recording = next(iter(h.provider.list_recordings(FEB)))
    link = h.provider.resolve_media(recording, refresh=not expired)
    assert link.url == "https://api.convirza.com/v3/recordings/7?secret=new"
    assert h.params() == {"call_id": "7", "include": "recordings", "limit": "1"}
    assert h.requests[-1].url.path == "/convirza/v3/conversations/calls"


def test_refresh_without_url_or_unknown_call_is_no_recording(build: Any) -> None:
    h = build(ConvirzaProvider, account(), lambda r: reply(page([call(7, url=False)], 1)))
    recording = h.provider.get_recording("7")
    assert recording.readiness is Readiness.NO_RECORDING
    with pytest.raises(NoRecording) as info:
        h.provider.resolve_media(recording)
    assert_clean(info.value)
    h404 = build(ConvirzaProvider, account(), lambda r: reply({"code": 404, "message": "nope"}, 404))
    with pytest.raises(NoRecording):
        h404.provider.get_recording("8")
    other = build(ConvirzaProvider, account(), lambda r: reply(page([call(9)], 1)))
    with pytest.raises(NoRecording):
        other.provider.get_recording("8")


def test_get_recording_accepts_the_call_itself_as_data(build: Any) -> None:
    h = build(ConvirzaProvider, account(), lambda r: reply({"code": 200, "data": call(12)}))
    assert h.provider.get_recording("12").recording_id == "12"


@pytest.mark.parametrize(("body", "field"), [
    ({"code": 200, "message": "Success"}, "data"),
    (page([{"call_started": "2026-02-14T00:00:00Z"}], 1), "call_id"),
    (page([call(1)], "many"), "total"),
    (page("calls", 1), "calls"),
    (page(["not a call"], 1), "convirza call"),
])
def test_malformed_pages_raise_bad_vendor_data_naming_the_field(build: Any, body: Any, field: str) -> None:
    """Only what makes the page unusable (no envelope, a call without a usable id) stops the account."""
    h = build(ConvirzaProvider, account(), lambda r: reply(body))
    with pytest.raises(BadVendorData) as info:
        list(h.provider.list_recordings(FEB))
    assert field in str(info.value)
    assert_clean(info.value)


def test_non_json_and_http_errors(build: Any) -> None:
    h = build(ConvirzaProvider, account(), lambda r: raw_reply(b"<html>oops</html>"))
    with pytest.raises(BadVendorData) as bad:
        list(h.provider.list_recordings(FEB))
    assert_clean(bad.value)
    for status, error in ((401, AuthError), (403, AuthError), (400, AccountError)):
        h = build(ConvirzaProvider, account(), lambda r, s=status: reply({"code": s, "message": TOKEN}, s))
        with pytest.raises(error) as info:
            list(h.provider.list_recordings(FEB))
        assert_clean(info.value)


def test_error_code_in_a_200_body_is_believed_and_masked(build: Any) -> None:
    h = build(ConvirzaProvider, account(), lambda r: reply({"code": 401, "message": f"bad token {TOKEN}"}))
    with pytest.raises(AuthError) as info:
        list(h.provider.list_recordings(FEB))
    assert_clean(info.value)


def test_class_attributes_and_media_hosts(build: Any) -> None:
    h = build(ConvirzaProvider, account(), lambda r: reply(page([], 0)))
    assert h.provider.media_hosts() == ["*.convirza.com"]
    assert ConvirzaProvider.max_page_size == 200 and ConvirzaProvider.default_rate_limit == 5.0
    assert ConvirzaProvider.client_auth(account()) == ({"Authorization": f"Bearer {TOKEN}"}, {})


def test_a_vendor_that_keeps_shifting_is_relisted_only_once(build: Any) -> None:
    data = [call(i, "2026-02-14T00:00:00Z") for i in range(300)]

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        answer = reply(page(data[offset:offset + 200], len(data)))
        data.insert(0, call(f"new{len(data)}", "2026-02-14T00:00:00Z"))
        return answer

    h = build(ConvirzaProvider, account(), handler)
    ids = [r.recording_id for r in h.provider.list_recordings(FEB)]
    assert len(ids) == len(set(ids))
    assert [h.params(i)["offset"] for i in range(len(h.requests))] == ["0", "200", "0", "200"]


@pytest.mark.parametrize(("bad", "field"), [
    ({"call_started": "yesterday"}, "call_started"),
    ({"duration": "long"}, "duration"),
    ({"recording_details": "x"}, "recording_details"),
    ({"recording_details": {"url": ["x"]}}, "recording_details.url"),
])
def test_one_bad_call_is_invalid_and_the_others_are_listed(build: Any, bad: dict[str, Any], field: str) -> None:
    calls = [call(1, "2026-02-14T00:00:00Z"), {**call(2, "2026-02-14T00:00:01Z"), **bad},
             call(3, "2026-02-14T00:00:02Z")]
    h = build(ConvirzaProvider, account(), lambda r: reply(page(calls, 3)))
    found = {r.recording_id: r for r in h.provider.list_recordings(FEB)}
    assert sorted(found) == ["1", "2", "3"]
    assert found["1"].readiness is found["3"].readiness is Readiness.READY
    assert found["2"].readiness is Readiness.INVALID and field in (found["2"].problem or "")
    assert FEB.contains(found["2"].listed_at)  # listed inside the window: the watermark passes it
    assert_no_query(found["2"].source)


def test_a_recent_call_without_a_recording_is_not_ready_an_old_one_has_none(build: Any) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    recent, old = now - timedelta(hours=1), now - timedelta(hours=30)
    calls = [call(1, old.isoformat(), url=False), call(2, recent.isoformat(), url=False)]
    h = build(ConvirzaProvider, account(), lambda r: reply(page(calls, 2)))
    found = {r.recording_id: r.readiness for r in h.provider.list_recordings(Window(now - timedelta(days=2), now))}
    assert found == {"1": Readiness.NO_RECORDING, "2": Readiness.NOT_READY}
    h = build(ConvirzaProvider, account(no_recording_after="2h"), lambda r: reply(page(calls, 2)))
    found = {r.recording_id: r.readiness for r in h.provider.list_recordings(Window(now - timedelta(days=2), now))}
    assert found == {"1": Readiness.NO_RECORDING, "2": Readiness.NOT_READY}
    h = build(ConvirzaProvider, account(no_recording_after="30m"), lambda r: reply(page(calls, 2)))
    found = {r.recording_id: r.readiness for r in h.provider.list_recordings(Window(now - timedelta(days=2), now))}
    assert found == {"1": Readiness.NO_RECORDING, "2": Readiness.NO_RECORDING}


def test_the_public_pages_example_parses(build: Any) -> None:
    """"Get calls list" (docs.convirza.com): the example answer, as published, lists one ready call."""
    h = build(ConvirzaProvider, account(), lambda r: reply(CONVIRZA_CALLS))
    [found] = h.provider.list_recordings(FEB)
    assert found.recording_id == "987654" and found.readiness is Readiness.READY
    assert found.started_at == datetime(2026, 2, 14, 18, 20, 12, tzinfo=UTC)
    assert found.vendor_duration_seconds == 182.0 and found.expires_at == datetime.fromtimestamp(1775462400, UTC)
    assert found.hint["url"].startswith("https://api.convirza.com/v3/recordings/987654?")
    assert_no_query(found.source)
