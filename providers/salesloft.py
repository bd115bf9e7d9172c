"""Salesloft: conversations from ``GET v2/conversations`` and the recording behind each one.

Public pages this module follows (PROVIDERS.md, Salesloft; they win over any assumption):

- "Fetch conversations" (seed 001), https://developers.salesloft.com/docs/api/conversations-find-all/ —
  ``created_at[gte|lt]`` (ISO 8601, microsecond precision), ``sort_by``, ``sort_direction``,
  ``per_page`` (1-100), ``page``; items with ``id``, ``duration`` (ms), ``media_type``,
  ``event_start_date``, ``created_at`` and ``recording`` ``{"id", "_href"}``;
- "Fetch Conversation recording" (``GET /v2/conversations/{id}/recording``), which needs the
  "Download Conversations" permission;
- "Rate Limits", https://developers.salesloft.com/docs/platform/api-basics/rate-limits/ — 600 cost
  units a minute **per team, shared with every other integration**; pages past 100 cost 3 to 30
  units; every answer carries ``x-ratelimit-endpoint-cost`` and ``x-ratelimit-remaining-minute``.

Budget. 2 requests/s by default (``default_rate_limit``; ``rate_limit`` overrides it), and the client
watches ``x-ratelimit-remaining-minute``: once 100 or fewer units are left it pauses more the less is
left (``VendorClient.watch_remaining``), so the customer's other integrations keep their share.

Listing: ``created_at[gte]``/``created_at[lt]`` (the half-open window), ``sort_by=created_at``,
``sort_direction=ASC``, ``per_page=100``, ``page=N``, in Salesloft's envelope ``{"data": [...],
"metadata": {"paging": {"next_page": ...}}}`` (stop when ``next_page`` is null) or a bare array as in
the document's example (then a short page is the last). An empty page always stops. Page numbers
are kept low (pages past 100 cost more): after ``RESTART_AFTER_PAGE`` pages the listing starts again
at page 1 from the last ``created_at`` seen, skipping the ids already seen at that instant; if a whole
page shares one ``created_at`` the restart would not move, so paging simply goes on. A pass that sees
an id twice otherwise took a shift (a conversation created before our page) and lists once more.

A conversation whose ``recording`` is null is not ready (its media is still being processed) until it
is ``no_recording_after`` old, then it has no recording. One whose id is usable but whose other fields
are not is ``INVALID`` (parked alone); one without a usable id, or a page that is not a page, stops
the account's pass.

Media: ``recording._href`` (else ``v2/conversations/{id}/recording``) with the Bearer token, which
``VendorClient`` attaches only on the API's exact origin (scheme, host, port): an ``_href`` anywhere
else, ``http://`` included, is not requested at all (``UnsafeURL``). A 403 there means the token's
user lacks the "Download Conversations" permission (the account fails, saying so); 404 is "no
recording". Accepted answers, documented and observed:

- a 3xx to the media: the ``Location`` URL (made absolute), no headers;
- JSON with the URL at ``data.url``, ``url``, ``data.recording_url``, ``recording_url``,
  ``data.download_url`` or ``download_url`` (optional ``expires_at``, ``content_type``): that URL,
  no headers (it carries its own authority);
- the media bytes themselves (``audio/*``, ``video/*``, ``application/octet-stream``): the ``_href``
  with the account's auth headers; the body of this probe is not read.

The signed media URL is on a storage host that no public page names: default media hosts
``*.salesloft.com``, ``*.amazonaws.com``, ``*.cloudfront.net``, ``storage.googleapis.com``.
``get_recording`` reads ``GET v2/conversations/{id}`` (envelope ``{"data": {...}}``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from providers._classify import Action
from providers._paging import (
    Page,
    PageNumberPaginator,
    ShiftWatch,
    in_window_once,
    iso_utc,
    paginate,
    relisted_on_shift,
)
from providers._parse import as_float, as_list, as_mapping, as_text, optional_time, parse_vendor_time
from providers._vendor import VendorBase, join_url, time_or
from providers.base import MediaLink, Readiness, Recording, Window
from worker.errors import AuthError, BadVendorData, NotReady, UnsafeURL
from worker.redact import redact_url, scrub_record

if TYPE_CHECKING:
    from config.settings import AccountSettings
    from providers._http import VendorClient

__all__ = ["SalesloftProvider"]

LIST_PATH = "v2/conversations"
PAGE_SIZE = 100
#: pages past 100 cost 3-30 units (the public rate-limit page): start again from page 1 before that
RESTART_AFTER_PAGE = 100
#: the shared budget header and the level below which we slow down (of 600 a minute)
REMAINING_HEADER = "x-ratelimit-remaining-minute"
REMAINING_LOW = 100
PERMISSION = "Download Conversations"
_REDIRECTS = (301, 302, 303, 307, 308)
#: a redirect from the recording endpoint is the answer; 404 "no recording"; 403 looked at here
_HREF_OVERRIDES: Mapping[int, Action] = {
    **{status: Action.OK for status in _REDIRECTS},
    403: Action.OK,
    404: Action.NO_RECORDING,
}
_ONE_OVERRIDES: Mapping[int, Action] = {404: Action.NO_RECORDING}
_URL_KEYS = ("url", "recording_url", "download_url")


class SalesloftProvider(VendorBase):
    """Salesloft conversations (calls and meetings, audio or video)."""

    name: ClassVar[str] = "salesloft"
    max_page_size: ClassVar[int] = PAGE_SIZE
    listing_sorted: ClassVar[bool] = True
    #: PROVIDERS.md: about 2 requests/s, the 600/min budget being shared with other integrations
    default_rate_limit: ClassVar[float] = 2.0

    def __init__(self, account: AccountSettings, client: VendorClient) -> None:
        super().__init__(account, client)
        client.watch_remaining(REMAINING_HEADER, window=60.0, low=REMAINING_LOW)

    def media_hosts(self) -> list[str]:
        return ["*.salesloft.com", "*.amazonaws.com", "*.cloudfront.net", "storage.googleapis.com"]

    # -- listing -------------------------------------------------------------------------------

    def list_recordings(self, window: Window) -> Iterator[Recording]:
        return in_window_once(self._all_pages(window), window)

    def _all_pages(self, window: Window) -> Iterator[Recording]:
        if window.since >= window.until:
            return

        def one_pass(watch: ShiftWatch) -> Iterator[Recording]:
            since = window.since
            boundary: set[str] = set()  # ids seen at ``since`` before a restart: expected again
            while True:
                restart_from: datetime | None = None
                last_at: datetime | None = None
                at_last: set[str] = set()
                paginator = PageNumberPaginator(PAGE_SIZE, what="salesloft conversations")
                base = {
                    "created_at[gte]": iso_utc(since),
                    "created_at[lt]": iso_utc(window.until, ceil=True),
                    "sort_by": "created_at",
                    "sort_direction": "ASC",
                    "per_page": PAGE_SIZE,
                }

                def fetch(page_number: int, base: Mapping[str, Any] = base) -> Page:
                    return read_page(self.client.get_json(LIST_PATH, {**base, "page": page_number}))

                for page in paginate(fetch, paginator):
                    for raw in page.items:
                        recording = self._recording(raw, fallback=since)
                        if recording.recording_id in boundary:
                            continue
                        watch.saw(recording.recording_id)
                        if recording.listed_at != last_at:
                            last_at, at_last = recording.listed_at, set()
                        at_last.add(recording.recording_id)
                        yield recording
                    if (paginator.current_value >= RESTART_AFTER_PAGE and _has_more(page)
                            and last_at is not None and last_at > since):
                        restart_from = last_at
                        break
                if restart_from is None:
                    return
                since, boundary = restart_from, at_last

        yield from relisted_on_shift(one_pass)

    def _recording(self, raw: Any, *, fallback: datetime) -> Recording:
        record = as_mapping(raw, "salesloft conversation")
        conversation_id = as_text(record.get("id"), "salesloft conversation: id")
        assert conversation_id is not None
        at = time_or(record.get("created_at"), fallback)
        return self.parsed_or_invalid(conversation_id, lambda: self._conversation(conversation_id, record),
                                      at=at, source=record)

    def _conversation(self, conversation_id: str, record: Mapping[str, Any]) -> Recording:
        where = f"salesloft conversation {conversation_id}"
        created = parse_vendor_time(record.get("created_at"), f"{where}: created_at")
        started = optional_time(record.get("event_start_date"), f"{where}: event_start_date") or created
        duration_ms = as_float(record.get("duration"), f"{where}: duration")
        href: str | None = None
        reference = record.get("recording")
        if reference is not None:
            reference = as_mapping(reference, f"{where}: recording")
            href = as_text(reference.get("_href"), f"{where}: recording._href", required=False)
            if href is None and as_text(reference.get("id"), f"{where}: recording.id", required=False):
                href = f"{LIST_PATH}/{quote(conversation_id, safe='')}/recording"
        media_type = as_text(record.get("media_type"), f"{where}: media_type", required=False)
        return Recording(
            provider=self.name,
            account=self.account.name,
            recording_id=conversation_id,
            started_at=started,
            listed_at=created,
            readiness=Readiness.READY if href else self.no_recording_yet(started),
            vendor_duration_seconds=None if duration_ms is None else duration_ms / 1000,
            is_video=(media_type or "").lower() == "video",
            source=scrub_record(record),
            hint={"href": href} if href else {},
        )

    # -- one conversation, media ---------------------------------------------------------------

    def get_recording(self, recording_id: str) -> Recording:
        path = f"{LIST_PATH}/{quote(recording_id, safe='')}"
        body = self.client.get_json(path, overrides=_ONE_OVERRIDES, recording_id=recording_id)
        if isinstance(body, Mapping) and isinstance(body.get("data"), Mapping):
            body = body["data"]
        return self._recording(body, fallback=datetime.now(UTC))

    def resolve_media(self, recording: Recording, *, refresh: bool = False) -> MediaLink:
        href = recording.hint.get("href")
        if not isinstance(href, str) or not href:
            # listed before its recording existed: the conversation may have one by now
            recording = self.get_recording(recording.recording_id)
            href = recording.hint.get("href")
            if not isinstance(href, str) or not href:
                raise NotReady("salesloft has no recording for this conversation yet",
                               recording_id=recording.recording_id)
        rid = recording.recording_id
        url = join_url(self.client.base_url, href, what="salesloft recording._href", recording_id=rid)
        if not self.client.is_api_host(url):
            # the recording endpoint needs the Bearer token, which goes to the API's origin only
            raise UnsafeURL(f"salesloft recording _href {redact_url(url)} is not on the API's origin "
                            f"(scheme, host, port of base_url); not followed", recording_id=rid)
        response = self.client.request("GET", url, overrides=_HREF_OVERRIDES, recording_id=rid, media_ok=True)
        if response.status_code == 403:
            raise AuthError(f"salesloft refused the recording of conversation {rid} (HTTP 403): the API "
                            f"user needs the {PERMISSION!r} permission")
        if response.status_code in _REDIRECTS:
            location = response.headers.get("Location")
            if not location:
                raise BadVendorData(f"{redact_url(url)}: redirect without Location", recording_id=rid)
            return MediaLink(url=join_url(url, location, what=f"{redact_url(url)}: redirect Location",
                                          recording_id=rid), is_video=recording.is_video)
        content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type.startswith(("audio/", "video/")) or content_type == "application/octet-stream":
            return MediaLink(url=url, headers=self.client.auth_headers_for(url), content_type=content_type,
                             is_video=recording.is_video or content_type.startswith("video/"))
        return self._link_from_json(self.client.parse_json(response, url, recording_id=rid), url, recording)

    def _link_from_json(self, body: Any, url: str, recording: Recording) -> MediaLink:
        rid = recording.recording_id
        where = f"salesloft recording of {rid}"
        body = as_mapping(body, where)
        data = body.get("data")
        holders = [data, body] if isinstance(data, Mapping) else [body]
        for holder in holders:
            for key in _URL_KEYS:
                media = as_text(holder.get(key), f"{where}: {key}", required=False)
                if media:
                    content_type = as_text(holder.get("content_type"), f"{where}: content_type", required=False)
                    return MediaLink(
                        url=join_url(url, media, what=f"{where}: {key}", recording_id=rid),
                        expires_at=optional_time(holder.get("expires_at"), f"{where}: expires_at"),
                        content_type=content_type,
                        is_video=recording.is_video or (content_type or "").lower().startswith("video/"),
                    )
        raise BadVendorData(f"{where}: none of {', '.join(_URL_KEYS)} (at the top or under data) holds a URL",
                            recording_id=rid)


def _has_more(page: Page) -> bool:
    """Whether a page follows ``page`` (the same rule ``PageNumberPaginator`` applies)."""
    if not page.items:
        return False
    return page.next is not None if page.announced else len(page.items) >= PAGE_SIZE


def read_page(body: Any) -> Page:
    """The envelope (``data`` + ``metadata.paging.next_page``) or a bare array of conversations."""
    if isinstance(body, list):
        return Page(items=body, announced=False)
    body = as_mapping(body, "salesloft conversations response")
    items = as_list(body.get("data"), "salesloft conversations response: data")
    metadata = body.get("metadata")
    paging = metadata.get("paging") if isinstance(metadata, Mapping) else None
    if not isinstance(paging, Mapping) or "next_page" not in paging:
        return Page(items=items, announced=False)  # no paging block: page on as with a bare array
    return Page(items=items, next=paging.get("next_page"))
