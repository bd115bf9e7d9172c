"""Pagination as small objects (Meltano SDK style) and the listing rules every provider shares.

A provider turns each vendor answer into a ``Page`` (its items plus what the vendor said about what
comes next) and lets a ``Paginator`` decide the next request token: ``next_token(page)`` returns the
token or ``None`` to stop. Every paginator stops on an empty page (whatever a ``total`` claims), refuses
to see the same token twice and gives up after ``MAX_PAGES`` pages, so a vendor that loops can never
keep a discovery pass running forever: it raises ``BadVendorData`` instead.

Offset and page-number paging over live data shifts: a call inserted before our current offset
pushes an item we have not seen yet back onto a page we already read (it is skipped on this pass),
and the last item of that page shows up again on the next. ``relisted_on_shift`` watches one pass
for the signs (a ``total`` that changed between pages, or an id seen twice) and, if it saw any, lists
the same range once more from the start; the duplicates that brings are dropped by
``in_window_once``. What is still missed is found by the next pass, which re-lists a lookback window.

``in_window_once`` applies the two rules that hold whatever the paging style: keep only recordings
whose ``listed_at`` lies in the half-open window (vendors' filters are not trusted to be exact), and
yield each recording id once per listing (offset pages shift while calls arrive, so an item can show
up on two pages). It remembers the ids of the last ``ONCE_SPAN`` to ``2 * ONCE_SPAN`` recordings, not
of the whole listing, so a backfill of millions stays in bounded memory (about 90 bytes an id); a
duplicate further apart than that (a relisted range of more than ``ONCE_SPAN`` calls) is harmless:
the pipeline finds the recording committed, or its conditional writes settle two attempts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from providers._parse import as_int, as_text
from providers.base import Recording, Window
from worker.errors import BadVendorData

__all__ = [
    "MAX_PAGES",
    "CursorPaginator",
    "OffsetPaginator",
    "Page",
    "PageNumberPaginator",
    "Paginator",
    "ShiftWatch",
    "in_window_once",
    "iso_utc",
    "paginate",
    "relisted_on_shift",
]

#: a listing longer than this many pages is taken for a vendor that loops, not for real data
MAX_PAGES = 100_000
#: ``in_window_once`` remembers at least this many of the latest ids (at most twice as many)
ONCE_SPAN = 100_000

T = TypeVar("T")


@dataclass(frozen=True)
class Page:
    """One vendor answer, reduced to what paging needs.

    ``total`` is the vendor's count of matching items (offset APIs); ``next`` the token it announced
    (a cursor or a page number); ``announced`` says whether the answer could carry ``next`` at all
    (Salesloft's bare-array answer cannot, so a full page there means "ask for the next one").
    """

    items: Sequence[Any]
    total: int | None = None
    next: Any = None
    announced: bool = True


class Paginator(Generic[T]):
    """Holds the current token; ``advance(page)`` moves to ``next_token(page)`` or finishes."""

    def __init__(self, start_value: T, *, what: str, max_pages: int = MAX_PAGES) -> None:
        self.current_value: T = start_value
        self.finished = False
        self.pages = 0
        self.what = what
        self.max_pages = max_pages
        self._seen: set[Any] = {start_value}

    def next_token(self, page: Page) -> T | None:
        """The token for the page after ``page``; ``None`` when there is none. Override this."""
        raise NotImplementedError

    def advance(self, page: Page) -> None:
        self.pages += 1
        token = self.next_token(page) if page.items else None
        if token is None:
            self.finished = True
            return
        if self.pages >= self.max_pages:
            raise BadVendorData(
                f"{self.what}: more than {self.max_pages} pages; the vendor's paging looks endless"
            )
        if token in self._seen:
            # the token itself is not shown: cursors are opaque and may embed vendor state
            raise BadVendorData(
                f"{self.what}: the vendor announced the same page token twice (page {self.pages})"
            )
        self._seen.add(token)
        self.current_value = token


class OffsetPaginator(Paginator[int]):
    """``offset`` paging: the next offset is this one plus the items received.

    With a ``total`` the listing ends once ``offset + len(items) >= total``; without one, a page
    shorter than ``page_size`` is the last.
    """

    def __init__(self, page_size: int, *, what: str, start: int = 0, max_pages: int = MAX_PAGES) -> None:
        super().__init__(start, what=what, max_pages=max_pages)
        self.page_size = page_size

    def next_token(self, page: Page) -> int | None:
        following = self.current_value + len(page.items)
        if page.total is not None:
            return following if following < page.total else None
        return following if len(page.items) >= self.page_size else None


class CursorPaginator(Paginator["str | None"]):
    """Opaque cursor paging: the first request has no cursor; a null or empty cursor ends the listing."""

    def __init__(self, *, what: str, max_pages: int = MAX_PAGES) -> None:
        super().__init__(None, what=what, max_pages=max_pages)

    def next_token(self, page: Page) -> str | None:
        return as_text(page.next, f"{self.what}: next cursor", required=False)


class PageNumberPaginator(Paginator[int]):
    """``page=N`` paging from 1: the vendor's ``next`` page number, or N+1 after a full bare page."""

    def __init__(self, page_size: int, *, what: str, max_pages: int = MAX_PAGES) -> None:
        super().__init__(1, what=what, max_pages=max_pages)
        self.page_size = page_size

    def next_token(self, page: Page) -> int | None:
        if page.announced:
            return as_int(page.next, f"{self.what}: next page")
        return self.current_value + 1 if len(page.items) >= self.page_size else None


def paginate(fetch: Callable[[T], Page], paginator: Paginator[T]) -> Iterator[Page]:
    """Fetch page after page until the paginator says stop; pages are yielded as they arrive."""
    while not paginator.finished:
        page = fetch(paginator.current_value)
        yield page
        paginator.advance(page)


class ShiftWatch:
    """Signs, during one listing pass, that the pages shifted under us."""

    def __init__(self) -> None:
        self.shifted = False
        self._totals: set[int] = set()
        self._ids: set[str] = set()

    def page(self, page: Page) -> None:
        if page.total is not None:
            self._totals.add(page.total)
            self.shifted = self.shifted or len(self._totals) > 1

    def saw(self, recording_id: str) -> None:
        if recording_id in self._ids:
            self.shifted = True
        self._ids.add(recording_id)


def relisted_on_shift(one_pass: Callable[[ShiftWatch], Iterator[Recording]]) -> Iterator[Recording]:
    """Run ``one_pass``; if it reports a shift, run it once more (never more: a busy vendor would
    otherwise keep us relisting for ever)."""
    watch = ShiftWatch()
    yield from one_pass(watch)
    if watch.shifted:
        yield from one_pass(ShiftWatch())


def in_window_once(recordings: Iterable[Recording], window: Window, span: int = ONCE_SPAN) -> Iterator[Recording]:
    """Recordings whose ``listed_at`` is in ``[since, until)``, each ``recording_id`` once (first wins)
    among the latest ``span`` to ``2 * span`` ids (two generations of a set: bounded memory)."""
    seen: set[str] = set()
    older: set[str] = set()
    for recording in recordings:
        rid = recording.recording_id
        if not window.contains(recording.listed_at) or rid in seen or rid in older:
            continue
        if len(seen) >= span:
            older, seen = seen, set()
        seen.add(rid)
        yield recording


def iso_utc(moment: datetime, *, ceil: bool = False) -> str:
    """``moment`` as ISO 8601 UTC with a ``Z``, to the millisecond (whole seconds print without).

    ``ceil`` rounds a sub-millisecond remainder up instead of down: an upper bound sent to a vendor
    must never be earlier than ours, or the vendor would leave out items we want.
    """
    moment = moment.astimezone(UTC)
    remainder = moment.microsecond % 1000
    if remainder:
        moment -= timedelta(microseconds=remainder)
        if ceil:
            moment += timedelta(milliseconds=1)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
