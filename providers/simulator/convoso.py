"""Convoso ``GET /v1/lead/get-recordings`` (document 000), under both spellings the document uses.

Served as documented: ``auth_token`` query parameter; ``lead_id`` required; ``start_time`` /
``end_time`` naive ``YYYY-MM-DD HH:MM:SS`` in the simulator's Convoso zone (``options.convoso_timezone``,
default America/New_York); ``offset`` (default 0) and ``limit`` (default 10, max 100); the response
``{"success": true, "data": {"offset", "limit", "total", "entries": [...]}}`` with ``offset``,
``limit`` and ``total`` as *strings*, as the field table says (``options.convoso_string_numbers =
False`` serves the ints of the example); ``end_time`` may be ``""``; ``url`` is a file name.

Where the document is silent the simulator decides: errors (bad token, missing ``lead_id``, bad
times, ``limit`` outside 1-100) answer HTTP 200 ``{"success": false, "code": <int>, "text": "…"}``
(401 for the token, 422 otherwise) the way Convoso's API reports failures in-band; the time filter
is inclusive at both ends; entries are oldest first; ``/v1/lead/…`` answers 404 under the
``convoso_lead_404`` API fault. Media: ``{media_base_url}{url}`` = ``/convoso/recordings/{file}``,
unsigned and unauthenticated (Convoso's file host), served as ``audio/x-wav`` for wav files.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from providers.simulator._api import insert_during_paging, list_page_fault, num, preflight
from providers.simulator._http import Request, Response, json_response, offset_page, parse_int, text_response
from providers.simulator._serve import as_media, media_response
from providers.simulator.catalog import SimRecording

if TYPE_CHECKING:
    from providers.simulator.core import Simulator

__all__ = ["DEFAULT_LEAD", "extra", "route"]

VENDOR = "convoso"
DEFAULT_LEAD = "270"
_PATHS = ("/v1/lead/get-recordings", "/v1/leads/get-recordings")
_MEDIA = "/recordings/"
_FORMAT = "%Y-%m-%d %H:%M:%S"
_TYPES = {"wav": "audio/x-wav", "mp3": "audio/mpeg", "m4a": "audio/mp4", "mp4": "video/mp4"}


def extra(sim: Simulator, recording: SimRecording) -> None:
    rng = sim.catalog.rng(VENDOR)
    epoch = int(recording.started_at.timestamp())
    recording.extra.update(filename=f"{epoch}-{recording.id}-all.{recording.kind}",
                           end_time_blank=rng.random() < 0.25)


def route(sim: Simulator, request: Request, sub: str) -> Response:
    if sub in _PATHS and request.method in ("GET", "HEAD"):
        if sub == _PATHS[0] and sim.catalog.take_api_fault(VENDOR, "convoso_lead_404") is not None:
            return text_response(404, "<html><body><h1>404 Not Found</h1></body></html>", "text/html")
        return _list(sim, request)
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
    return {
        "recording_id": num(int(rec.id), strings),
        "lead_id": num(lead, strings) if isinstance(lead, int) else lead,
        "start_time": local_start.strftime(_FORMAT),
        "end_time": end if isinstance(end, str) else end.strftime(_FORMAT),
        "seconds": num(round(rec.seconds), strings),
        "url": url,
    }


def _media(sim: Simulator, request: Request, name: str) -> Response:
    rec = next((r for r in sim.catalog.all(VENDOR) if r.extra.get("filename") == name), None)
    if rec is None or rec.state != "ready":
        return text_response(404, "<html><body><h1>404 Not Found</h1></body></html>", "text/html")
    return media_response(sim, request, rec, content_type=_TYPES[rec.kind],
                          expired=lambda: text_response(403, "<html><body><h1>403 Forbidden</h1></body></html>",
                                                        "text/html"))
