"""Convoso ``GET /v1/lead/get-recordings`` (seed 000), under both spellings the document uses, and the
call log ``GET /v1/log/retrieve`` ("Call Log Retrieve/Search API").

Served as documented: ``auth_token`` query parameter; ``lead_id`` required; ``start_time`` /
``end_time`` naive ``YYYY-MM-DD HH:MM:SS`` in the simulator's Convoso zone (``options.convoso_timezone``,
default America/New_York); ``offset`` (default 0) and ``limit`` (default 10, max 100); the response
``{"success": true, "data": {"offset", "limit", "total", "entries": [...]}}`` with ``offset``,
``limit`` and ``total`` as *strings*, as the field table says (``options.convoso_string_numbers =
False`` serves the ints of the example); ``end_time`` may be ``""``; ``url`` is a file name.

The call log: ``start_time``/``end_time`` as above, ``limit`` (default 500, max 500 here), ``offset``,
``order`` (``asc`` | ``desc``, default ``desc``: newest call first), ``include_recordings`` (1 | 0) →
``{"success": true, "data": {"offset", "limit", "total_found" (a string), "entries" (a count),
"results": [call, ...]}}``; every simulated recording is one call (``id``, ``lead_id``, ``list_id``,
``campaign_id``, ``user_id``, ``status``, ``call_length``, ``call_date``) whose ``recording`` list holds
``{"recording_id", "src", "type", "filename", "public_url"}`` when the recording is ready and nothing
before (not ready) or ever (no recording). Which of ``src`` (absolute), ``public_url`` (absolute) or
``filename`` (relative to ``media_base_url``) carries the media is ``options.convoso_log_media``.

Where the documents are silent the simulator decides: errors (bad token, missing ``lead_id``, bad
times, ``limit`` out of range) answer HTTP 200 ``{"success": false, "code": <int>, "text": "…"}``
(401 for the token, 422 otherwise) the way Convoso's API reports failures in-band; a lead in
``options.convoso_unknown_leads`` answers code 6001 "No such Lead"; the time filters are inclusive at
both ends; lead entries are oldest first; ``/v1/lead/…`` answers 404 under the ``convoso_lead_404``
API fault. Media: ``{media_base_url}{url}`` = ``/convoso/recordings/{file}``, unsigned and
unauthenticated (Convoso's file host), served as ``audio/x-wav`` for wav files.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from providers.simulator._api import insert_during_paging, list_page_fault, num, preflight
from providers.simulator._http import Request, Response, json_response, offset_page, parse_int, text_response
from providers.simulator._serve import as_media, media_response
from providers.simulator.catalog import SimRecording, spoil

if TYPE_CHECKING:
    from providers.simulator.core import Simulator

__all__ = ["DEFAULT_LEAD", "UNKNOWN_LEAD_CODE", "extra", "route"]

VENDOR = "convoso"
DEFAULT_LEAD = "270"
_PATHS = ("/v1/lead/get-recordings", "/v1/leads/get-recordings")
_CALL_LOG = "/v1/log/retrieve"
UNKNOWN_LEAD_CODE = 6001
_MEDIA = "/recordings/"
_FORMAT = "%Y-%m-%d %H:%M:%S"
_TYPES = {"wav": "audio/x-wav", "mp3": "audio/mpeg", "m4a": "audio/mp4", "mp4": "video/mp4"}


def extra(sim: Simulator, recording: SimRecording) -> None:
    rng = sim.catalog.rng(VENDOR)
    epoch = int(recording.started_at.timestamp())
    recording.extra.update(filename=f"{epoch}-{recording.id}-all.{recording.kind}",
                           end_time_blank=rng.random() < 0.25, call_id=str(7_000_000_000 + int(recording.id)),
                           user_id=str(1000 + rng.randrange(50)))


def route(sim: Simulator, request: Request, sub: str) -> Response:
    if sub in _PATHS and request.method in ("GET", "HEAD"):
        if sub == _PATHS[0] and sim.catalog.take_api_fault(VENDOR, "convoso_lead_404") is not None:
            return text_response(404, "<html><body><h1>404 Not Found</h1></body></html>", "text/html")
        return _list(sim, request)
    if sub == _CALL_LOG and request.method in ("GET", "HEAD"):
        return _call_log(sim, request)
    if sub.startswith(_MEDIA) and request.method in ("GET", "HEAD"):
        return as_media(_media(sim, request, sub[len(_MEDIA) :]), None)
    return text_response(404, "<html><body><h1>404 Not Found</h1></body></html>", "text/html")


def _fail(code: int, text: str) -> Response:
    return json_response(200, {"success": False, "code": code, "text": text})


def _list(sim: Simulator, request: Request) -> Response:
    early = preflight(sim, VENDOR, request.param("auth_token"),
                      unauthorized=lambda: _fail(401, "Invalid auth token"), endpoint="list")
    if early is not None:
        return early
    lead = (request.param("lead_id") or "").strip()
    if not lead:
        return _fail(422, "lead_id is required")
    if lead in sim.options.convoso_unknown_leads:
        return _fail(UNKNOWN_LEAD_CODE, "No such Lead")
    zone = ZoneInfo(sim.options.convoso_timezone)
    try:
        start = _parse(request.param("start_time"), zone)
        end = _parse(request.param("end_time"), zone)
    except ValueError:
        return _fail(422, "start_time and end_time must be formatted YYYY-MM-DD HH:MM:SS")
    try:
        offset = parse_int(request.param("offset"), 0) or 0
        limit = parse_int(request.param("limit"), 10)
    except ValueError:
        return _fail(422, "offset and limit must be integers")
    if limit is None or not 1 <= limit <= 100 or offset < 0:
        return _fail(422, "limit must be between 1 and 100 and offset must not be negative")
    items = [
        r for r in sim.catalog.sorted(VENDOR)
        if r.state == "ready" and r.lead_id == lead
        and (start is None or r.started_at >= start) and (end is None or r.started_at <= end)
    ]
    page = offset // limit + 1
    broken = list_page_fault(sim, VENDOR, page)
    if broken is not None:
        return broken
    strings = sim.catalog.take_api_fault(VENDOR, "string_numbers") is not None
    paging_strings = strings or sim.options.convoso_string_numbers
    duplicate = page > 1 and sim.catalog.take_api_fault(VENDOR, "duplicates_across_pages") is not None
    chunk = offset_page(items, offset, limit, duplicate=duplicate)
    total = len(items)
    padded = sim.catalog.take_api_fault(VENDOR, "empty_page_nonzero_total")
    if padded is not None:
        total += int(padded.params.get("extra", 5))
    data = {"offset": num(offset, paging_strings), "limit": num(limit, paging_strings),
            "total": num(total, paging_strings), "entries": [_entry(sim, r, zone, strings) for r in chunk]}
    response = json_response(200, {"success": True, "data": data})
    if offset == 0:
        insert_during_paging(sim, VENDOR, items[0] if items else None)
    return response


def _call_log(sim: Simulator, request: Request) -> Response:
    early = preflight(sim, VENDOR, request.param("auth_token"),
                      unauthorized=lambda: _fail(401, "Invalid auth token"), endpoint="list")
    if early is not None:
        return early
    zone = ZoneInfo(sim.options.convoso_timezone)
    try:
        start = _parse(request.param("start_time"), zone)
        end = _parse(request.param("end_time"), zone)
        offset = parse_int(request.param("offset"), 0) or 0
        limit = parse_int(request.param("limit"), 500)
    except ValueError:
        return _fail(422, "start_time/end_time must be YYYY-MM-DD HH:MM:SS, offset and limit integers")
    order = (request.param("order") or "desc").lower()
    if limit is None or not 1 <= limit <= 500 or offset < 0 or order not in ("asc", "desc"):
        return _fail(422, "limit must be between 1 and 500, offset not negative, order asc or desc")
    items = [r for r in sim.catalog.sorted(VENDOR)
             if r.state != "deleted" and (start is None or r.started_at >= start)
             and (end is None or r.started_at <= end)]
    if order == "desc":
        items.reverse()
    page = offset // limit + 1
    broken = list_page_fault(sim, VENDOR, page)
    if broken is not None:
        return broken
    strings = sim.catalog.take_api_fault(VENDOR, "string_numbers") is not None
    duplicate = page > 1 and sim.catalog.take_api_fault(VENDOR, "duplicates_across_pages") is not None
    chunk = offset_page(items, offset, limit, duplicate=duplicate)
    total = len(items)
    padded = sim.catalog.take_api_fault(VENDOR, "empty_page_nonzero_total")
    if padded is not None:
        total += int(padded.params.get("extra", 5))
    with_recordings = (request.param("include_recordings") or "0").strip().lower() in ("1", "true")
    results = [_call(sim, r, zone, strings, with_recordings) for r in chunk]
    data = {"offset": offset, "limit": limit, "total_found": str(total), "entries": len(results), "results": results}
    response = json_response(200, {"success": True, "data": data})
    if offset == 0:
        insert_during_paging(sim, VENDOR, items[0] if items else None)
    return response


def _call(sim: Simulator, rec: SimRecording, zone: ZoneInfo, strings: bool, with_recordings: bool) -> dict[str, Any]:
    call: dict[str, Any] = {
        "id": rec.extra["call_id"], "lead_id": rec.lead_id, "list_id": "5001", "campaign_id": "311",
        "user_id": rec.extra["user_id"], "status": "SALE" if rec.state == "ready" else "NA",
        "call_length": num(round(rec.seconds), strings), "call_date": rec.started_at.astimezone(zone).strftime(_FORMAT),
    }
    bad = sim.catalog.bad_field(VENDOR, rec.id)
    bad = {"start_time": "call_date", "seconds": "call_length"}.get(bad or "", bad)  # lead names -> call log's
    if bad in ("call_date", "call_length"):
        spoil(call, bad)
    if not with_recordings:
        return call
    call["recording"] = []
    if rec.state == "ready":
        file_url = f"{sim.url}/{VENDOR}{_MEDIA}{rec.extra['filename']}"
        foreign = sim.catalog.take_fault(VENDOR, rec.id, frozenset({"foreign_url"}))
        if foreign is not None:
            file_url = f"http://{foreign.params.get('target_host', '127.0.0.2')}:{sim.port}/{VENDOR}{_MEDIA}" \
                       f"{rec.extra['filename']}"
        carrier = "src" if foreign is not None else sim.options.convoso_log_media
        element = {"recording_id": num(int(rec.id), strings), "src": "", "type": rec.kind, "filename": "",
                   "public_url": ""}
        element[carrier] = rec.extra["filename"] if carrier == "filename" else file_url
        if bad not in ("call_date", "call_length"):
            spoil(element, bad)
        call["recording"] = [element]
    return call


def _parse(value: str | None, zone: ZoneInfo) -> datetime | None:
    if value is None or not value.strip():
        return None
    return datetime.strptime(value.strip(), _FORMAT).replace(tzinfo=zone).astimezone(UTC)


def _entry(sim: Simulator, rec: SimRecording, zone: ZoneInfo, strings: bool) -> dict[str, Any]:
    local_start = rec.started_at.astimezone(zone)
    end = "" if rec.extra.get("end_time_blank") else (local_start + timedelta(seconds=round(rec.seconds)))
    url = rec.extra["filename"]
    foreign = sim.catalog.take_fault(VENDOR, rec.id, frozenset({"foreign_url"}))
    if foreign is not None:
        url = f"http://{foreign.params.get('target_host', '127.0.0.2')}:{sim.port}/{VENDOR}{_MEDIA}{url}"
    lead: Any = int(rec.lead_id) if rec.lead_id and rec.lead_id.isdigit() else rec.lead_id
    return spoil({
        "recording_id": num(int(rec.id), strings),
        "lead_id": num(lead, strings) if isinstance(lead, int) else lead,
        "start_time": local_start.strftime(_FORMAT),
        "end_time": end if isinstance(end, str) else end.strftime(_FORMAT),
        "seconds": num(round(rec.seconds), strings),
        "url": url,
    }, sim.catalog.bad_field(VENDOR, rec.id))


def _media(sim: Simulator, request: Request, name: str) -> Response:
    rec = next((r for r in sim.catalog.all(VENDOR) if r.extra.get("filename") == name), None)
    if rec is None or rec.state != "ready":
        return text_response(404, "<html><body><h1>404 Not Found</h1></body></html>", "text/html")
    return media_response(sim, request, rec, content_type=_TYPES[rec.kind],
                          expired=lambda: text_response(403, "<html><body><h1>403 Forbidden</h1></body></html>",
                                                        "text/html"))
