"""Envoy: ``GET /api/v1/calls/{call_id}/recording`` (document 003) and the call list PROVIDERS.md
adopts.

Recording endpoint as documented: Bearer auth, optional ``X-Organization-ID``; fields ``call_id``,
``url`` (time-limited), ``content_type`` (audio/mp4 | video/mp4), ``expires_at``,
``recording_status``, ``duration_seconds``, ``file_size_bytes``, ``recording_start_time``; 401, 403,
404, 422, 429 errors. Call ids look like ``call_<uuid>``; the path also accepts the bare uuid (the
document types the parameter as uuid); anything else answers 422 with a FastAPI-style ``detail``.

Where the document is silent the simulator decides: ``GET /api/v1/calls?limit=&created_after=&cursor=``
→ ``{"data": [{"call_id", "created_at", ...}], "next_cursor": "…" | null}`` oldest first, ``limit``
1-100 (default 50, else 422), ``created_after`` inclusive; ``GET /api/v1/calls/{call_id}`` returns
one call; a recording still processing answers 200 with ``recording_status`` ``processing`` (or
``pending``) and ``url`` null; a call without a recording answers 404 (or 200 ``failed`` when its
state detail says so); a wrong ``X-Organization-ID`` (when ``options.envoy_organization_id`` is set)
answers 403; media links are S3-style presigned (expired: 403 ``AccessDenied``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from providers.simulator._api import insert_during_paging as _insert
from providers.simulator._api import (
    keyset_page,
    list_page_fault,
    media_origin,
    num,
    preflight,
    s3_expired,
    s3_link,
    verify_s3,
)
from providers.simulator._http import Request, Response, bearer, iso_ms, iso_s, json_response, parse_int, parse_iso
from providers.simulator._serve import as_media, media_response
from providers.simulator.catalog import SimRecording
from providers.simulator.media import CONTENT_TYPES

if TYPE_CHECKING:
    from providers.simulator.core import Simulator

__all__ = ["extra", "route"]

VENDOR = "envoy"
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_CALL_ID = re.compile(rf"^(?:call_)?({_UUID})$")
_CALL = re.compile(r"^/api/v1/calls/([^/]+)$")
_RECORDING = re.compile(r"^/api/v1/calls/([^/]+)/recording$")
_MEDIA = re.compile(r"^/media/([^/]+)/recording\.([a-z0-9]+)$")


def extra(sim: Simulator, recording: SimRecording) -> None:
    rng = sim.catalog.rng(VENDOR)
    recording.extra.update(to_number=f"+1415555{rng.randrange(10_000):04d}", agent=f"agent_{rng.randrange(100)}")


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
    return json_response(200, _call(rec, strings))


def _detail(status: int, message: str) -> Response:
    return json_response(status, {"detail": message})


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


def _list(sim: Simulator, request: Request) -> Response:
    early = _guard(sim, request, "list")
    if early is not None:
        return early
    try:
        limit = parse_int(request.param("limit"), 50) or 0
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        return json_response(422, {"detail": [{"type": "int_range", "loc": ["query", "limit"],
                                               "msg": "Input should be between 1 and 100"}]})
    after = request.param("created_after")
    try:
        since = parse_iso(after) if after else None
    except ValueError:
        return json_response(422, {"detail": [{"type": "datetime_parsing", "loc": ["query", "created_after"],
                                               "msg": "Input should be a valid datetime"}]})
    items = [r for r in sim.catalog.sorted(VENDOR, by="created_at")
             if r.state != "deleted" and (since is None or r.created_at >= since)]
    try:
        chunk, following, page = keyset_page(sim, VENDOR, items, request.param("cursor"), limit)
    except (ValueError, KeyError, TypeError):
        return _detail(400, "Invalid cursor")
    broken = list_page_fault(sim, VENDOR, page)
    if broken is not None:
        return broken
    strings = sim.catalog.take_api_fault(VENDOR, "string_numbers") is not None
    response = json_response(200, {"data": [_call(r, strings) for r in chunk], "next_cursor": following})
    if page == 1:
        _insert(sim, VENDOR, items[0] if items else None)
    return response


def _call(rec: SimRecording, strings: bool) -> dict[str, Any]:
    return {
        "call_id": rec.id,
        "created_at": iso_ms(rec.created_at),
        "status": "ended",
        "direction": "outbound",
        "from_number": "+14155550100",
        "to_number": rec.extra["to_number"],
        "agent_id": rec.extra["agent"],
        "started_at": iso_s(rec.started_at),
        "ended_at": iso_s(rec.started_at + timedelta(seconds=rec.seconds)),
        "duration_seconds": num(rec.vendor_duration_seconds, strings),
        "has_recording": rec.state != "no_recording",
    }


def _content_type(rec: SimRecording) -> str:
    return CONTENT_TYPES[rec.kind]


def _recording(sim: Simulator, rec: SimRecording, strings: bool) -> Response:
    body: dict[str, Any] = {
        "call_id": rec.id, "url": None, "content_type": _content_type(rec), "expires_at": None,
        "recording_status": rec.detail or "processing", "duration_seconds": None, "file_size_bytes": None,
        "recording_start_time": iso_s(rec.started_at),
    }
    if rec.state == "no_recording":
        if rec.detail != "failed":
            return _detail(404, "Recording not found")
        body["recording_status"] = "failed"
        return json_response(200, body)
    if rec.state == "ready":
        link, expires = s3_link(sim, VENDOR, f"/{VENDOR}/media/{rec.id}/recording.{rec.kind}")
        body.update(url=f"{media_origin(sim, rec)}{link}", expires_at=iso_s(datetime.fromtimestamp(expires, UTC)),
                    recording_status="completed", duration_seconds=num(rec.vendor_duration_seconds, strings),
                    file_size_bytes=num(rec.size, strings))
    return json_response(200, body)


def _media(sim: Simulator, request: Request, call_id: str) -> Response:
    rejected = verify_s3(sim, VENDOR, request)
    if rejected is not None:
        return rejected
    rec = sim.catalog.get(VENDOR, call_id)
    if rec is None or rec.state != "ready":
        return json_response(404, {"detail": "Not Found"})
    return media_response(sim, request, rec, content_type=_content_type(rec), expired=s3_expired)
