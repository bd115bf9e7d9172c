"""Siro ``GET /v1/core/recordings/{id}`` (document 004) and the list its paging fields imply.

As documented: Bearer auth; a recording object with ``id``, ``dateCreated``, ``deleted``,
``deletedPermanently``, ``processingStatus`` (in-progress | complete | error), ``isVideo``,
``rawVideoPath``, ``processedAudioPath``, ``rawAudioPath``, ``audioDurationInMilliseconds``,
``durationInMilliseconds``, ``title`` and friends; the single read wrapped as ``{"data": {...}}``.

Where the document is silent the simulator decides (as PROVIDERS.md does):
``GET /v1/core/recordings?limit=&cursor=&dateCreatedFrom=`` → ``{"data": [...], "cursor": "…" |
null, "pageSize", "limit"}``, oldest first, ``limit`` 1-100 (default 25, else 400),
``dateCreatedFrom`` inclusive; soft-deleted recordings are listed with ``deleted: true``; a recording
still processing has no media paths; media paths are relative (``audio/{id}/processed.m4a``,
``audio/{id}/raw.m4a``, ``video/{id}/raw.mp4``) with an S3-style signature query appended
(``options.siro_signed_paths``), resolved against ``media_base_url`` = ``/siro/media/``; a video
recording's audio paths serve a separate audio-only file (the video is the original). Errors:
``{"error", "message"}``; an expired media link answers 403 ``AccessDenied``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from providers.simulator._api import (
    insert_during_paging,
    keyset_page,
    list_page_fault,
    num,
    preflight,
    s3_expired,
    s3_link,
    verify_s3,
)
from providers.simulator._http import Request, Response, bearer, iso_ms, json_response, parse_int, parse_iso
from providers.simulator._serve import as_media, media_response
from providers.simulator.catalog import FaultSpec, SimRecording
from providers.simulator.media import CONTENT_TYPES, make_media

if TYPE_CHECKING:
    from providers.simulator.core import Simulator

__all__ = ["extra", "route"]

VENDOR = "siro"
_LIST = "/v1/core/recordings"
_ONE = re.compile(r"^/v1/core/recordings/([^/]+)$")
_MEDIA = re.compile(r"^/media/(audio|video)/([^/]+)/(processed|raw)\.[a-z0-9]+$")
_FIRST = ("Dana", "Luis", "Priya", "Sam", "Keiko", "Omar")
_LAST = ("Reyes", "Okafor", "Nguyen", "Schmidt", "Tanaka", "Brooks")


def extra(sim: Simulator, recording: SimRecording) -> None:
    rng = sim.catalog.rng(VENDOR)
    recording.extra.update(first=rng.choice(_FIRST), last=rng.choice(_LAST),
                           title=f"Visit at {rng.randrange(100, 9999)} Main St")
    if recording.is_video:
        recording.audio = make_media("m4a", recording.seconds, f"{VENDOR}:{recording.id}:{sim.seed}:audio",
                                     cache_dir=sim.media_cache_dir)


def route(sim: Simulator, request: Request, sub: str) -> Response:
    if request.method not in ("GET", "HEAD"):
        return _error(405, "Method Not Allowed")
    if match := _MEDIA.match(sub):
        return as_media(_media(sim, request, *match.groups()), match.group(2))
    if sub == _LIST:
        return _list(sim, request)
    if match := _ONE.match(sub):
        return _one(sim, request, match.group(1))
    return _error(404, "Not Found")


def _error(status: int, message: str) -> Response:
    return json_response(status, {"error": {401: "Unauthorized", 404: "Not Found"}.get(status, "Bad Request"),
                                  "message": message})


def _guard(sim: Simulator, request: Request, endpoint: str) -> Response | None:
    return preflight(sim, VENDOR, bearer(request),
                     unauthorized=lambda: _error(401, "Missing or invalid bearer token"), endpoint=endpoint)


def _list(sim: Simulator, request: Request) -> Response:
    early = _guard(sim, request, "list")
    if early is not None:
        return early
    try:
        limit = parse_int(request.param("limit"), 25) or 0
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        return _error(400, "limit must be an integer between 1 and 100")
    since_text = request.param("dateCreatedFrom")
    try:
        since = parse_iso(since_text) if since_text else None
    except ValueError:
        return _error(400, "dateCreatedFrom must be an ISO 8601 date")
    items = [r for r in sim.catalog.sorted(VENDOR, by="created_at") if since is None or r.created_at >= since]
    try:
        chunk, following, page = keyset_page(sim, VENDOR, items, request.param("cursor"), limit)
    except (ValueError, KeyError, TypeError):
        return _error(400, "invalid cursor")
    broken = list_page_fault(sim, VENDOR, page)
    if broken is not None:
        return broken
    strings = sim.catalog.take_api_fault(VENDOR, "string_numbers") is not None
    response = json_response(200, {"data": [_recording(sim, r, strings) for r in chunk], "cursor": following,
                                   "pageSize": num(len(chunk), strings), "limit": num(limit, strings)})
    if page == 1:
        insert_during_paging(sim, VENDOR, items[0] if items else None)
    return response


def _one(sim: Simulator, request: Request, recording_id: str) -> Response:
    early = _guard(sim, request, "item")
    if early is not None:
        return early
    rec = sim.catalog.get(VENDOR, recording_id)
    if rec is None:
        return _error(404, f"Recording {recording_id} not found")
    strings = sim.catalog.take_api_fault(VENDOR, "string_numbers") is not None
    return json_response(200, {"data": _recording(sim, rec, strings)})


def _path(sim: Simulator, relative: str, foreign: FaultSpec | None) -> str:
    """A relative media path (signed unless switched off), or an absolute URL on a foreign host."""
    if sim.options.siro_signed_paths:
        link, _expires = s3_link(sim, VENDOR, f"/{VENDOR}/media/{relative}")
        relative = link.removeprefix(f"/{VENDOR}/media/")
    if foreign is not None:
        return f"http://{foreign.params.get('target_host', '127.0.0.2')}:{sim.port}/{VENDOR}/media/{relative}"
    return relative


def _recording(sim: Simulator, rec: SimRecording, strings: bool) -> dict[str, Any]:
    ready = rec.state in ("ready", "deleted")
    status = {"ready": "complete", "deleted": "complete", "not_ready": "in-progress"}.get(rec.state, "error")
    audio_ext = "m4a" if rec.is_video else rec.kind
    millis = round(rec.seconds * 1000)
    foreign = sim.catalog.take_fault(VENDOR, rec.id, frozenset({"foreign_url"})) if ready else None
    return {
        "id": rec.id,
        "dateCreated": iso_ms(rec.created_at),
        "deleted": rec.state == "deleted",
        "deletedPermanently": False,
        "deletedDate": iso_ms(rec.created_at + timedelta(days=1)) if rec.state == "deleted" else None,
        "processingStatus": status,
        "processingStage": "done" if ready else ("transcribing" if status == "in-progress" else "failed"),
        "processingErrors": [] if status != "error" else ["transcoding-failed"],
        "processingError": (rec.detail or "transcoding-failed") if status == "error" else None,
        "rawAudioPath": _path(sim, f"audio/{rec.id}/raw.{audio_ext}", foreign) if ready else None,
        "processedAudioPath": _path(sim, f"audio/{rec.id}/processed.{audio_ext}", foreign) if ready else None,
        "organizationId": "org_sim_1",
        "organizationName": "Simulated Roofing Co",
        "teamId": "team_sim_1",
        "userId": f"user_{rec.extra['first'].lower()}",
        "repFirstName": rec.extra["first"],
        "repLastName": rec.extra["last"],
        "title": rec.extra["title"],
        "durationInMilliseconds": num(millis, strings),
        "audioDurationInMilliseconds": num(millis, strings) if ready else None,
        "isVideo": rec.is_video,
        "videoRecordingId": rec.id if rec.is_video else None,
        "rawVideoPath": _path(sim, f"video/{rec.id}/raw.mp4", foreign) if ready and rec.is_video else None,
        "allChunksUploaded": ready,
        "numberOfChunks": max(1, millis // 30_000),
        "transcriptionLanguage": "English",
        "os": "ios",
        "conversationType": "in-person",
    }


def _media(sim: Simulator, request: Request, folder: str, recording_id: str, variant: str) -> Response:
    if sim.options.siro_signed_paths:
        rejected = verify_s3(sim, VENDOR, request)
        if rejected is not None:
            return rejected
    rec = sim.catalog.get(VENDOR, recording_id)
    video = folder == "video"
    if rec is None or rec.state != "ready" or (video and not rec.is_video) or (variant == "processed" and video):
        return _error(404, "No such object")
    data = rec.audio if rec.is_video and not video else None  # None: the recording's own media
    kind = "m4a" if rec.is_video and not video else rec.kind
    return media_response(sim, request, rec, content_type=CONTENT_TYPES[kind], expired=s3_expired, data=data)
