"""Convirza: ``GET v3/conversations/calls`` with offset paging and signed recording URLs (document 002).

Public page: "Get calls list", https://docs.convirza.com/get-calls-list-31106437e0 (seed 002).

Listing. The API refuses ranges longer than 31 days and wants ``end > start``, so a window is cut
into chunks of at most 31 days, each listed with ``limit=200``, ``offset`` paging until
``offset + len(calls) >= total`` (or an empty page) and ``include=recordings`` so that every call
comes with its signed URL.

Offset paging over a live data set shifts: a call that arrives while we page pushes the later ones
one slot further, so we see an item twice (deduplicated), or a call inserted *before* the current
offset pushes an unseen item back to an offset we already read, so that item is skipped on this
pass. Two defences: when the vendor's ``total`` changes between pages of a chunk, or an id shows up
twice, the chunk is listed once more from offset 0 (duplicates are dropped; ``relisted_on_shift``);
and the pipeline re-lists a lookback window on every pass (``schedule.lookback``), which is why a
Convirza listing is "re-listed" rather than trusted to be complete in one go.

One call whose id is usable but whose other fields are not is ``INVALID`` (parked alone, the pass
goes on); a call without a usable ``call_id``, or a page that is not the envelope, stops the account's
pass. A call listed without a recording URL has no recording, final only once it is older than
``no_recording_after`` (before that it is not ready: the recording may still be processed). Convirza
publishes no recording status field, so there is no unknown status to report.

Media. The listing's signed URL (valid 7 days, ``expires_at`` in unix seconds) is used as is until
it expires or the downloader saw a 410; then the call is re-read in single-record mode
(``call_id`` + ``include=recordings``) for a fresh URL. The signed URL lives on another host
(``api.`` vs ``platform-api.``) and carries its own authority: no credentials go with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from providers._classify import Action
from providers._paging import (
    OffsetPaginator,
    Page,
    ShiftWatch,
    in_window_once,
    iso_utc,
    paginate,
    relisted_on_shift,
)
from providers._parse import as_float, as_int, as_list, as_mapping, as_text, optional_time, parse_vendor_time
from providers._vendor import VendorBase, time_or
from providers.base import MediaLink, Readiness, Recording, Window
from worker.errors import AccountError, AuthError, BadVendorData, NoRecording
from worker.redact import mask_secrets, scrub_record

if TYPE_CHECKING:
    from config.settings import AccountSettings

__all__ = ["ConvirzaProvider"]

CALLS_PATH = "v3/conversations/calls"
PAGE_SIZE = 200
#: the API's longest accepted range (document 002: "must not exceed 31 days")
MAX_RANGE = timedelta(days=31)
#: a signed URL this close to its expiry is refreshed rather than handed to the downloader
EXPIRY_MARGIN = timedelta(minutes=1)
#: single-record mode answers 404 for an unknown call: that is "no recording", not a parked failure
_SINGLE_OVERRIDES: Mapping[int, Action] = {404: Action.NO_RECORDING}


class ConvirzaProvider(VendorBase):
    """Convirza calls with their signed recording URLs."""

    name: ClassVar[str] = "convirza"
    max_page_size: ClassVar[int] = PAGE_SIZE

    def media_hosts(self) -> list[str]:
        return ["*.convirza.com"]

    # -- listing -------------------------------------------------------------------------------

    def list_recordings(self, window: Window) -> Iterator[Recording]:
        return in_window_once(self._all_chunks(window), window)

    def _all_chunks(self, window: Window) -> Iterator[Recording]:
        for start, end in chunk_window(window):
            yield from relisted_on_shift(partial(self._list_chunk, start, end))

    def _list_chunk(self, start: datetime, end: datetime, watch: ShiftWatch) -> Iterator[Recording]:
        """One pass over ``[start, end)``, reporting shifted pages to ``watch``."""
        base = {"start": iso_utc(start), "end": iso_utc(end), "limit": PAGE_SIZE, "include": "recordings"}

        def fetch(offset: int) -> Page:
            calls, total = self._read_page(self.client.get_json(CALLS_PATH, {**base, "offset": offset}))
            return Page(items=calls, total=total)

        for page in paginate(fetch, OffsetPaginator(PAGE_SIZE, what="convirza calls")):
            watch.page(page)
            for raw in page.items:
                recording = self._recording(raw, start)
                watch.saw(recording.recording_id)
                yield recording

    def _read_page(self, body: Any) -> tuple[list[Any], int | None]:
        body = as_mapping(body, "convirza calls response")
        _check_code(body, self.account)
        data = as_mapping(body.get("data"), "convirza calls response: data")
        calls = as_list(data.get("calls"), "convirza calls response: data.calls")
        total = as_int(data.get("total"), "convirza calls response: data.total")
        return calls, total

    def _recording(self, raw: Any, fallback: datetime) -> Recording:
        """One call; if its id is usable but another field is not, the call is ``INVALID`` (parked
        alone, PROVIDERS.md general rules) at its ``call_started`` or, failing that, ``fallback``."""
        record = as_mapping(raw, "convirza call")
        call_id = as_text(record.get("call_id"), "convirza call: call_id")
        assert call_id is not None
        at = time_or(record.get("call_started"), fallback)
        return self.parsed_or_invalid(call_id, lambda: self._call(call_id, record), at=at, source=record)

    def _call(self, call_id: str, record: Mapping[str, Any]) -> Recording:
        where = f"convirza call {call_id}"
        started = parse_vendor_time(record.get("call_started"), f"{where}: call_started")
        details_raw = record.get("recording_details")
        details = {} if details_raw is None else as_mapping(details_raw, f"{where}: recording_details")
        url = as_text(details.get("url"), f"{where}: recording_details.url", required=False)
        expires = optional_time(details.get("expires_at"), f"{where}: recording_details.expires_at")
        return Recording(
            provider=self.name,
            account=self.account.name,
            recording_id=call_id,
            started_at=started,
            listed_at=started,
            readiness=Readiness.READY if url else self.no_recording_yet(started),
            vendor_duration_seconds=as_float(record.get("duration"), f"{where}: duration"),
            is_video=False,
            expires_at=expires,
            source=scrub_record(record),
            hint={"url": url} if url else {},
        )

    # -- one call, media -----------------------------------------------------------------------

    def get_recording(self, recording_id: str) -> Recording:
        params = {"call_id": recording_id, "include": "recordings", "limit": 1}
        body = as_mapping(
            self.client.get_json(CALLS_PATH, params, overrides=_SINGLE_OVERRIDES, recording_id=recording_id),
            "convirza call response",
        )
        _check_code(body, self.account)
        data = body.get("data")
        if isinstance(data, Mapping) and "calls" not in data and "call_id" in data:
            candidates: list[Any] = [data]  # a single-record answer may carry the call itself
        else:
            candidates = self._read_page(body)[0]
        for raw in candidates:
            recording = self._recording(raw, datetime.now(UTC))
            if recording.recording_id == recording_id:
                return recording
        raise NoRecording("convirza does not know this call", recording_id=recording_id)

    def resolve_media(self, recording: Recording, *, refresh: bool = False) -> MediaLink:
        url = recording.hint.get("url")
        expires = recording.expires_at
        fresh_enough = expires is None or expires > datetime.now(UTC) + EXPIRY_MARGIN
        if refresh or not isinstance(url, str) or not url or not fresh_enough:
            recording = self.get_recording(recording.recording_id)
            url = recording.hint.get("url")
            expires = recording.expires_at
        if not isinstance(url, str) or not url:
            raise NoRecording("convirza lists no recording URL for this call",
                              recording_id=recording.recording_id)
        return MediaLink(url=url, expires_at=expires, is_video=False)


def chunk_window(window: Window) -> Iterator[tuple[datetime, datetime]]:
    """``[since, until)`` as ranges of at most 31 days with ``end > start``, on millisecond bounds.

    The bounds are widened to whole milliseconds (the precision we send) before cutting, so that no
    chunk as sent can exceed 31 days; nothing at all is yielded for an empty window.
    """
    start = window.since.astimezone(UTC)
    start -= timedelta(microseconds=start.microsecond % 1000)
    until = window.until.astimezone(UTC)
    if until.microsecond % 1000:
        until += timedelta(microseconds=1000 - until.microsecond % 1000)
    while start < until:
        end = min(start + MAX_RANGE, until)
        yield start, end
        start = end


def _check_code(body: Mapping[str, Any], account: AccountSettings) -> None:
    """Convirza repeats the status in the body (``"code": 200``); an error code there is believed."""
    code = body.get("code")
    if code is None or isinstance(code, bool) or not isinstance(code, int | str):
        return
    try:
        status = int(code)
    except ValueError:
        return
    if status < 400:
        return
    message = _vendor_message(body, account)
    if status in (401, 403):
        raise AuthError(f"convirza refused the account's credentials (code {status}: {message})")
    if status == 400:
        raise AccountError(f"convirza rejected the request (code {status}: {message})")
    raise BadVendorData(f"convirza answered with error code {status}: {message}")


def _vendor_message(body: Mapping[str, Any], account: AccountSettings) -> str:
    message = body.get("message")
    text = message if isinstance(message, str) else "no message"
    token = account.token.get_secret_value()
    if token:
        text = text.replace(token, "***")
    return mask_secrets(text)[:200]
