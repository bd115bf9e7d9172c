"""Envoy (tryenvoy.ai): calls from ``GET api/v1/calls``, their recordings from ``.../{call_id}/recording``.

Public pages this module follows (PROVIDERS.md, Envoy; they win over any assumption):

- "List calls", https://docs.tryenvoy.ai/api-reference/endpoints/calls/list — ``GET /api/v1/calls``
  with ``start_date``/``end_date`` (``YYYY-MM-DD``, whole days) answering ``{"data": [call, ...],
  "pagination": {"page", "page_size", "total_count", "total_pages", "has_next", "has_prev"}}``;
- "Pagination", https://docs.tryenvoy.ai/guides/core-concepts/pagination — ``page`` (from 1) and
  ``page_size`` (default 20, at most 100); stop once ``page >= total_pages``;
- "Get a call", https://docs.tryenvoy.ai/api-reference/endpoints/calls/get — one call, same fields;
- "Get call recording" (seed 003) — ``url`` (time-limited), ``content_type``, ``expires_at``,
  ``recording_status``, ``duration_seconds``, ``file_size_bytes``, ``recording_start_time``; 401,
  403, 404, 422, 429;
- "Get calls for a load" — the only public example with a real ``recording_status``: ``AVAILABLE``.

Listing. Dates are whole days and the pages do not say which time they filter on, so we ask one day
wider on each side and keep only calls whose ``created_at`` (``listed_at``, the stable time the
watermark is kept in) lies in our half-open window. Paging stops at ``page >= total_pages``, at
``has_next: false`` or at an empty page. Page numbers over live data shift like offsets, so a pass
that sees ``total_count`` change or an id twice lists the range once more (``relisted_on_shift``).

A call: ``id`` (``call_<uuid>``; ``call_id`` accepted), start ``call_start_time``, else
``recording_start_time``, else ``created_at``. ``recording_status`` compared case-insensitively:
``available``/``completed``/``complete``/``ready`` is ready; ``failed``/``none``/``not_recorded`` has
no recording (final only ``no_recording_after`` the call's start; before that it is not ready);
anything else is not ready and named in ``Recording.unknown_status``. A call listed without a
``recording_status`` is a candidate and ``resolve_media`` decides. A call whose id is usable but whose
other fields are not is ``INVALID`` (parked alone); a call without a usable id, or a page that is not
the envelope, stops the account's pass.

Media: ``GET api/v1/calls/{call_id}/recording`` just before the download. 404 is "no recording"
(with the same age rule), 422 is permanent for that call, 401/403 fail the account. The URL carries
its own authority (no headers) and lives on a storage host, not the API host: default media hosts
``*.tryenvoy.ai``, ``*.amazonaws.com``, ``*.cloudfront.net``, ``storage.googleapis.com`` (no public
page names the storage host; these are assumptions, widened by ``allowed_media_hosts``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from providers._classify import Action
from providers._paging import Page, Paginator, ShiftWatch, in_window_once, paginate, relisted_on_shift
from providers._parse import as_bool, as_float, as_int, as_list, as_mapping, as_text, optional_time, parse_vendor_time
from providers._vendor import VendorBase, join_url, time_or
from providers.base import MediaLink, Readiness, Recording, Window
from worker.errors import BadVendorData, NoRecording, NotReady
from worker.redact import scrub_record

if TYPE_CHECKING:
    from config.settings import AccountSettings

__all__ = ["EnvoyProvider", "classify_status", "read_page"]

CALLS_PATH = "api/v1/calls"
PAGE_SIZE = 100
#: whole-day filters of unknown reference: one day wider on each side, our own filter keeps the window
DATE_SLACK = timedelta(days=1)
READY_STATUSES = frozenset({"available", "completed", "complete", "ready"})
NO_RECORDING_STATUSES = frozenset({"failed", "none", "not_recorded"})
#: PROVIDERS.md: 404 no recording, 422 permanent for this call, 401/403 the account, 429 rate limited
_RECORDING_OVERRIDES: Mapping[int, Action] = {
    401: Action.FAIL_ACCOUNT,
    403: Action.FAIL_ACCOUNT,
    404: Action.NO_RECORDING,
    422: Action.PARK,
    429: Action.RATE_LIMITED,
}
_CALL_OVERRIDES: Mapping[int, Action] = {404: Action.NO_RECORDING, 422: Action.PARK}


class EnvoyProvider(VendorBase):
    """Envoy calls and their time-limited recording URLs."""

    name: ClassVar[str] = "envoy"
    max_page_size: ClassVar[int] = PAGE_SIZE

    @classmethod
    def client_auth(cls, account: AccountSettings) -> tuple[dict[str, str], dict[str, str]]:
        headers, params = super().client_auth(account)
        if account.organization_id:
            headers["X-Organization-ID"] = account.organization_id
        return headers, params

    def media_hosts(self) -> list[str]:
        return ["*.tryenvoy.ai", "*.amazonaws.com", "*.cloudfront.net", "storage.googleapis.com"]

    # -- listing -------------------------------------------------------------------------------

    def list_recordings(self, window: Window) -> Iterator[Recording]:
        return in_window_once(self._all_pages(window), window)

    def _all_pages(self, window: Window) -> Iterator[Recording]:
        if window.since >= window.until:
            return
        base = {
            "start_date": _day(window.since - DATE_SLACK),
            "end_date": _day(window.until + DATE_SLACK),
            "page_size": PAGE_SIZE,
        }

        def one_pass(watch: ShiftWatch) -> Iterator[Recording]:
            def fetch(page_number: int) -> Page:
                return read_page(self.client.get_json(CALLS_PATH, {**base, "page": page_number}), page_number)

            for page in paginate(fetch, EnvoyPaginator(what="envoy calls")):
                watch.page(page)
                for raw in page.items:
                    recording = self._listed(raw, fallback=window.since)
                    watch.saw(recording.recording_id)
                    yield recording

        yield from relisted_on_shift(one_pass)

    def _listed(self, raw: Any, *, fallback: datetime) -> Recording:
        record = as_mapping(raw, "envoy call")
        raw_id = record.get("id")
        call_id = as_text(record.get("call_id") if raw_id in (None, "") else raw_id, "envoy call: id")
        assert call_id is not None
        at = time_or(record.get("created_at"), fallback)
        return self.parsed_or_invalid(call_id, lambda: self._call(call_id, record), at=at, source=record)

    def _call(self, call_id: str, record: Mapping[str, Any]) -> Recording:
        where = f"envoy call {call_id}"
        created = parse_vendor_time(record.get("created_at"), f"{where}: created_at")
        started = (optional_time(record.get("call_start_time"), f"{where}: call_start_time")
                   or optional_time(record.get("recording_start_time"), f"{where}: recording_start_time")
                   or created)
        status = as_text(record.get("recording_status"), f"{where}: recording_status", required=False)
        readiness, unknown = Readiness.READY, None
        if status is not None:
            readiness, unknown = self._readiness(status, started)
        elif not as_bool(record.get("has_recording"), f"{where}: has_recording", default=True):
            readiness = self.no_recording_yet(started)
        content_type = as_text(record.get("content_type"), f"{where}: content_type", required=False)
        duration = as_float(record.get("duration_seconds"), f"{where}: duration_seconds")
        if duration is None and record.get("call_end_time") not in (None, ""):
            ended = parse_vendor_time(record.get("call_end_time"), f"{where}: call_end_time")
            duration = max(0.0, (ended - started).total_seconds())
        return Recording(
            provider=self.name,
            account=self.account.name,
            recording_id=call_id,
            started_at=started,
            listed_at=created,
            readiness=readiness,
            vendor_duration_seconds=duration,
            is_video=_is_video(content_type),
            source=scrub_record(record),
            unknown_status=unknown,
        )

    def _readiness(self, status: str, started: datetime) -> tuple[Readiness, str | None]:
        kind = classify_status(status)
        if kind == "ready":
            return Readiness.READY, None
        if kind == "none":
            return self.no_recording_yet(started), None
        return Readiness.NOT_READY, status

    # -- one call, media -----------------------------------------------------------------------

    def get_recording(self, recording_id: str) -> Recording:
        """``GET api/v1/calls/{id}`` ("Get a call"); a 404 means Envoy does not know the call."""
        path = f"{CALLS_PATH}/{quote(recording_id, safe='')}"
        body = self.client.get_json(path, overrides=_CALL_OVERRIDES, recording_id=recording_id)
        body = as_mapping(body, f"envoy call {recording_id}")
        data = body.get("data")
        record = data if isinstance(data, Mapping) else body
        return self._listed(record, fallback=datetime.now(UTC))

    def resolve_media(self, recording: Recording, *, refresh: bool = False) -> MediaLink:
        call_id = recording.recording_id
        path = f"{CALLS_PATH}/{quote(call_id, safe='')}/recording"
        try:
            body = self.client.get_json(path, overrides=_RECORDING_OVERRIDES, recording_id=call_id)
        except NoRecording:
            if self.no_recording_yet(recording.started_at) is Readiness.NOT_READY:
                raise NotReady("envoy has no recording for this call yet (404)", recording_id=call_id) from None
            raise
        record = as_mapping(body, f"envoy recording of {call_id}")
        data = record.get("data")
        if isinstance(data, Mapping) and ("url" in data or "recording_status" in data):
            record = data
        where = f"envoy recording of {call_id}"
        status = as_text(record.get("recording_status"), f"{where}: recording_status", required=False)
        url = as_text(record.get("url"), f"{where}: url", required=False)
        if status is not None:
            readiness, unknown = self._readiness(status, recording.started_at)
            if readiness is Readiness.NO_RECORDING:
                raise NoRecording(f"envoy reports recording_status {status!r}", recording_id=call_id)
            if readiness is Readiness.NOT_READY:
                what = "an unknown" if unknown else "a"
                raise NotReady(f"envoy reports {what} recording_status {status!r}", recording_id=call_id)
        if not url:
            if status is None:
                raise NotReady("envoy gives no recording status or URL yet", recording_id=call_id)
            raise BadVendorData(f"{where}: url: missing for an available recording", recording_id=call_id)
        content_type = as_text(record.get("content_type"), f"{where}: content_type", required=False)
        size = as_int(record.get("file_size_bytes"), f"{where}: file_size_bytes")
        return MediaLink(
            url=join_url(self.client.url_for(CALLS_PATH), url, what=f"{where}: url", recording_id=call_id),
            expires_at=optional_time(record.get("expires_at"), f"{where}: expires_at"),
            expected_size=size if size is not None and size > 0 else None,
            content_type=content_type,
            is_video=recording.is_video or _is_video(content_type),
        )


class EnvoyPaginator(Paginator[int]):
    """``page=N`` from 1; the page after N is N+1 unless the answer says N was the last."""

    def __init__(self, *, what: str) -> None:
        super().__init__(1, what=what)

    def next_token(self, page: Page) -> int | None:
        return self.current_value + 1 if page.next else None


def read_page(body: Any, page_number: int) -> Page:
    """The documented envelope; ``next`` is whether a page after ``page_number`` exists."""
    body = as_mapping(body, "envoy calls response")
    if "data" not in body:
        raise BadVendorData("envoy calls response: data: missing")
    items = as_list(body.get("data"), "envoy calls response: data")
    paging_raw = body.get("pagination")
    paging = {} if paging_raw is None else as_mapping(paging_raw, "envoy calls response: pagination")
    total = as_int(paging.get("total_count"), "envoy calls response: pagination.total_count")
    pages = as_int(paging.get("total_pages"), "envoy calls response: pagination.total_pages")
    has_next = paging.get("has_next")
    if pages is not None:
        more = page_number < pages
    elif has_next is not None:
        more = as_bool(has_next, "envoy calls response: pagination.has_next")
    else:
        more = len(items) >= PAGE_SIZE
    if more and has_next is not None and not as_bool(has_next, "envoy calls response: pagination.has_next"):
        more = False
    return Page(items=items, total=total, next=more)


def classify_status(status: str) -> str:
    """``"ready"``, ``"none"`` (no recording) or ``"other"`` for a ``recording_status``, any case."""
    lowered = status.strip().lower()
    if lowered in READY_STATUSES:
        return "ready"
    if lowered in NO_RECORDING_STATUSES:
        return "none"
    return "other"


def _day(moment: datetime) -> str:
    value: date = moment.astimezone(UTC).date()
    return value.isoformat()


def _is_video(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower().startswith("video/")
