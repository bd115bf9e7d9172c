"""Salesloft: conversations from ``GET v2/conversations`` and their recording references (document 001).

Listing: ``created_at[gte]``/``created_at[lt]`` (ISO 8601, the half-open window), sorted by
``created_at`` ascending, ``per_page=100``, ``page=N``. The answer is Salesloft's usual envelope
``{"data": [...], "metadata": {"paging": {"next_page": ...}}}`` (stop when ``next_page`` is null) or a
bare array as in the document's example (then a page shorter than ``per_page`` is the last). An
empty page always stops. The listing is sorted, so ``listing_sorted`` is true. Page numbers are
offsets in disguise: a conversation created before our current page while we read shifts the rest,
which shows as an id seen twice; the pass is then run once more from page 1 (``relisted_on_shift``).

A conversation whose ``recording`` is null or missing is not ready yet (its media is still being
processed); one with a reference ``{"id", "_href"}`` is ready.

Media: the ``_href`` is on the API host and wants the Bearer token; ``VendorClient`` attaches it only
because the host is the API host. An ``_href`` on any other host is not requested at all
(``UnsafeURL``: without the token it cannot work, with it the token would leak). Three answers are
accepted:

- JSON with the media URL at ``data.url`` or ``url`` (optional ``expires_at``): that URL, no headers
  (it carries its own authority);
- a 3xx redirect: the ``Location`` URL (made absolute), no headers;
- the media bytes themselves (``audio/*``, ``video/*``, ``application/octet-stream``): the ``_href``
  itself with the account's auth headers, so that the downloader fetches it authenticated; the body of
  this probe is not read (``VendorClient.request(media_ok=True)``).

``get_recording`` reads ``GET v2/conversations/{id}`` (Salesloft's single-resource path, envelope
``{"data": {...}}``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar
from urllib.parse import quote, urljoin

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
from providers._vendor import VendorBase
from providers.base import MediaLink, Readiness, Recording, Window
from worker.errors import BadVendorData, NotReady, UnsafeURL
from worker.redact import redact_url, scrub_record

__all__ = ["SalesloftProvider"]

LIST_PATH = "v2/conversations"
PAGE_SIZE = 100
_REDIRECTS = (301, 302, 303, 307, 308)
#: a redirect from the recording reference is the answer, not an error; 404 means "no recording"
_HREF_OVERRIDES: Mapping[int, Action] = {
    **{status: Action.OK for status in _REDIRECTS},
    404: Action.NO_RECORDING,
}
_ONE_OVERRIDES: Mapping[int, Action] = {404: Action.NO_RECORDING}


class SalesloftProvider(VendorBase):
    """Salesloft conversations (calls and meetings, audio or video)."""

    name: ClassVar[str] = "salesloft"
    max_page_size: ClassVar[int] = PAGE_SIZE
    listing_sorted: ClassVar[bool] = True

    # -- listing -------------------------------------------------------------------------------

    def list_recordings(self, window: Window) -> Iterator[Recording]:
        return in_window_once(self._all_pages(window), window)

    def _all_pages(self, window: Window) -> Iterator[Recording]:
        if window.since >= window.until:
            return
        base = {
            "created_at[gte]": iso_utc(window.since),
            "created_at[lt]": iso_utc(window.until, ceil=True),
            "sort_by": "created_at",
            "sort_direction": "ASC",
            "per_page": PAGE_SIZE,
        }

        def one_pass(watch: ShiftWatch) -> Iterator[Recording]:
            def fetch(page_number: int) -> Page:
                return read_page(self.client.get_json(LIST_PATH, {**base, "page": page_number}))

            for page in paginate(fetch, PageNumberPaginator(PAGE_SIZE, what="salesloft conversations")):
                for raw in page.items:
                    recording = self._recording(raw)
                    watch.saw(recording.recording_id)
                    yield recording

        yield from relisted_on_shift(one_pass)

    def _recording(self, raw: Any) -> Recording:
        record = as_mapping(raw, "salesloft conversation")
        conversation_id = as_text(record.get("id"), "salesloft conversation: id")
        assert conversation_id is not None
        where = f"salesloft conversation {conversation_id}"
        created = parse_vendor_time(record.get("created_at"), f"{where}: created_at")
        started = optional_time(record.get("event_start_date"), f"{where}: event_start_date") or created
        duration_ms = as_float(record.get("duration"), f"{where}: duration")
        href: str | None = None
        reference = record.get("recording")
        if reference is not None:
            reference = as_mapping(reference, f"{where}: recording")
            href = as_text(reference.get("_href"), f"{where}: recording._href", required=False)
        media_type = as_text(record.get("media_type"), f"{where}: media_type", required=False)
        return Recording(
            provider=self.name,
            account=self.account.name,
            recording_id=conversation_id,
            started_at=started,
            listed_at=created,
            readiness=Readiness.READY if href else Readiness.NOT_READY,
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
        return self._recording(body)

    def resolve_media(self, recording: Recording, *, refresh: bool = False) -> MediaLink:
        href = recording.hint.get("href")
        if not isinstance(href, str) or not href:
            # listed before its recording existed: the conversation may have one by now
            recording = self.get_recording(recording.recording_id)
            href = recording.hint.get("href")
            if not isinstance(href, str) or not href:
                raise NotReady("salesloft has no recording for this conversation yet",
                               recording_id=recording.recording_id)
        url = self.client.url_for(href)
        rid = recording.recording_id
        if not self.client.is_api_host(url):
            # the reference needs the Bearer token, which never leaves the API host
            raise UnsafeURL(f"salesloft recording _href {redact_url(url)} is not on the API host; not followed",
                            recording_id=rid)
        response = self.client.request("GET", url, overrides=_HREF_OVERRIDES, recording_id=rid, media_ok=True)
        if response.status_code in _REDIRECTS:
            location = response.headers.get("Location")
            if not location:
                raise BadVendorData(f"{redact_url(url)}: redirect without Location", recording_id=rid)
            return MediaLink(url=urljoin(url, location), is_video=recording.is_video)
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
        holder = data if isinstance(data, Mapping) and data.get("url") else body
        media = as_text(holder.get("url"), f"{where}: url")
        assert media is not None
        content_type = as_text(holder.get("content_type"), f"{where}: content_type", required=False)
        return MediaLink(
            url=urljoin(url, media),
            expires_at=optional_time(holder.get("expires_at"), f"{where}: expires_at"),
            content_type=content_type,
            is_video=recording.is_video or (content_type or "").lower().startswith("video/"),
        )


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
