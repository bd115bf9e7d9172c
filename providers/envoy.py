"""Envoy: calls from ``GET api/v1/calls`` and their recordings from ``.../{call_id}/recording`` (doc 003).

The document covers the recording endpoint only; the list endpoint follows PROVIDERS.md:
``GET api/v1/calls?limit=100&created_after=ISO&cursor=C`` answering ``{"data": [...], "next_cursor"}``
(``calls`` or ``items`` accepted for ``data``, ``id`` for ``call_id``), until ``next_cursor`` is null
or a page is empty. There is no upper bound parameter: calls created after the window are read and
dropped by our own filter. Whether ``created_after`` is inclusive is not documented, so we ask from
one second before ``since`` and let our filter keep ``since`` itself.

A list entry may not say anything about its recording: then it is listed as ready (a candidate) and
``resolve_media`` decides. When it does carry ``recording_status``: ``completed`` is ready, ``failed``
has no recording, anything else (``processing``, ``pending``) is not ready; without a status, an
explicit ``has_recording: false`` means no recording. The start time is ``recording_start_time``,
else the call's ``started_at``, else ``created_at`` (the listing time).

Media: ``GET api/v1/calls/{call_id}/recording`` just before the download (its URL is time-limited).
``recording_status`` not completed raises ``NotReady``; ``failed`` and a 404 raise ``NoRecording``; a
422 parks the call (permanent); 401/403 fail the account. ``file_size_bytes`` becomes the expected
size and ``content_type`` ``video/mp4`` marks a video. The URL carries its own authority: no headers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urljoin

from providers._classify import Action
from providers._paging import CursorPaginator, Page, in_window_once, iso_utc, paginate
from providers._parse import as_bool, as_float, as_int, as_list, as_mapping, as_text, optional_time, parse_vendor_time
from providers._vendor import VendorBase
from providers.base import MediaLink, Readiness, Recording, Window
from worker.errors import BadVendorData, NoRecording, NotReady
from worker.redact import scrub_record

if TYPE_CHECKING:
    from config.settings import AccountSettings

__all__ = ["EnvoyProvider"]

CALLS_PATH = "api/v1/calls"
PAGE_SIZE = 100
#: ``created_after`` may be exclusive: ask from this much earlier, our filter keeps the window exact
CREATED_AFTER_SLACK = timedelta(seconds=1)
READY_STATUSES = frozenset({"completed", "complete"})
NO_RECORDING_STATUSES = frozenset({"failed"})
#: PROVIDERS.md: 404 no recording, 422 permanent for this call, 401/403 the account, 429 rate limited
_RECORDING_OVERRIDES: Mapping[int, Action] = {
    401: Action.FAIL_ACCOUNT,
    403: Action.FAIL_ACCOUNT,
    404: Action.NO_RECORDING,
    422: Action.PARK,
    429: Action.RATE_LIMITED,
}


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

    # -- listing -------------------------------------------------------------------------------

    def list_recordings(self, window: Window) -> Iterator[Recording]:
        return in_window_once(self._all_pages(window), window)

    def _all_pages(self, window: Window) -> Iterator[Recording]:
        if window.since >= window.until:
            return
        base = {"limit": PAGE_SIZE, "created_after": iso_utc(window.since - CREATED_AFTER_SLACK)}

        def fetch(cursor: str | None) -> Page:
            return read_page(self.client.get_json(CALLS_PATH, {**base, "cursor": cursor}))

        for page in paginate(fetch, CursorPaginator(what="envoy calls")):
            for raw in page.items:
                yield self._listed(raw)

    def _listed(self, raw: Any) -> Recording:
        record = as_mapping(raw, "envoy call")
        raw_id = record.get("call_id")
        call_id = as_text(record.get("id") if raw_id in (None, "") else raw_id, "envoy call: call_id")
        assert call_id is not None
        where = f"envoy call {call_id}"
        created = parse_vendor_time(record.get("created_at"), f"{where}: created_at")
        started = optional_time(record.get("recording_start_time"), f"{where}: recording_start_time")
        if started is None:
            started = optional_time(record.get("started_at"), f"{where}: started_at")
        status = as_text(record.get("recording_status"), f"{where}: recording_status", required=False)
        readiness = Readiness.READY if status is None else _readiness(status)
        if status is None and not as_bool(record.get("has_recording"), f"{where}: has_recording", default=True):
            readiness = Readiness.NO_RECORDING
        content_type = as_text(record.get("content_type"), f"{where}: content_type", required=False)
        return Recording(
            provider=self.name,
            account=self.account.name,
            recording_id=call_id,
            started_at=started or created,
            listed_at=created,
            readiness=readiness,
            vendor_duration_seconds=as_float(record.get("duration_seconds"), f"{where}: duration_seconds"),
            is_video=_is_video(content_type),
            source=scrub_record(record),
        )

    # -- one call, media -----------------------------------------------------------------------

    def _fetch_recording(self, call_id: str) -> Mapping[str, Any]:
        path = f"{CALLS_PATH}/{quote(call_id, safe='')}/recording"
        body = self.client.get_json(path, overrides=_RECORDING_OVERRIDES, recording_id=call_id)
        body = as_mapping(body, f"envoy recording of {call_id}")
        data = body.get("data")
        return data if isinstance(data, Mapping) and "recording_status" in data else body

    def get_recording(self, recording_id: str) -> Recording:
        """Built from the recording endpoint: its ``recording_start_time`` is both start and listing time."""
        record = self._fetch_recording(recording_id)
        where = f"envoy recording of {recording_id}"
        status = as_text(record.get("recording_status"), f"{where}: recording_status", required=False)
        readiness = _readiness(status) if status is not None else Readiness.READY
        started = optional_time(record.get("recording_start_time"), f"{where}: recording_start_time")
        if started is None:
            if readiness is Readiness.NOT_READY:
                raise NotReady("envoy has not started this recording yet", recording_id=recording_id)
            if readiness is Readiness.NO_RECORDING:
                raise NoRecording("envoy reports the recording failed", recording_id=recording_id)
            raise BadVendorData(f"{where}: recording_start_time: missing", recording_id=recording_id)
        content_type = as_text(record.get("content_type"), f"{where}: content_type", required=False)
        return Recording(
            provider=self.name,
            account=self.account.name,
            recording_id=recording_id,
            started_at=started,
            listed_at=started,
            readiness=readiness,
            vendor_duration_seconds=as_float(record.get("duration_seconds"), f"{where}: duration_seconds"),
            is_video=_is_video(content_type),
            source=scrub_record(record),
        )

    def resolve_media(self, recording: Recording, *, refresh: bool = False) -> MediaLink:
        call_id = recording.recording_id
        record = self._fetch_recording(call_id)
        where = f"envoy recording of {call_id}"
        status = as_text(record.get("recording_status"), f"{where}: recording_status", required=False)
        url = as_text(record.get("url"), f"{where}: url", required=False)
        if status is None and not url:
            raise NotReady("envoy gives no recording status or URL yet", recording_id=call_id)
        if status is not None:
            readiness = _readiness(status)
            if readiness is Readiness.NO_RECORDING:
                raise NoRecording(f"envoy reports recording_status {status!r}", recording_id=call_id)
            if readiness is Readiness.NOT_READY:
                raise NotReady(f"envoy reports recording_status {status!r}", recording_id=call_id)
        if not url:
            raise BadVendorData(f"{where}: url: missing for a completed recording", recording_id=call_id)
        content_type = as_text(record.get("content_type"), f"{where}: content_type", required=False)
        size = as_int(record.get("file_size_bytes"), f"{where}: file_size_bytes")
        return MediaLink(
            url=urljoin(self.client.url_for(CALLS_PATH), url),
            expires_at=optional_time(record.get("expires_at"), f"{where}: expires_at"),
            expected_size=size if size is not None and size > 0 else None,
            content_type=content_type,
            is_video=_is_video(content_type),
        )


def read_page(body: Any) -> Page:
    """``{"data" | "calls" | "items": [...], "next_cursor": ...}``."""
    body = as_mapping(body, "envoy calls response")
    for key in ("data", "calls", "items"):
        if key in body:
            items = as_list(body.get(key), f"envoy calls response: {key}")
            break
    else:
        raise BadVendorData("envoy calls response: data: missing")
    return Page(items=items, next=body.get("next_cursor"))


def _readiness(status: str) -> Readiness:
    lowered = status.strip().lower()
    if lowered in READY_STATUSES:
        return Readiness.READY
    if lowered in NO_RECORDING_STATUSES:
        return Readiness.NO_RECORDING
    return Readiness.NOT_READY


def _is_video(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower().startswith("video/")
