"""Envoy (tryenvoy.ai) as its public pages describe it: "List calls", "Get a call", "Pagination" and
"Get call recording" (seed 003).

Served as published: Bearer auth, optional ``X-Organization-ID``;
``GET /api/v1/calls?start_date=YYYY-MM-DD&end_date=YYYY-MM-DD&page=N&page_size=M`` (``page`` from 1,
``page_size`` default 20, at most 100, else 422) → ``{"data": [call, ...], "pagination": {"page",
"page_size", "total_count", "total_pages", "has_next", "has_prev"}}``; ``GET /api/v1/calls/{call_id}``
→ one call; a call has the pages' fields (``id`` = ``call_<uuid>``, ``status`` ``COMPLETED``,
``call_time``, ``created_at``, ``updated_at``, ``call_start_time``, ``call_end_time``,
``recording_status``, …); ``GET /api/v1/calls/{call_id}/recording`` → ``call_id``, ``url``
(time-limited), ``content_type`` (audio/mp4 | video/mp4), ``expires_at``, ``recording_status``,
``duration_seconds``, ``file_size_bytes``, ``recording_start_time``; errors 401, 403, 404, 422, 429.

Where the pages are silent the simulator decides: the date filters compare the calls' ``created_at``
day (inclusive at both ends); calls are listed newest first (as "Get calls for a load" is); a ready
recording's ``recording_status`` is ``AVAILABLE`` (the one real value a page shows), a processing one
says ``PROCESSING`` (or its state ``detail``), a call without a recording ``NOT_RECORDED`` (or its
``detail``, e.g. ``FAILED``) and its recording endpoint answers 404; an id that is not ``call_<uuid>``
(or a bare uuid) answers 422. Media links are S3-style presigned URLs on the simulator's storage host
(``Simulator.storage_origin``), not on the API host; an expired one answers 403 ``AccessDenied``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from providers.simulator._api import (
    insert_during_paging,
    list_page_fault,
    media_origin,
    num,
    preflight,
    s3_expired,
    s3_link,
    verify_s3,
)
from providers.simulator._http import Request, Response, bearer, iso_s, json_response, offset_page, parse_int
from providers.simulator._serve import as_media, media_response
from providers.simulator.catalog import SimRecording, spoil
from providers.simulator.media import CONTENT_TYPES

if TYPE_CHECKING:
    from providers.simulator.core import Simulator

__all__ = ["extra", "recording_status", "route"]

VENDOR = "envoy"
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_CALL_ID = re.compile(rf"^(?:call_)?({_UUID})$")
_CALL = re.compile(r"^/api/v1/calls/([^/]+)$")
_RECORDING = re.compile(r"^/api/v1/calls/([^/]+)/recording$")
_MEDIA = re.compile(r"^/media/([^/]+)/recording\.([a-z0-9]+)$")
_ZERO = "00000000-0000-0000-0000-000000000000"


def extra(sim: Simulator, recording: SimRecording) -> None:
    rng = sim.catalog.rng(VENDOR)
    recording.extra.update(to_number=f"+1415555{rng.randrange(10_000):04d}",
                           load_id=f"load_{sim.catalog.new_uuid(VENDOR)}", created_by=f"usr_{_ZERO}")


def route(sim: Simulator, request: Request, sub: str) -> Response:
    if request.method not in ("GET", "HEAD"):
        return _detail(405, "Method Not Allowed")
    if match := _MEDIA.match(sub):
        return as_media(_media(sim, request, match.group(1)), match.group(1))
    if sub == "/api/v1/calls":
        return _list(sim, request)
    match = _RECORDING.match(sub) or _CALL.match(sub)
    if match is None:
        return _detail(404, "Not Found")
    early = _guard(sim, request, "item")
    if early is not None:
        return early
    ident = _CALL_ID.match(match.group(1))
    if ident is None:
        return json_response(422, {"detail": [{"type": "uuid_parsing", "loc": ["path", "call_id"],
                                               "msg": "Input should be a valid UUID", "input": match.group(1)}]})
    rec = sim.catalog.get(VENDOR, f"call_{ident.group(1)}")
    if rec is None or rec.state == "deleted":
        return _detail(404, "Call not found")
    strings = sim.catalog.take_api_fault(VENDOR, "string_numbers") is not None
    if sub.endswith("/recording"):
        return _recording(sim, rec, strings)
    return json_response(200, _call(sim, rec, strings))


def _detail(status: int, message: str) -> Response:
    return json_response(status, {"detail": message})


def _invalid(where: str, kind: str, message: str) -> Response:
    return json_response(422, {"detail": [{"type": kind, "loc": ["query", where], "msg": message}]})


def _guard(sim: Simulator, request: Request, endpoint: str) -> Response | None:
    early = preflight(sim, VENDOR, bearer(request), unauthorized=lambda: _detail(401, "Not authenticated"),
                      endpoint=endpoint)
    if early is not None:
        return early
    wanted = sim.options.envoy_organization_id
    given = request.headers.get("X-Organization-ID")
    if wanted and given is not None and given != wanted:
        return _detail(403, "Not a member of this organization")
    return None


def _day(value: str | None) -> date | None:
    if value is None or not value.strip():
        return None
    return date.fromisoformat(value.strip())


def _list(sim: Simulator, request: Request) -> Response:
    early = _guard(sim, request, "list")
    if early is not None:
        return early
    try:
        size = parse_int(request.param("page_size"), 20) or 0
        number = parse_int(request.param("page"), 1) or 0
    except ValueError:
        return _invalid("page", "int_parsing", "Input should be a valid integer")
    if not 1 <= size <= 100:
        return _invalid("page_size", "less_than_equal", "Input should be between 1 and 100")
    if number < 1:
        return _invalid("page", "greater_than_equal", "Input should be greater than or equal to 1")
    try:
        first, last = _day(request.param("start_date")), _day(request.param("end_date"))
    except ValueError:
        return _invalid("start_date", "date_parsing", "Input should be a valid date (YYYY-MM-DD)")
    items = [r for r in sim.catalog.sorted(VENDOR, by="created_at")
             if r.state != "deleted"
             and (first is None or r.created_at.date() >= first) and (last is None or r.created_at.date() <= last)]
    items.reverse()  # newest first
    broken = list_page_fault(sim, VENDOR, number)
    if broken is not None:
        return broken
    strings = sim.catalog.take_api_fault(VENDOR, "string_numbers") is not None
    duplicate = number > 1 and sim.catalog.take_api_fault(VENDOR, "duplicates_across_pages") is not None
    chunk = offset_page(items, (number - 1) * size, size, duplicate=duplicate)
    total = len(items)
    padded = sim.catalog.take_api_fault(VENDOR, "empty_page_nonzero_total")
    if padded is not None:
        total += int(padded.params.get("extra", 5))
    pages = -(-total // size)
    paging = {"page": num(number, strings), "page_size": num(size, strings), "total_count": num(total, strings),
              "total_pages": num(pages, strings), "has_next": number < pages, "has_prev": number > 1}
    response = json_response(200, {"data": [_call(sim, r, strings) for r in chunk], "pagination": paging})
    if number == 1:
        insert_during_paging(sim, VENDOR, items[0] if items else None)
    return response


def recording_status(rec: SimRecording) -> str:
    """What Envoy says about the recording of a call in this state."""
    if rec.state == "ready":
        return "AVAILABLE"
    if rec.state == "no_recording":
        return (rec.detail or "NOT_RECORDED").upper()
    return (rec.detail or "PROCESSING").upper()


def _call(sim: Simulator, rec: SimRecording, strings: bool) -> dict[str, Any]:
    ended = rec.started_at + timedelta(seconds=rec.seconds)
    return spoil({
        "id": rec.id,
        "status": "COMPLETED",
        "call_time": iso_s(rec.started_at),
        "created_at": _iso(rec.created_at),
        "updated_at": _iso(rec.created_at),
        "call_direction": "OUTBOUND",
        "phone_number": rec.extra["to_number"],
        "to_number": rec.extra["to_number"],
        "from_number": "+14155550100",
        "call_start_time": iso_s(rec.started_at),
        "call_end_time": iso_s(ended),
        "call_type": "Carrier Outreach",
        "load_id": rec.extra["load_id"],
        "organization_id": f"org_{_ZERO}",
        "created_by_id": rec.extra["created_by"],
        "recording_status": recording_status(rec),
        "load_number": f"LD{rec.seq:09d}",
    }, sim.catalog.bad_field(VENDOR, rec.id))


def _iso(moment: datetime) -> str:
    """ISO 8601 with microseconds when there are any (FastAPI's ``datetime`` serialisation)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _recording(sim: Simulator, rec: SimRecording, strings: bool) -> Response:
    if rec.state == "no_recording":
        return _detail(404, "Recording not found")
    body: dict[str, Any] = {
        "call_id": rec.id, "url": None, "content_type": CONTENT_TYPES[rec.kind], "expires_at": None,
        "recording_status": recording_status(rec), "duration_seconds": None, "file_size_bytes": None,
        "recording_start_time": iso_s(rec.started_at),
    }
    if rec.state == "ready":
        link, expires = s3_link(sim, VENDOR, f"/{VENDOR}/media/{rec.id}/recording.{rec.kind}")
        origin = media_origin(sim, rec)
        if origin == sim.url:
            origin = sim.storage_origin()
        body.update(url=f"{origin}{link}", expires_at=iso_s(datetime.fromtimestamp(expires, UTC)),
                    duration_seconds=num(rec.vendor_duration_seconds, strings),
                    file_size_bytes=num(rec.size, strings))
    return json_response(200, body)


def _media(sim: Simulator, request: Request, call_id: str) -> Response:
    rejected = verify_s3(sim, VENDOR, request)
    if rejected is not None:
        return rejected
    rec = sim.catalog.get(VENDOR, call_id)
    if rec is None or rec.state != "ready":
        return json_response(404, {"detail": "Not Found"})
    return media_response(sim, request, rec, content_type=CONTENT_TYPES[rec.kind], expired=s3_expired)
