"""The shared paginators and listing rules of providers/_paging.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from providers._paging import (
    CursorPaginator,
    OffsetPaginator,
    Page,
    PageNumberPaginator,
    in_window_once,
    iso_utc,
    paginate,
)
from providers.base import Recording, Window
from worker.errors import BadVendorData


def test_offset_paginator_uses_total_then_page_size() -> None:
    paginator = OffsetPaginator(10, what="t")
    assert paginator.next_token(Page(items=[1] * 10, total=25)) == 10
    paginator.advance(Page(items=[1] * 10, total=25))
    assert paginator.current_value == 10
    paginator.advance(Page(items=[1] * 10, total=20))
    assert paginator.finished
    no_total = OffsetPaginator(10, what="t")
    no_total.advance(Page(items=[1] * 10))
    assert no_total.current_value == 10
    no_total.advance(Page(items=[1] * 3))
    assert no_total.finished


def test_every_paginator_stops_on_an_empty_page() -> None:
    for paginator in (OffsetPaginator(10, what="t"), CursorPaginator(what="t"), PageNumberPaginator(10, what="t")):
        paginator.advance(Page(items=[], total=500, next="more"))
        assert paginator.finished


def test_cursor_paginator_refuses_a_repeated_cursor() -> None:
    paginator = CursorPaginator(what="demo")
    paginator.advance(Page(items=[1], next="a"))
    paginator.advance(Page(items=[1], next="b"))
    with pytest.raises(BadVendorData) as info:
        paginator.advance(Page(items=[1], next="a"))
    assert "same page token" in str(info.value) and "demo" in str(info.value)
    ended = CursorPaginator(what="t")
    ended.advance(Page(items=[1], next=""))
    assert ended.finished


def test_page_number_paginator() -> None:
    announced = PageNumberPaginator(100, what="t")
    announced.advance(Page(items=[1], next="2"))
    assert announced.current_value == 2
    with pytest.raises(BadVendorData):
        announced.advance(Page(items=[1], next=1))
    bare = PageNumberPaginator(2, what="t")
    bare.advance(Page(items=[1, 2], announced=False))
    assert bare.current_value == 2
    bare.advance(Page(items=[1], announced=False))
    assert bare.finished


def test_page_cap_stops_an_endless_listing() -> None:
    counter = iter(range(10**6))
    paginator = CursorPaginator(what="loop", max_pages=50)
    with pytest.raises(BadVendorData) as info:
        for _page in paginate(lambda _c: Page(items=[1], next=str(next(counter))), paginator):
            pass
    assert paginator.pages == 50 and "50 pages" in str(info.value)


def test_in_window_once() -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)

    def rec(rid: str, offset: float) -> Recording:
        moment = since + timedelta(seconds=offset)
        return Recording(provider="p", account="a", recording_id=rid, started_at=moment, listed_at=moment)

    window = Window(since, since + timedelta(seconds=10))
    kept = in_window_once([rec("a", 0), rec("b", -0.001), rec("a", 5), rec("c", 10), rec("d", 9.999)], window)
    assert [(r.recording_id, r.listed_at) for r in kept] == [("a", since), ("d", since + timedelta(seconds=9.999))]


def test_in_window_once_remembers_a_bounded_span_of_ids() -> None:
    """Bounded memory over a backfill of millions: ids within ``span`` of each other are listed once,
    an id met again much later (harmless: the pipeline finds it committed) is let through."""
    since = datetime(2026, 1, 1, tzinfo=UTC)
    window = Window(since, since + timedelta(days=1))

    def rec(rid: str) -> Recording:
        return Recording(provider="p", account="a", recording_id=rid, started_at=since, listed_at=since)

    ids = ["a", "b", "a", "c", "d", "e", "a", "e"]
    kept = [r.recording_id for r in in_window_once([rec(rid) for rid in ids], window, span=2)]
    assert kept == ["a", "b", "c", "d", "e", "a"]
    assert [r.recording_id for r in in_window_once([rec(rid) for rid in ids], window)] == ["a", "b", "c", "d", "e"]


def test_iso_utc() -> None:
    moment = datetime(2026, 2, 1, 12, 0, 0, 123_456, tzinfo=UTC)
    assert iso_utc(moment) == "2026-02-01T12:00:00.123Z"
    assert iso_utc(moment, ceil=True) == "2026-02-01T12:00:00.124Z"
    assert iso_utc(datetime(2026, 2, 1, tzinfo=UTC), ceil=True) == "2026-02-01T00:00:00Z"
    assert iso_utc(datetime(2026, 2, 1, 23, 59, 59, 999_999, tzinfo=UTC), ceil=True) == "2026-02-02T00:00:00Z"
    east = datetime(2026, 2, 1, 1, tzinfo=UTC).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))
    assert iso_utc(east) == "2026-02-01T01:00:00Z"
