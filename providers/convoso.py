"""Convoso: recordings by lead (``v1/lead/get-recordings``) or of the whole account (``v1/log/retrieve``).

Public pages this module follows (PROVIDERS.md, Convoso; they win over any assumption):

- "Lead Get Recordings API" (seed 000),
  https://help.convoso.com/hc/en-us/articles/37896898809883-Lead-Get-Recordings-API — ``lead_id``,
  ``start_time``/``end_time`` (naive ``YYYY-MM-DD HH:MM:SS``), ``offset``, ``limit`` (max 100) →
  ``{"success", "data": {"offset", "limit", "total" (strings), "entries": [...]}}``;
- "Call Log Retrieve/Search API",
  https://help.convoso.com/hc/en-us/articles/37842066660891-Call-Log-Retrieve-Search-API —
  ``start_time``/``end_time``, ``limit``, ``offset``, ``order`` (default DESC), ``include_recordings``
  → ``{"success", "data": {"offset", "limit", "total_found" (a string), "entries" (a count),
  "results": [call, ...]}}``;
- "API Glossary", https://help.convoso.com/hc/en-us/articles/37988572145691-API-Glossary — 401 is a
  missing or invalid token, 403 a token not valid for the office.

Discovery. With ``lead_ids``: each lead's recordings, ``limit=100``, ``offset`` paging until
``offset + len(entries) >= total`` or an empty page. Without it, the whole account from the call log:
``include_recordings=1&order=asc&limit=100&offset=…`` until ``offset + len(results) >= total_found``
or an empty page; each element of a call's ``recording`` list that has a ``recording_id`` is one
recording (start = the call's ``call_date``, duration = ``call_length``, media = ``src``, else
``public_url``, else ``filename``). A call with an empty ``recording`` list has no recording yet: it is
listed as ``call-<id>``, not ready until ``no_recording_after`` has passed, then "no recording" (so the
watermark waits for it). Pages shifted under us (``total`` changed, an id twice) are listed once more
from offset 0 (``relisted_on_shift``).

Errors come in-band: HTTP 200 ``{"success": false, "code", "text" | "message" | "error"}`` (quoted,
token masked). A bad token (code 401/403, or the text speaks of the token/auth) fails the account; an
unknown lead (code 6001, or the text says the lead is not found/invalid) skips that lead with a
warning and is counted in ``unknown_leads``; anything else stops the account's pass. The token travels
as the ``auth_token`` query parameter, which ``VendorClient`` adds (and redacts) on the API origin only.

Path: the seed's endpoint line says ``v1/lead/get-recordings``, its example ``v1/leads/get-recordings``.
The first is called; a 404 switches this provider instance to the second from then on.

Times are naive, read in the account's ``timezone`` (required for Convoso); in a repeated DST hour the
first occurrence is assumed (``fold=0``). The bounds we send are widened so that the vendor's filter
never leaves out a recording our half-open window keeps (``naive_in_zone``).

Media: an absolute http(s) URL is used as is; a bare file name (as in the examples) is resolved
against ``media_base_url``. An account without ``media_base_url`` cannot resolve one: that recording
is ``INVALID`` (parked with the reason), not the account. No credentials go to a media host. Default
media hosts ``convoso.com``, ``*.convoso.com``. One record whose id is usable but whose other fields
are not is ``INVALID`` too; a record without a usable id stops the account's pass.

Convoso has no single-recording endpoint: ``get_recording`` lists the account from its ``start`` until
now and picks the id out (slow, but only manual re-archives use it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from providers._classify import Action
from providers._paging import OffsetPaginator, Page, ShiftWatch, in_window_once, paginate, relisted_on_shift
from providers._parse import as_bool, as_float, as_int, as_list, as_mapping, as_text, parse_vendor_time
from providers._source import source_of
from providers._vendor import VendorBase, media_url, time_or
from providers.base import MediaLink, Readiness, Recording, Window
from worker.errors import AccountError, AuthError, BadVendorData, NoRecording, PermanentError
from worker.redact import mask_secrets

if TYPE_CHECKING:
    from config.settings import AccountSettings
    from providers._http import VendorClient

__all__ = ["ConvosoProvider", "UnknownLead", "naive_in_zone"]

log = logging.getLogger(__name__)

PRIMARY_PATH = "v1/lead/get-recordings"
FALLBACK_PATH = "v1/leads/get-recordings"
CALL_LOG_PATH = "v1/log/retrieve"
PAGE_SIZE = 100
NAIVE_FORMAT = "%Y-%m-%d %H:%M:%S"
#: the in-band code of an unknown lead (PROVIDERS.md; not on a public page) and its wording
UNKNOWN_LEAD_CODES = frozenset({6001})
_UNKNOWN_LEAD_TEXT = re.compile(r"lead.*\b(not found|no such|does not exist|doesn't exist|unknown|invalid)\b"
                                r"|\b(no such|unknown|invalid)\b.*\blead", re.IGNORECASE)
#: a 404 is looked at here (it means "wrong path"), not turned into an error by the client
_LIST_OVERRIDES: Mapping[int, Action] = {404: Action.OK}


class UnknownLead(AccountError):
    """Convoso does not know a configured lead: that lead is skipped, the others are listed."""


class ConvosoProvider(VendorBase):
    """Convoso recordings, by configured lead or from the whole account's call log."""

    name: ClassVar[str] = "convoso"
    max_page_size: ClassVar[int] = PAGE_SIZE

    @classmethod
    def client_auth(cls, account: AccountSettings) -> tuple[dict[str, str], dict[str, str]]:
        return {}, {"auth_token": account.token.get_secret_value()}

    def __init__(self, account: AccountSettings, client: VendorClient) -> None:
        super().__init__(account, client)
        self.path = PRIMARY_PATH
        #: configured leads Convoso said it does not know (skipped and reported, never fatal)
        self.unknown_leads: list[str] = []

    def media_hosts(self) -> list[str]:
        return ["convoso.com", "*.convoso.com"]

    # -- listing -------------------------------------------------------------------------------

    def list_recordings(self, window: Window) -> Iterator[Recording]:
        return in_window_once(self._everything(window), window)

    def _everything(self, window: Window) -> Iterator[Recording]:
        if window.since >= window.until:
            return
        zone = self.account.zone
        base = {
            "start_time": naive_in_zone(window.since, zone, upper=False),
            "end_time": naive_in_zone(window.until, zone, upper=True),
            "limit": PAGE_SIZE,
        }
        if not self.account.lead_ids:
            yield from relisted_on_shift(partial(self._call_log, base, window.since))
            return
        for lead_id in self.account.lead_ids:
            try:
                yield from relisted_on_shift(partial(self._list_lead, lead_id, base, window.since))
            except UnknownLead as exc:
                if lead_id not in self.unknown_leads:
                    self.unknown_leads.append(lead_id)
                self.notices.append(f"lead {lead_id} is unknown to Convoso: skipped ({exc.message})")
                log.warning("convoso account %s: lead %s skipped: %s", self.account.name, lead_id, exc)

    def _list_lead(self, lead_id: str, base: Mapping[str, Any], fallback: datetime,
                   watch: ShiftWatch) -> Iterator[Recording]:
        """One pass over a lead's recordings, reporting shifted pages to ``watch``."""

        def fetch(offset: int) -> Page:
            return self._fetch_lead_page({"lead_id": lead_id, **base, "offset": offset}, lead_id)

        for page in paginate(fetch, OffsetPaginator(PAGE_SIZE, what=f"convoso lead {lead_id} recordings")):
            watch.page(page)
            for raw in page.items:
                recording = self._entry(raw, fallback)
                watch.saw(recording.recording_id)
                yield recording

    def _call_log(self, base: Mapping[str, Any], fallback: datetime, watch: ShiftWatch) -> Iterator[Recording]:
        """One pass over the account's call log with its recordings."""
        params = {**base, "include_recordings": 1, "order": "asc"}

        def fetch(offset: int) -> Page:
            body = self._get(CALL_LOG_PATH, {**params, "offset": offset}, what="convoso call log")
            data = as_mapping(body.get("data"), "convoso call log: data")
            results = as_list(data.get("results"), "convoso call log: data.results")
            total = as_int(data.get("total_found"), "convoso call log: data.total_found")
            return Page(items=results, total=total)

        for page in paginate(fetch, OffsetPaginator(PAGE_SIZE, what="convoso call log")):
            watch.page(page)
            for raw in page.items:
                for recording in self._call(raw, fallback):
                    watch.saw(recording.recording_id)
                    yield recording

    # -- requests ------------------------------------------------------------------------------

    def _fetch_lead_page(self, params: Mapping[str, Any], lead_id: str) -> Page:
        response = self.client.request("GET", self.client.url_for(self.path), params=params,
                                       overrides=_LIST_OVERRIDES)
        if response.status_code == 404:
            if self.path == FALLBACK_PATH:
                raise AccountError(
                    f"convoso answered 404 on both {PRIMARY_PATH} and {FALLBACK_PATH} (lead {lead_id})"
                )
            self.path = FALLBACK_PATH
            return self._fetch_lead_page(params, lead_id)
        body = as_mapping(self.client.parse_json(response, self.client.url_for(self.path)),
                          "convoso recordings response")
        self._check_success(body, lead_id=lead_id)
        data = body.get("data")
        if isinstance(data, list):  # tolerated: the entries without their envelope
            return Page(items=data, total=None)
        data = as_mapping(data, "convoso recordings response: data")
        entries = as_list(data.get("entries"), "convoso recordings response: data.entries")
        total = as_int(data.get("total"), "convoso recordings response: data.total")
        return Page(items=entries, total=total)

    def _get(self, path: str, params: Mapping[str, Any], *, what: str) -> Mapping[str, Any]:
        body = as_mapping(self.client.get_json(path, params), f"{what} response")
        self._check_success(body)
        return body

    def _check_success(self, body: Mapping[str, Any], *, lead_id: str | None = None) -> None:
        if as_bool(body.get("success"), "convoso response: success", default=True):
            return
        message = _vendor_message(body, self.account)
        code = _code(body.get("code"))
        lowered = message.lower()
        if code in (401, 403) or "auth" in lowered or "token" in lowered:
            raise AuthError(f"convoso refused the account's credentials: {message}")
        if lead_id is not None and (code in UNKNOWN_LEAD_CODES or _UNKNOWN_LEAD_TEXT.search(message)):
            raise UnknownLead(f"convoso does not know lead {lead_id} (code {code}: {message})")
        raise BadVendorData(f"convoso answered success=false (code {code}): {message}")

    # -- records -------------------------------------------------------------------------------

    def _entry(self, raw: Any, fallback: datetime) -> Recording:
        """One entry of a lead's recordings."""
        entry = as_mapping(raw, "convoso recording")
        recording_id = as_text(entry.get("recording_id"), "convoso recording: recording_id")
        assert recording_id is not None
        zone = self.account.zone
        at = time_or(entry.get("start_time"), fallback, zone=zone)

        def parse() -> Recording:
            where = f"convoso recording {recording_id}"
            started = parse_vendor_time(entry.get("start_time"), f"{where}: start_time", zone=zone)
            url = as_text(entry.get("url"), f"{where}: url", required=False)
            seconds = as_float(entry.get("seconds"), f"{where}: seconds")
            return self._recording(recording_id, started, seconds, url, source_of(entry, "url"))

        return self.parsed_or_invalid(recording_id, parse, at=at, source=source_of(entry, "url"))

    def _call(self, raw: Any, fallback: datetime) -> Iterator[Recording]:
        """The recordings of one call-log entry (or its "no recording yet" placeholder)."""
        call = as_mapping(raw, "convoso call")
        call_id = as_text(call.get("id"), "convoso call: id")
        assert call_id is not None
        zone = self.account.zone
        at = time_or(call.get("call_date"), fallback, zone=zone)
        source = source_of(call)
        try:
            where = f"convoso call {call_id}"
            started = parse_vendor_time(call.get("call_date"), f"{where}: call_date", zone=zone)
            seconds = as_float(call.get("call_length"), f"{where}: call_length")
            elements = as_list(call.get("recording"), f"{where}: recording")
        except BadVendorData as exc:
            # the call's own fields are bad: each of its recordings (or the call) is parked with the reason
            raw_elements = call.get("recording")
            ids = [str(item["recording_id"]) for item in (raw_elements if isinstance(raw_elements, list) else [])
                   if isinstance(item, Mapping) and isinstance(item.get("recording_id"), str | int)
                   and not isinstance(item.get("recording_id"), bool) and str(item["recording_id"])]
            for rid in ids or [f"call-{call_id}"]:
                yield self.invalid(rid, str(exc), at=at, source=source)
            return
        recordings = [item for item in elements if isinstance(item, Mapping) and item.get("recording_id")]
        if not recordings:
            yield Recording(provider=self.name, account=self.account.name, recording_id=f"call-{call_id}",
                            started_at=started, listed_at=started, readiness=self.no_recording_yet(started),
                            vendor_duration_seconds=seconds, source=source)
            return
        for item in recordings:
            recording_id = as_text(item.get("recording_id"), f"{where}: recording_id")
            assert recording_id is not None

            def parse(item: Mapping[str, Any] = item, recording_id: str = recording_id) -> Recording:
                place = f"convoso recording {recording_id}"
                url = (as_text(item.get("src"), f"{place}: src", required=False)
                       or as_text(item.get("public_url"), f"{place}: public_url", required=False)
                       or as_text(item.get("filename"), f"{place}: filename", required=False))
                record = {**source, "recording": [source_of(item, "src", "public_url", "filename")]}
                return self._recording(recording_id, started, seconds, url, record)

            yield self.parsed_or_invalid(recording_id, parse, at=started, source=source)

    def _recording(self, recording_id: str, started: datetime, seconds: float | None, url: str | None,
                   source: Mapping[str, Any]) -> Recording:
        """A listed recording; its media URL is resolved now, so a file name the account cannot resolve
        (no ``media_base_url``) or a URL of another scheme parks this recording alone."""
        readiness = Readiness.READY
        hint: dict[str, Any] = {}
        if url:
            try:
                hint["url"] = media_url(url, self.account.media_base_url, what="convoso recording url",
                                        recording_id=recording_id)
            except PermanentError as exc:
                return self.invalid(recording_id, str(exc), at=started, source=source)
        else:
            readiness = self.no_recording_yet(started)
        return Recording(
            provider=self.name,
            account=self.account.name,
            recording_id=recording_id,
            started_at=started,
            listed_at=started,
            readiness=readiness,
            vendor_duration_seconds=seconds,
            source=source,
            hint=hint,
        )

    # -- one recording, media ------------------------------------------------------------------

    def get_recording(self, recording_id: str) -> Recording:
        window = Window(self.account.start, datetime.now(UTC) + timedelta(days=1))
        for recording in self.list_recordings(window):
            if recording.recording_id == recording_id:
                return recording
        raise NoRecording("convoso lists no such recording for this account", recording_id=recording_id)

    def resolve_media(self, recording: Recording, *, refresh: bool = False) -> MediaLink:
        url = recording.hint.get("url")
        if not isinstance(url, str) or not url:
            raise NoRecording("convoso lists no recording file for this recording",
                              recording_id=recording.recording_id)
        if urlsplit(url).scheme.lower() not in ("http", "https"):  # hints are ours, but stay strict
            url = media_url(url, self.account.media_base_url, what="convoso recording url",
                            recording_id=recording.recording_id)
        return MediaLink(url=url)


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


def _code(value: Any) -> int | None:
    """The in-band error ``code`` as a number, if it is one."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        return int(value)
    except ValueError:
        return None


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
