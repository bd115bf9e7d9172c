"""Siro: recordings from ``GET v1/core/recordings`` (document 004, list endpoint per PROVIDERS.md).

The document describes ``GET v1/core/recordings/{id}``, whose answer carries list paging fields
(``cursor``, ``pageSize``, ``limit``); the listing is ``GET v1/core/recordings?limit=100&cursor=C&
dateCreatedFrom=ISO`` answering ``{"data": [recording, ...], "cursor": ...}``, until ``cursor`` is null
or a page is empty. There is no upper bound parameter: our own filter on ``dateCreated`` keeps the
window exact and the listing is not assumed to be sorted.

Readiness: ``deleted`` or ``deletedPermanently`` true → deleted at the vendor (skipped and reported,
never archived; an archived copy is never removed because of it); ``processingStatus`` other than
``complete`` → not ready; a complete recording without any media path → no recording.

Media: ``resolve_media`` re-reads the recording (``GET v1/core/recordings/{id}``) so that status and
paths are current, then picks ``rawVideoPath`` when ``isVideo`` (the video is the original), else
``processedAudioPath``, else ``rawAudioPath``. A path is resolved against ``media_base_url``; an
absolute http(s) URL is used as is. Siro's media host is not the API host: no credentials go with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar
from urllib.parse import quote

from providers._classify import Action
from providers._paging import CursorPaginator, Page, in_window_once, iso_utc, paginate
from providers._parse import as_bool, as_float, as_list, as_mapping, as_text, parse_vendor_time
from providers._source import source_of
from providers._vendor import VendorBase, media_url
from providers.base import MediaLink, Readiness, Recording, Window
from worker.errors import Deleted, NoRecording, NotReady

__all__ = ["SiroProvider"]

LIST_PATH = "v1/core/recordings"
PAGE_SIZE = 100
READY_STATUS = "complete"
#: the media keys in order of preference; the video only counts when ``isVideo`` is true
VIDEO_KEY = "rawVideoPath"
AUDIO_KEYS = ("processedAudioPath", "rawAudioPath")
_ONE_OVERRIDES: Mapping[int, Action] = {404: Action.NO_RECORDING}


class SiroProvider(VendorBase):
    """Siro field-sales recordings (audio, sometimes video)."""

    name: ClassVar[str] = "siro"
    max_page_size: ClassVar[int] = PAGE_SIZE
    default_rate_limit: ClassVar[float] = 15.0  # about 1000 requests/min reported

    # -- listing -------------------------------------------------------------------------------

    def list_recordings(self, window: Window) -> Iterator[Recording]:
        return in_window_once(self._all_pages(window), window)

    def _all_pages(self, window: Window) -> Iterator[Recording]:
        if window.since >= window.until:
            return
        base = {"limit": PAGE_SIZE, "dateCreatedFrom": iso_utc(window.since)}

        def fetch(cursor: str | None) -> Page:
            body = as_mapping(self.client.get_json(LIST_PATH, {**base, "cursor": cursor}),
                              "siro recordings response")
            items = as_list(body.get("data"), "siro recordings response: data")
            return Page(items=items, next=body.get("cursor"))

        for page in paginate(fetch, CursorPaginator(what="siro recordings")):
            for raw in page.items:
                yield self._recording(raw)

    def _recording(self, raw: Any) -> Recording:
        record = as_mapping(raw, "siro recording")
        recording_id = as_text(record.get("id"), "siro recording: id")
        assert recording_id is not None
        where = f"siro recording {recording_id}"
        created = parse_vendor_time(record.get("dateCreated"), f"{where}: dateCreated")
        duration_ms = as_float(
            record.get("audioDurationInMilliseconds"), f"{where}: audioDurationInMilliseconds"
        )
        if duration_ms is None:
            duration_ms = as_float(record.get("durationInMilliseconds"), f"{where}: durationInMilliseconds")
        key, path = choose_media(record, where)
        return Recording(
            provider=self.name,
            account=self.account.name,
            recording_id=recording_id,
            started_at=created,
            listed_at=created,
            readiness=_readiness(record, where, has_media=path is not None),
            vendor_duration_seconds=None if duration_ms is None else duration_ms / 1000,
            is_video=key == VIDEO_KEY,
            source=source_of(record, "rawAudioPath", "processedAudioPath", "rawVideoPath", "lastProcessedAudio"),
            hint={"key": key, "path": path} if path else {},
        )

    # -- one recording, media ------------------------------------------------------------------

    def get_recording(self, recording_id: str) -> Recording:
        path = f"{LIST_PATH}/{quote(recording_id, safe='')}"
        body = as_mapping(self.client.get_json(path, overrides=_ONE_OVERRIDES, recording_id=recording_id),
                          f"siro recording {recording_id}")
        data = body.get("data")
        return self._recording(data if data is not None or "id" not in body else body)

    def resolve_media(self, recording: Recording, *, refresh: bool = False) -> MediaLink:
        fresh = self.get_recording(recording.recording_id)
        rid = fresh.recording_id
        if fresh.readiness is Readiness.DELETED:
            raise Deleted("siro: deleted at vendor before it was archived", recording_id=rid)
        if fresh.readiness is Readiness.NOT_READY:
            raise NotReady("siro is still processing this recording", recording_id=rid)
        key, path = fresh.hint.get("key"), fresh.hint.get("path")
        if not isinstance(key, str) or not isinstance(path, str):
            raise NoRecording("siro gives no media path for this recording", recording_id=rid)
        url = media_url(path, self.account.media_base_url, what=f"siro {key}", recording_id=rid)
        return MediaLink(url=url, is_video=key == VIDEO_KEY)


def choose_media(record: Mapping[str, Any], where: str) -> tuple[str | None, str | None]:
    """(key, path) of the media to archive: the raw video for a video, else the best audio."""
    if as_bool(record.get("isVideo"), f"{where}: isVideo"):
        video = as_text(record.get(VIDEO_KEY), f"{where}: {VIDEO_KEY}", required=False)
        if video:
            return VIDEO_KEY, video
    for key in AUDIO_KEYS:
        path = as_text(record.get(key), f"{where}: {key}", required=False)
        if path:
            return key, path
    return None, None


def _readiness(record: Mapping[str, Any], where: str, *, has_media: bool) -> Readiness:
    if as_bool(record.get("deleted"), f"{where}: deleted") or as_bool(
        record.get("deletedPermanently"), f"{where}: deletedPermanently"
    ):
        return Readiness.DELETED
    status = as_text(record.get("processingStatus"), f"{where}: processingStatus", required=False)
    if (status or "").strip().lower() != READY_STATUS:
        return Readiness.NOT_READY
    return Readiness.READY if has_media else Readiness.NO_RECORDING
