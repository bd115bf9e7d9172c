"""Convirza ``GET /v3/conversations/calls`` (document 002) and its signed recording links.

Served exactly as documented: Bearer auth; ``start``/``end`` ISO 8601 UTC (default: the last 7
days; the range must not exceed 31 days and ``end`` must be strictly greater than ``start``, else
400); ``limit`` required, 1-200; ``offset`` 0-based; ``include`` comma-separated (``recordings``
adds ``recording_details``); ``call_id`` single-record mode (ignores the range and paging; an
unknown id gives ``total: 0``); errors as ``{"code", "message", "request_id", "timestamp"}``.

Where the document is silent the simulator decides: the range is half-open ``[start, end)`` on
``call_started``; calls are listed oldest first; ``limit`` is not required in ``call_id`` mode.
Recording links: ``/convirza/media/v3/recordings/{call_id}?secret=…&access=…&expires=…&file_name=….mp3``
(the name ends in ``.mp3`` even when ``format`` says wav, and the media is served as
``audio/mpeg``: the bytes decide); an expired link answers 410 with the documented message.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from providers.simulator._api import (
    insert_during_paging,
    list_page_fault,
    media_origin,
    num,
    preflight,
)
from providers.simulator._http import (
    Request,
    Response,
    bearer,
    iso_ms,
    json_response,
    offset_page,
    parse_int,
    parse_iso,
    text_response,
)
from providers.simulator._serve import as_media, media_response
from providers.simulator.catalog import SimRecording, spoil
from providers.simulator.signing import LinkState

if TYPE_CHECKING:
    from providers.simulator.core import Simulator

__all__ = ["EXPIRED_MESSAGE", "extra", "route"]

VENDOR = "convirza"
EXPIRED_MESSAGE = "Recording URL has expired. Please re-fetch the call to get a fresh link."
_LIST = "/v3/conversations/calls"
_MEDIA = "/media/v3/recordings/"
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def extra(sim: Simulator, recording: SimRecording) -> None:
    rng = sim.catalog.rng(VENDOR)
    stamp = int(recording.started_at.timestamp() * 1000) + rng.randrange(1000)
    recording.extra.update(
        recording_id=rng.randrange(1000, 10_000_000),
        filename="".join(rng.choice(_ALNUM) for _ in range(8)) + f"_{stamp}",
        access=f"{rng.getrandbits(64):016x}",
        caller_id=f"1801555{rng.randrange(10_000):04d}",
    )


def route(sim: Simulator, request: Request, sub: str) -> Response:
    if sub == _LIST and request.method in ("GET", "HEAD"):
        return _list(sim, request)
    if sub.startswith(_MEDIA) and request.method in ("GET", "HEAD"):
        call_id = sub[len(_MEDIA) :]
        return as_media(_media(sim, request, call_id), call_id)
    return _error(404, "Not Found")


def _error(status: int, message: str) -> Response:
    return json_response(status, {"code": status, "message": message, "request_id": str(uuid.uuid4()),
                                  "timestamp": iso_ms(datetime.now(UTC))})


def _envelope(total: Any, calls: list[dict[str, Any]]) -> Response:
    return json_response(200, {"code": 200, "message": "Success", "data": {"total": total, "calls": calls},
                               "request_id": str(uuid.uuid4()), "timestamp": iso_ms(datetime.now(UTC))})


def _list(sim: Simulator, request: Request) -> Response:
    call_id = request.param("call_id")
    early = preflight(sim, VENDOR, bearer(request), unauthorized=lambda: _error(401, "Unauthorized"),
                      endpoint="item" if call_id else "list")
    if early is not None:
        return early
    include = {part.strip() for value in request.query.get("include", []) for part in value.split(",")}
    strings = sim.catalog.take_api_fault(VENDOR, "string_numbers") is not None
    if call_id is not None:
        if not call_id.strip().isdigit():
            return _error(400, "call_id must be an integer")
        found = sim.catalog.get(VENDOR, call_id.strip())
        calls = [] if found is None or found.state == "deleted" else [_call(sim, found, include, strings)]
        return _envelope(num(len(calls), strings), calls)
    try:
        limit = parse_int(request.param("limit"), None)
        offset = parse_int(request.param("offset"), 0) or 0
    except ValueError:
        return _error(400, "limit and offset must be integers")
    if limit is None:
        return _error(400, "limit is required")
    if not 1 <= limit <= 200 or offset < 0:
        return _error(400, "limit must be between 1 and 200 and offset must not be negative")
    try:
        end = parse_iso(request.param("end") or "") if request.param("end") else datetime.now(UTC)
        start = parse_iso(request.param("start") or "") if request.param("start") else end - timedelta(days=7)
    except ValueError:
        return _error(400, "start and end must be ISO 8601 timestamps")
    if end <= start:
        return _error(400, "end must be strictly greater than start")
    if end - start > timedelta(days=31):
        return _error(400, "The date range must not exceed 31 days")
    items = [r for r in sim.catalog.between(VENDOR, start, end) if r.state != "deleted"]
    page = offset // limit + 1
    broken = list_page_fault(sim, VENDOR, page)
    if broken is not None:
        return broken
    duplicate = page > 1 and sim.catalog.take_api_fault(VENDOR, "duplicates_across_pages") is not None
    chunk = offset_page(items, offset, limit, duplicate=duplicate)
    total = len(items)
    padded = sim.catalog.take_api_fault(VENDOR, "empty_page_nonzero_total")
    if padded is not None:
        total += int(padded.params.get("extra", 5))
    response = _envelope(num(total, strings), [_call(sim, r, include, strings) for r in chunk])
    if offset == 0:
        insert_during_paging(sim, VENDOR, items[0] if items else None)
    return response


def _call(sim: Simulator, rec: SimRecording, include: set[str], strings: bool) -> dict[str, Any]:
    ended = rec.started_at + timedelta(seconds=rec.seconds)
    call: dict[str, Any] = {
        "call_id": num(int(rec.id), strings),
        "provisioned_route_id": 1022,
        "org_unit_id": 1200,
        "disposition": "NO ANSWER" if rec.state == "no_recording" else "ANSWERED",
        "duration": num(round(rec.seconds), strings),
        "caller_id": rec.extra["caller_id"],
        "phone_number": "18015557654",
        "ring_to": "18015550000",
        "default_ring_to": "18015550000",
        "repeat_call": False,
        "call_started": iso_ms(rec.started_at),
        "campaign_id": 311,
        "campaign_name": "Roofing Q1",
        "campaign_ext_id": "EXT-001",
        "user_id": 1001,
        "group_name": "Roofing Division",
        "ai_caller_identity": "Jane Smith",
        "call_detail": {
            "bill_second": round(rec.seconds), "call_value": 75, "is_outbound": False, "cdr_source": "CE",
            "call_ended": iso_ms(ended), "analytic_status": "complete", "call_created": iso_ms(rec.started_at),
            "ring_to_name": "Sales Team", "channel": "Digital > Paid Search",
        },
        "summary": "Customer asked about financing.",
    }
    if "recordings" in include and rec.state == "ready":
        call["recording_details"] = _details(sim, rec, strings)
    if "tags" in include:
        call["tags"] = [{"tag_id": 1, "ct_user_id": 1001, "call_tag_created": iso_ms(ended), "tag_name": "Lead",
                         "tag_created": "2026-01-01T12:00:00.000Z", "tag_active": True}]
    if "comments" in include:
        call["comments"] = []
    if "custom_sources" in include:
        call["custom_sources"] = {}
    if "call_flow" in include:
        call["call_flow"] = {"provisioned_route_id": 1022, "route_name": "Main line"}
    if "transcription" in include:
        call["transcription"] = "Caller: I need a roof inspection..."
    return spoil(call, sim.catalog.bad_field(VENDOR, rec.id))


def _details(sim: Simulator, rec: SimRecording, strings: bool) -> dict[str, Any]:
    path = f"/{VENDOR}{_MEDIA}{rec.id}"
    expires, signature = sim.signer.sign(VENDOR, path, sim.link_ttl(VENDOR))
    filename = rec.extra["filename"]
    url = (f"{media_origin(sim, rec)}{path}?secret={signature}&access={rec.extra['access']}"
           f"&expires={expires}&file_name={filename}.mp3")
    hours, rest = divmod(rec.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    bitrate = "128 kb/s" if rec.kind == "wav" else "16 kb/s"
    return {
        "recording_id": num(rec.extra["recording_id"], strings),
        "filename": filename,
        "url": url,
        "expires_at": num(expires, strings),
        "channel_layout": "mono",
        "frequency": "8000 Hz",
        "format": rec.kind,
        "duration": f"{int(hours):02d}:{int(minutes):02d}:{seconds:05.2f}",
        "bitrate": bitrate,
        "size": f"{math.ceil(rec.size / 1000)}kB",
    }


def _media(sim: Simulator, request: Request, call_id: str) -> Response:
    path = f"/{VENDOR}{_MEDIA}{call_id}"
    state = sim.signer.verify(VENDOR, path, request.param("expires"), request.param("secret"))
    if state is LinkState.EXPIRED:
        return _expired()
    if state is LinkState.INVALID:
        return _error(403, "Invalid or missing recording signature")
    rec = sim.catalog.get(VENDOR, call_id)
    if rec is None or rec.state != "ready":
        return _error(404, "Recording not found")
    response = media_response(sim, request, rec, content_type="audio/mpeg", expired=_expired)
    name = request.param("file_name")
    if name and response.status in (200, 206):
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _expired() -> Response:
    return text_response(410, EXPIRED_MESSAGE)
