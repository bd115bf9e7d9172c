"""Salesloft ``GET /v2/conversations`` (seed 001), the recording behind each conversation, and the
team's shared rate-limit budget.

Served as documented: Bearer auth; ``created_at[gte|gt|lte|lt]`` (ISO 8601, compared at full
precision), ``sort_by`` (created_at | updated_at | duration, default created_at),
``sort_direction`` (ASC | DESC in any case, default DESC), ``per_page`` 1-100 (default 25),
``page`` (default 1), ``include_paging_counts``; items with the document's fields (``duration`` in
milliseconds, ``media_type`` audio | video, ``recording`` ``{"id", "_href"}`` or null while not ready).
Rate limits as the public "Rate Limits" page says: 600 cost units a minute per team, shared with the
customer's other integrations (``options.salesloft_other_usage``), page numbers past 100 costing 3,
8, 10 or 30 units; every API answer carries ``x-ratelimit-endpoint-cost`` and
``x-ratelimit-remaining-minute``; a request the budget cannot pay answers 429 with ``Retry-After``.

The recording endpoint, ``GET /v2/conversations/{id}/recording`` ("Fetch Conversation recording",
the ``recording._href``; ``/v2/recordings/{recording id}`` is kept as an alias), needs the "Download
Conversations" permission (``options.salesloft_download_permission``; without it, 403) and answers
per recording (``Simulator.set_delivery``, ``DELIVERIES``) JSON with an S3-style presigned media URL
at ``data.url`` (default), ``url``, ``data.recording_url`` or ``download_url``, a 302 to it, or the
bytes themselves. The media URL is on the simulator's storage host (``Simulator.storage_origin``),
not on the API host; an expired one answers 403 with an S3 ``AccessDenied`` body.

Where the document is silent the simulator decides (as PROVIDERS.md does): the response is
Salesloft's usual envelope ``{"data": [...], "metadata": {"paging": {"per_page", "current_page",
"next_page", "prev_page"}}}`` (``options.salesloft_bare_array`` serves the document's bare array);
invalid parameters answer 400 ``{"errors": {param: [message]}}``; ``ids[]`` filters by id.
"""

from __future__ import annotations

import re
import time
from collections import deque
from datetime import UTC, datetime, timedelta
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
from providers.simulator.media import CONTENT_TYPES

if TYPE_CHECKING:
    from providers.simulator.core import Simulator

__all__ = ["BUDGET", "DELIVERIES", "extra", "page_cost", "route"]

VENDOR = "salesloft"
#: cost units per minute per team (the public "Rate Limits" page; ``options.salesloft_budget``)
BUDGET = 600
#: how the recording endpoint may answer (``Simulator.set_delivery``)
DELIVERIES = ("json", "json_top", "recording_url", "download_url", "redirect", "bytes")
_LIST = "/v2/conversations"
_ONE = re.compile(r"^/v2/conversations/([^/]+)$")
_RECORDING = re.compile(r"^/v2/recordings/([^/]+)$")
_CONVERSATION_RECORDING = re.compile(r"^/v2/conversations/([^/]+)/recording$")
_MEDIA = re.compile(r"^/media/([^/.]+)\.([a-z0-9]+)$")
_OPS = {"gte": datetime.__ge__, "gt": datetime.__gt__, "lte": datetime.__le__, "lt": datetime.__lt__}


def extra(sim: Simulator, recording: SimRecording) -> None:
    rng = sim.catalog.rng(VENDOR)
    recording.extra.update(
        recording_id=sim.catalog.new_uuid(VENDOR), owner_id=sim.catalog.new_uuid(VENDOR),
        organization_id="3fa85f64-5717-4562-b3fc-2c963f66afa6", call_id=str(rng.randrange(10**8, 10**9)),
        title=f"Discovery call #{rng.randrange(1000, 9999)}",
    )


def page_cost(page: int) -> int:
    """The cost of a request for ``page`` (pages past 100 cost more, the public rate-limit page)."""
    if page > 500:
        return 30
    if page > 250:
        return 10
    if page > 150:
        return 8
    return 3 if page > 100 else 1


def route(sim: Simulator, request: Request, sub: str) -> Response:
    if request.method not in ("GET", "HEAD"):
        return _error(405, "Method Not Allowed")
    if sub.startswith("/media/"):
        return _route(sim, request, sub)
    try:
        page = int(request.param("page") or 1) if sub == _LIST else 1
    except ValueError:
        page = 1
    cost = page_cost(page)
    token = bearer(request) or ""
    left = _remaining(sim, token)
    if token == sim.token(VENDOR) and left < cost:
        response = _error(429, "Too Many Requests")
        response.headers["Retry-After"] = str(_until_free(sim, token, cost))
    else:
        response = _route(sim, request, sub)
        if token == sim.token(VENDOR) and response.status != 401:
            _spend(sim, token, cost)
            left -= cost
    response.headers.update({"x-ratelimit-endpoint-cost": str(cost), "x-ratelimit-remaining-minute": str(max(0, left))})
    return response


def _window(sim: Simulator, token: str) -> deque[tuple[float, int]]:
    with sim.catalog.lock:
        spent: dict[str, deque[tuple[float, int]]] = sim.vendor_state.setdefault(VENDOR, {}).setdefault("spent", {})
        window = spent.setdefault(token, deque())
        now = time.monotonic()
        while window and now - window[0][0] >= 60.0:
            window.popleft()
        return window


def _remaining(sim: Simulator, token: str) -> int:
    window = _window(sim, token)
    with sim.catalog.lock:
        return sim.options.salesloft_budget - sim.options.salesloft_other_usage - sum(cost for _, cost in window)


def _spend(sim: Simulator, token: str, cost: int) -> None:
    window = _window(sim, token)
    with sim.catalog.lock:
        window.append((time.monotonic(), cost))


def _until_free(sim: Simulator, token: str, cost: int) -> int:
    """Whole seconds until the budget can pay ``cost`` again (a minute if others use it all)."""
    window = _window(sim, token)
    with sim.catalog.lock:
        needed = cost - (sim.options.salesloft_budget - sim.options.salesloft_other_usage - sum(c for _, c in window))
        now = time.monotonic()
        for at, spent in window:
            needed -= spent
            if needed <= 0:
                return max(1, round(60.0 - (now - at)))
    return 60


def _route(sim: Simulator, request: Request, sub: str) -> Response:
    if sub == _LIST:
        return _list(sim, request)
    if match := _CONVERSATION_RECORDING.match(sub):
        rec = sim.catalog.get(VENDOR, match.group(1))
        return _recording(sim, request, rec.extra["recording_id"] if rec is not None else "")
    if match := _ONE.match(sub):
        return _one(sim, request, match.group(1))
    if match := _RECORDING.match(sub):
        return _recording(sim, request, match.group(1))
    if match := _MEDIA.match(sub):
        rec = _by_recording(sim, match.group(1))
        return as_media(_media(sim, request, match.group(1)), rec.id if rec is not None else None)
    return _error(404, "Not Found")


def _error(status: int, message: str) -> Response:
    return json_response(status, {"status": status, "error": message})


def _invalid(param: str, message: str) -> Response:
    return json_response(400, {"errors": {param: [message]}})


def _guard(sim: Simulator, request: Request, endpoint: str) -> Response | None:
    return preflight(sim, VENDOR, bearer(request), unauthorized=lambda: _error(401, "Unauthorized"),
                     endpoint=endpoint)


def _list(sim: Simulator, request: Request) -> Response:
    early = _guard(sim, request, "list")
    if early is not None:
        return early
    filters: list[tuple[str, str, datetime]] = []
    for field in ("created_at", "updated_at"):
        for op in _OPS:
            value = request.param(f"{field}[{op}]")
            if value:
                try:
                    filters.append((field, op, parse_iso(value)))
                except ValueError:
                    return _invalid(f"{field}[{op}]", "must be an iso8601 timestamp")
    sort_by = request.param("sort_by") or "created_at"
    direction = (request.param("sort_direction") or "DESC").upper()
    if sort_by not in ("created_at", "updated_at", "duration"):
        return _invalid("sort_by", "must be one of created_at, updated_at, duration")
    if direction not in ("ASC", "DESC"):
        return _invalid("sort_direction", "must be one of ASC, DESC")
    try:
        per_page = parse_int(request.param("per_page"), 25) or 0
        page = parse_int(request.param("page"), 1) or 0
    except ValueError:
        return _invalid("per_page", "per_page and page must be integers")
    if not 1 <= per_page <= 100:
        return _invalid("per_page", "must be in the range [1, 100]")
    if page < 1:
        return _invalid("page", "must be at least 1")
    ids = set(request.query.get("ids[]", []) + request.query.get("ids", []))
    media_type = request.param("media_type")
    items = [
        r for r in sim.catalog.all(VENDOR)
        if r.state != "deleted" and (not ids or r.id in ids)
        and (not media_type or media_type == ("video" if r.is_video else "audio"))
        and all(_OPS[op](r.created_at, when) for _field, op, when in filters)
    ]
    key = (lambda r: (r.seconds, r.seq)) if sort_by == "duration" else (lambda r: (r.created_at, r.seq))
    items.sort(key=key, reverse=direction == "DESC")
    broken = list_page_fault(sim, VENDOR, page)
    if broken is not None:
        return broken
    strings = sim.catalog.take_api_fault(VENDOR, "string_numbers") is not None
    duplicate = page > 1 and sim.catalog.take_api_fault(VENDOR, "duplicates_across_pages") is not None
    offset = (page - 1) * per_page
    chunk = offset_page(items, offset, per_page, duplicate=duplicate)
    data = [_conversation(sim, r, strings) for r in chunk]
    if sim.options.salesloft_bare_array:
        response = json_response(200, data)
    else:
        paging: dict[str, Any] = {"per_page": per_page, "current_page": page,
                                  "next_page": page + 1 if offset + per_page < len(items) else None,
                                  "prev_page": page - 1 if page > 1 else None}
        if (request.param("include_paging_counts") or "").lower() == "true":
            paging.update(total_pages=-(-len(items) // per_page), total_count=len(items))
        response = json_response(200, {"data": data, "metadata": {
            "filtering": {}, "paging": paging, "sorting": {"sort_by": sort_by, "sort_direction": direction}}})
    if page == 1:
        insert_during_paging(sim, VENDOR, items[0] if items else None)
    return response


def _one(sim: Simulator, request: Request, conversation_id: str) -> Response:
    early = _guard(sim, request, "item")
    if early is not None:
        return early
    rec = sim.catalog.get(VENDOR, conversation_id)
    if rec is None or rec.state == "deleted":
        return _error(404, "Not Found")
    strings = sim.catalog.take_api_fault(VENDOR, "string_numbers") is not None
    return json_response(200, {"data": _conversation(sim, rec, strings)})


def _conversation(sim: Simulator, rec: SimRecording, strings: bool) -> dict[str, Any]:
    def ref(kind: str, ident: str) -> dict[str, str]:
        return {"id": ident, "_href": f"{sim.url}/{VENDOR}/v2/{kind}/{ident}"}

    recording = None
    if rec.state == "ready":
        href = f"{_origin(sim, rec, 'href')}/{VENDOR}/v2/conversations/{rec.id}/recording"
        recording = {"id": rec.extra["recording_id"], "_href": href}
    return spoil({
        "id": rec.id,
        "duration": num(round(rec.seconds * 1000), strings),
        "is_api": False,
        "platform": "zoom" if rec.is_video else "salesloft",
        "media_type": "video" if rec.is_video else "audio",
        "organization_id": rec.extra["organization_id"],
        "title": rec.extra["title"],
        "owner_id": rec.extra["owner_id"],
        "user_guid": rec.extra["owner_id"],
        "started_recording_at": 0,
        "event_end_date": iso_ms(rec.started_at + timedelta(seconds=rec.seconds)),
        "event_start_date": iso_ms(rec.started_at),
        "language_code": "en-US",
        "created_at": iso_ms(rec.created_at),
        "updated_at": iso_ms(rec.created_at),
        "call_id": rec.extra["call_id"],
        "account": ref("accounts", "1001"),
        "person": ref("people", "2002"),
        "recording": recording,
        "transcription": ref("transcriptions", rec.id) if rec.state == "ready" else None,
        "transcription_sentences": None,
        "transcription_artifact": None,
    }, sim.catalog.bad_field(VENDOR, rec.id))


def _origin(sim: Simulator, rec: SimRecording, where: str) -> str:
    """The simulator, unless a ``foreign_url`` fault points ``where`` ("media", or "href" with
    ``on="href"``: the ``_href`` itself, which carries the Bearer token) at a foreign host."""
    with sim.catalog.lock:
        spec = sim.catalog.faults.get((VENDOR, rec.id))
        applies = spec is not None and spec.name == "foreign_url" and spec.params.get("on", "media") == where
    return media_origin(sim, rec) if applies else sim.url


def _by_recording(sim: Simulator, recording_id: str) -> SimRecording | None:
    return next((r for r in sim.catalog.all(VENDOR) if r.extra.get("recording_id") == recording_id), None)


def _recording(sim: Simulator, request: Request, recording_id: str) -> Response:
    early = _guard(sim, request, "item")
    if early is not None:
        return early
    rec = _by_recording(sim, recording_id)
    if rec is None or rec.state != "ready":
        return _error(404, "Not Found")
    if not sim.options.salesloft_download_permission:
        return _error(403, "You do not have the Download Conversations permission")
    if rec.delivery == "bytes":
        return media_response(sim, request, rec, content_type=CONTENT_TYPES[rec.kind], expired=s3_expired)
    path = f"/{VENDOR}/media/{recording_id}.{rec.kind}"
    link, expires = s3_link(sim, VENDOR, path)
    origin = _origin(sim, rec, "media")
    url = f"{sim.storage_origin() if origin == sim.url else origin}{link}"
    if rec.delivery == "redirect":
        response = text_response(302, "Found")
        response.headers["Location"] = url
        return response
    expires_at = iso_ms(datetime.fromtimestamp(expires, UTC))
    fields = {"expires_at": expires_at, "content_type": CONTENT_TYPES[rec.kind]}
    if rec.delivery == "json_top":
        return json_response(200, {"id": recording_id, "url": url, **fields})
    if rec.delivery == "recording_url":
        return json_response(200, {"data": {"id": recording_id, "recording_url": url, **fields}})
    if rec.delivery == "download_url":
        return json_response(200, {"download_url": url, **fields})
    return json_response(200, {"data": {"id": recording_id, "url": url, **fields}})


def _media(sim: Simulator, request: Request, recording_id: str) -> Response:
    rejected = verify_s3(sim, VENDOR, request)
    if rejected is not None:
        return rejected
    rec = _by_recording(sim, recording_id)
    if rec is None or rec.state != "ready":
        return text_response(404, "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist."
                             "</Message></Error>", "application/xml")
    return media_response(sim, request, rec, content_type=CONTENT_TYPES[rec.kind], expired=s3_expired)
