"""Convoso: a lead's recordings from ``GET v1/lead/get-recordings`` (document 000).

Convoso has no account-wide listing: recordings are listed per lead, for every configured
``lead_ids`` entry, with ``start_time``/``end_time`` as naive ``YYYY-MM-DD HH:MM:SS`` in the account's
``timezone``, ``limit=100`` and ``offset`` paging until ``offset + len(entries) >= total`` or an empty
page. ``offset``, ``limit`` and ``total`` arrive as strings, ``end_time`` may be ``""`` and a body
with ``success: false`` is an error whatever the HTTP status (its ``text``/``message`` is quoted,
token masked). The token travels as the ``auth_token`` query parameter, which ``VendorClient`` adds
(and redacts) for the API host only. A lead whose pages shifted while we read them (``total``
changed, an id came twice) is listed once more from offset 0 (``relisted_on_shift``); the lookback
of the next pass covers the rest.

Path: the document's endpoint line says ``v1/lead/get-recordings``, its example says
``v1/leads/get-recordings``. The first is called; a 404 switches this provider instance to the
second from then on (PROVIDERS.md).

Times: a naive vendor time is read in the account's zone; in the repeated hour of a DST fall-back the
first occurrence is assumed (``fold=0``). The naive bounds we send are widened so that the vendor's
filter never leaves out a recording our own half-open window keeps: ``since`` is truncated to the
second, ``until`` rounded up to the second and, when it falls in a repeated hour, moved to the end of
that hour. Our own filter on ``start_time`` decides what is kept.

Media: ``url`` is a file name or path resolved against ``media_base_url`` (``urljoin``: a path that
starts with ``/`` replaces the base's path); an absolute http(s) URL is used as is. No credentials go
to the media host.

Convoso has no single-recording endpoint: ``get_recording`` lists every configured lead from the
account's ``start`` until now and picks the id out (slow, but only manual re-archives use it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from providers._classify import Action
from providers._paging import OffsetPaginator, Page, ShiftWatch, in_window_once, paginate, relisted_on_shift
from providers._parse import as_bool, as_float, as_int, as_list, as_mapping, as_text, parse_vendor_time
from providers._source import source_of
from providers._vendor import VendorBase, media_url
from providers.base import MediaLink, Readiness, Recording, Window
from worker.errors import AccountError, AuthError, BadVendorData, NoRecording
from worker.redact import mask_secrets

if TYPE_CHECKING:
    from config.settings import AccountSettings
    from providers._http import VendorClient

__all__ = ["ConvosoProvider"]

PRIMARY_PATH = "v1/lead/get-recordings"
FALLBACK_PATH = "v1/leads/get-recordings"
PAGE_SIZE = 100
NAIVE_FORMAT = "%Y-%m-%d %H:%M:%S"
#: a 404 is looked at here (it means "wrong path"), not turned into an error by the client
_LIST_OVERRIDES: Mapping[int, Action] = {404: Action.OK}


class ConvosoProvider(VendorBase):
    """Convoso lead recordings, one listing per configured lead."""

    name: ClassVar[str] = "convoso"
    max_page_size: ClassVar[int] = PAGE_SIZE

    @classmethod
    def client_auth(cls, account: AccountSettings) -> tuple[dict[str, str], dict[str, str]]:
        return {}, {"auth_token": account.token.get_secret_value()}

    def __init__(self, account: AccountSettings, client: VendorClient) -> None:
        super().__init__(account, client)
        self.path = PRIMARY_PATH

    # -- listing -------------------------------------------------------------------------------

    def list_recordings(self, window: Window) -> Iterator[Recording]:
        return in_window_once(self._all_leads(window), window)

    def _all_leads(self, window: Window) -> Iterator[Recording]:
        if window.since >= window.until:
            return
        zone = self.account.zone
        base = {
            "start_time": naive_in_zone(window.since, zone, upper=False),
            "end_time": naive_in_zone(window.until, zone, upper=True),
            "limit": PAGE_SIZE,
        }
        for lead_id in self.account.lead_ids or []:
            yield from relisted_on_shift(partial(self._list_lead, lead_id, base))

    def _list_lead(self, lead_id: str, base: Mapping[str, Any], watch: ShiftWatch) -> Iterator[Recording]:
        """One pass over a lead's recordings, reporting shifted pages to ``watch``."""

        def fetch(offset: int) -> Page:
            return self._fetch_page({"lead_id": lead_id, **base, "offset": offset}, lead_id)

        paginator = OffsetPaginator(PAGE_SIZE, what=f"convoso lead {lead_id} recordings")
        for page in paginate(fetch, paginator):
            watch.page(page)
            for raw in page.items:
                recording = self._recording(raw)
                watch.saw(recording.recording_id)
                yield recording

    def _fetch_page(self, params: Mapping[str, Any], lead_id: str) -> Page:
        response = self.client.request("GET", self.client.url_for(self.path), params=params,
                                       overrides=_LIST_OVERRIDES)
        if response.status_code == 404:
            if self.path == FALLBACK_PATH:
                raise AccountError(
                    f"convoso answered 404 on both {PRIMARY_PATH} and {FALLBACK_PATH} (lead {lead_id})"
                )
            self.path = FALLBACK_PATH
            return self._fetch_page(params, lead_id)
        body = as_mapping(self.client.parse_json(response, self.client.url_for(self.path)),
                          "convoso recordings response")
        self._check_success(body)
        data = body.get("data")
        if isinstance(data, list):  # tolerated: the entries without their envelope
            return Page(items=data, total=None)
        data = as_mapping(data, "convoso recordings response: data")
        entries = as_list(data.get("entries"), "convoso recordings response: data.entries")
        total = as_int(data.get("total"), "convoso recordings response: data.total")
        return Page(items=entries, total=total)

    def _check_success(self, body: Mapping[str, Any]) -> None:
        if as_bool(body.get("success"), "convoso recordings response: success", default=True):
            return
        message = _vendor_message(body, self.account)
        lowered = message.lower()
        code = body.get("code")
        if "auth" in lowered or "token" in lowered or code in (401, 403, "401", "403"):
            raise AuthError(f"convoso refused the account's credentials: {message}")
        raise BadVendorData(f"convoso answered success=false: {message}")

    def _recording(self, raw: Any) -> Recording:
        entry = as_mapping(raw, "convoso recording")
        recording_id = as_text(entry.get("recording_id"), "convoso recording: recording_id")
        assert recording_id is not None
        where = f"convoso recording {recording_id}"
        started = parse_vendor_time(entry.get("start_time"), f"{where}: start_time", zone=self.account.zone)
        url = as_text(entry.get("url"), f"{where}: url", required=False)
        return Recording(
            provider=self.name,
            account=self.account.name,
            recording_id=recording_id,
            started_at=started,
            listed_at=started,
            readiness=Readiness.READY if url else Readiness.NO_RECORDING,
            vendor_duration_seconds=as_float(entry.get("seconds"), f"{where}: seconds"),
            source=source_of(entry, "url"),
            hint={"url": url} if url else {},
        )

    # -- one recording, media ------------------------------------------------------------------

    def get_recording(self, recording_id: str) -> Recording:
        window = Window(self.account.start, datetime.now(UTC) + timedelta(days=1))
        for recording in self.list_recordings(window):
            if recording.recording_id == recording_id:
                return recording
        raise NoRecording("convoso lists no such recording for the configured leads",
                          recording_id=recording_id)

    def resolve_media(self, recording: Recording, *, refresh: bool = False) -> MediaLink:
        url = recording.hint.get("url")
        if not isinstance(url, str) or not url:
            raise NoRecording("convoso lists no recording file for this recording",
                              recording_id=recording.recording_id)
        return MediaLink(url=media_url(url, self.account.media_base_url, what="convoso recording url",
                                   recording_id=recording.recording_id))


def naive_in_zone(moment: datetime, zone: tzinfo, *, upper: bool) -> str:
    """``moment`` as Convoso's naive wall-clock text in ``zone``, widened for an upper bound.

    Lower bounds are truncated to the second. Upper bounds are rounded up to the second and, inside
    a repeated DST hour (``fold=1``), moved forward by the offset change: vendor times there are read
    as their first occurrence, which lies before ``moment`` whatever their wall-clock value.
    """
    local = moment.astimezone(zone)
    if upper and local.microsecond:
        local = (moment + timedelta(microseconds=1_000_000 - local.microsecond)).astimezone(zone)
    if upper and local.fold:
        first = local.replace(fold=0).utcoffset()
        second = local.utcoffset()
        if first is not None and second is not None and first > second:
            return (local.replace(tzinfo=None) + (first - second)).strftime(NAIVE_FORMAT)
    return local.replace(tzinfo=None).strftime(NAIVE_FORMAT)


def _vendor_message(body: Mapping[str, Any], account: AccountSettings) -> str:
    """The vendor's own error text (it may echo the token: masked before it is shown)."""
    data = body.get("data")
    for value in (body.get("message"), body.get("error"), body.get("text"),
                  data.get("message") if isinstance(data, Mapping) else None):
        if isinstance(value, str) and value.strip():
            text = value.strip()
            break
    else:
        text = "no message"
    token = account.token.get_secret_value()
    if token:
        text = text.replace(token, "***")
    return mask_secrets(text)[:200]
