"""Siro as three hosts (docs.siro.ai): the external API, the API gateway, and the storage they sign for.

- **External API** (``route``, on the main server under ``/siro``; a Siro ``base_url``), organisation
  token as ``Authorization: Bearer``:
  ``GET /v1/core/recordings`` → ``{"data": [item, ...], "cursor": "…" | null}``, the slim items of
  the public "Get recordings" page (``id``, ``organizationId``, ``userId``, ``title``,
  ``durationInMilliseconds``, ``latitude``, ``longitude``, ``createdAt``, ``updatedAt``,
  ``links.web.self``, ``rootDataPurgedAt``, ``isProcessingDone``, ``isEntityExtractionDone``,
  ``isSummaryDone``); ``GET /v1/core/recordings/{id}`` → one item, unwrapped ("Get recording");
  ``POST /v1/core/oauth/apps/{clientId}/access-token`` with ``{"clientSecret", "userId", "scope"}``
  → ``{"accessTokenId", "accessToken"}``, a token that lives 16 h on the simulator's clock.
- **API gateway** (``gateway_route``, its own server: ``Simulator.media_api_url("siro")``), the OAuth
  access token in ``x-siro-auth-token`` (missing, unknown or expired → 401):
  ``POST /v1/core/recordings/{id}/signedUrl`` (empty body) → ``{"data": {"signedUrl", "expiresAt"}}``,
  a short-lived link to the redacted audio on the storage host; ``GET /v1/core/recordings/{id}`` →
  ``{"data": {...}}``, the detailed record of document 004.
- **Storage** (``storage_route``, a third server): the signed media, S3-style signature query
  (``options.siro_signed_paths``), expiring with the links' clock (403 ``AccessDenied``).

Where the pages are silent the simulator decides: list query ``pageSize`` (1-100, default 25, else
400), ``cursor`` (keyset, oldest ``createdAt`` first), ``updatedAt:gte`` / ``createdAt:gte`` (ISO);
``updatedAt`` is the creation time, plus the length and a minute once processed; a purged recording
(state ``deleted``) is listed with ``rootDataPurgedAt`` set; a recording still processing has
``isProcessingDone: false`` (or, with a ``detail``, that word: a status the client does not know); the
gateway answers 404 for a recording with no audio to sign (processing, purged, or state
``no_recording``); a video recording's redacted audio is its separate audio-only file. Errors:
``{"error", "message"}``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
from datetime import UTC, datetime, timedelta
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
from providers.simulator.catalog import SimRecording
from providers.simulator.media import CONTENT_TYPES, make_media

if TYPE_CHECKING:
    from providers.simulator.core import Simulator

__all__ = [
    "OAUTH_SECRET_ENV",
    "TOKEN_LIFETIME",
    "USER_ID",
    "client_id",
    "client_secret",
    "extra",
    "gateway_route",
    "minted",
    "route",
    "storage_route",
]

VENDOR = "siro"
#: the one Siro user the simulator's OAuth tokens may be bound to (an admin who sees every recording)
USER_ID = "user_sim_admin"
OAUTH_SECRET_ENV = "SIM_SIRO_OAUTH_SECRET"  # noqa: S105 - the name of a variable, not a secret
#: "Token expires after 16 hours" (docs.siro.ai, phones integration guide)
TOKEN_LIFETIME = 16 * 3600.0
_LIST = "/v1/core/recordings"
_ONE = re.compile(r"^/v1/core/recordings/([^/]+)$")
_SIGN = re.compile(r"^/v1/core/recordings/([^/]+)/signedUrl$")
_MINT = re.compile(r"^/v1/core/oauth/apps/([^/]+)/access-token$")
_MEDIA = re.compile(r"^/media/recordings/([^/]+)/redacted\.[a-z0-9]+$")
_FIRST = ("Dana", "Luis", "Priya", "Sam", "Keiko", "Omar")
_LAST = ("Reyes", "Okafor", "Nguyen", "Schmidt", "Tanaka", "Brooks")
_SINCE_PARAMS = ("updatedAt:gte", "createdAt:gte")


def extra(sim: Simulator, recording: SimRecording) -> None:
    rng = sim.catalog.rng(VENDOR)
    recording.extra.update(first=rng.choice(_FIRST), last=rng.choice(_LAST),
                           title=f"Visit at {rng.randrange(100, 9999)} Main St")
    if recording.is_video:
        recording.audio = make_media("m4a", recording.seconds, f"{VENDOR}:{recording.id}:{sim.seed}:audio",
                                     cache_dir=sim.media_cache_dir)


def client_id(sim: Simulator) -> str:
    return f"sim-siro-app-{_digest(sim, 'client')[:12]}"


def client_secret(sim: Simulator) -> str:
    return f"sim-siro-secret-{_digest(sim, 'secret')[:24]}"


def minted(sim: Simulator) -> int:
    """How many OAuth access tokens clients minted so far."""
    with sim.catalog.lock:
        return int(_state(sim).get("minted", 0))


def _digest(sim: Simulator, what: str) -> str:
    return hmac.new(f"recarchive-sim:{sim.seed}".encode(), f"siro-oauth-{what}".encode(), hashlib.sha256).hexdigest()


def _state(sim: Simulator) -> dict[str, Any]:
    return sim.vendor_state.setdefault(VENDOR, {})


def _error(status: int, message: str) -> Response:
    names = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}
    return json_response(status, {"error": names.get(status, "Error"), "message": message})


# -- the external API ----------------------------------------------------------------------------------

def route(sim: Simulator, request: Request, sub: str) -> Response:
    if match := _MINT.match(sub):
        if request.method != "POST":
            return _error(405, "Method Not Allowed")
        return _mint(sim, request, match.group(1))
    if request.method not in ("GET", "HEAD"):
        return _error(405, "Method Not Allowed")
    if sub == _LIST:
        return _list(sim, request)
    if match := _ONE.match(sub):
        return _one(sim, request, match.group(1))
    return _error(404, "Not Found")


def _guard(sim: Simulator, request: Request, endpoint: str) -> Response | None:
    return preflight(sim, VENDOR, bearer(request),
                     unauthorized=lambda: _error(401, "Missing or invalid bearer token"), endpoint=endpoint)


def _list(sim: Simulator, request: Request) -> Response:
    early = _guard(sim, request, "list")
    if early is not None:
        return early
    try:
        size = parse_int(request.param("pageSize"), 25) or 0
    except ValueError:
        size = 0
    if not 1 <= size <= 100:
        return _error(400, "pageSize must be an integer between 1 and 100")
    bounds: dict[str, datetime] = {}
    for name in _SINCE_PARAMS:
        text = request.param(name)
        try:
            if text:
                bounds[name] = parse_iso(text)
        except ValueError:
            return _error(400, f"{name} must be an ISO 8601 date-time")
    items = [r for r in sim.catalog.sorted(VENDOR, by="created_at")
             if _updated(r) >= bounds.get("updatedAt:gte", _updated(r))
             and r.created_at >= bounds.get("createdAt:gte", r.created_at)]
    try:
        chunk, following, page = keyset_page(sim, VENDOR, items, request.param("cursor"), size)
    except (ValueError, KeyError, TypeError):
        return _error(400, "invalid cursor")
    broken = list_page_fault(sim, VENDOR, page)
    if broken is not None:
        return broken
    strings = sim.catalog.take_api_fault(VENDOR, "string_numbers") is not None
    response = json_response(200, {"data": [_item(r, strings) for r in chunk], "cursor": following})
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
    return json_response(200, _item(rec, strings))


def _updated(rec: SimRecording) -> datetime:
    if rec.state == "not_ready":
        return rec.created_at
    return rec.created_at + timedelta(seconds=math.ceil(rec.seconds) + 60)


def _item(rec: SimRecording, strings: bool) -> dict[str, Any]:
    processed = rec.state != "not_ready"
    done: Any = processed if processed or not rec.detail else rec.detail
    return {
        "id": rec.id,
        "organizationId": "org_sim_1",
        "userId": f"user_{rec.extra['first'].lower()}",
        "title": rec.extra["title"],
        "durationInMilliseconds": num(round(rec.seconds * 1000), strings),
        "latitude": 39.7392,
        "longitude": -104.9903,
        "createdAt": iso_ms(rec.created_at),
        "updatedAt": iso_ms(_updated(rec)),
        "links": {"web": {"self": f"https://app.siro.ai/recordings/{rec.id}"}},
        "rootDataPurgedAt": iso_ms(_updated(rec)) if rec.state == "deleted" else None,
        "isProcessingDone": done,
        "isEntityExtractionDone": processed,
        "isSummaryDone": processed,
    }


def _mint(sim: Simulator, request: Request, app: str) -> Response:
    early = _guard(sim, request, "token")
    if early is not None:
        return early
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return _error(400, "the body must be JSON")
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object")
    if app != client_id(sim):
        return _error(404, f"OAuth app {app} not found")
    if not hmac.compare_digest(str(body.get("clientSecret", "")), client_secret(sim)):
        return _error(401, "invalid client secret")
    if body.get("userId") != USER_ID:
        return _error(400, "userId is not a user of this organization")
    if body.get("scope") not in ("read", "write"):
        return _error(400, "scope must be one of read, write")
    token = f"sim-oat-{secrets.token_urlsafe(24)}"
    with sim.catalog.lock:
        state = _state(sim)
        state.setdefault("tokens", {})[token] = sim.signer.now() + TOKEN_LIFETIME
        state["minted"] = int(state.get("minted", 0)) + 1
    return json_response(200, {"accessTokenId": f"oat_{secrets.token_hex(8)}", "accessToken": token})


# -- the API gateway -----------------------------------------------------------------------------------

def gateway_route(sim: Simulator, request: Request, sub: str) -> Response:
    if match := _SIGN.match(sub):
        if request.method != "POST":
            return _error(405, "Method Not Allowed")
        return _sign(sim, request, match.group(1))
    if match := _ONE.match(sub):
        if request.method not in ("GET", "HEAD"):
            return _error(405, "Method Not Allowed")
        return _detail(sim, request, match.group(1))
    return _error(404, "Not Found")


def _gateway_guard(sim: Simulator, request: Request, endpoint: str) -> Response | None:
    token = (request.headers.get("x-siro-auth-token") or "").strip()
    with sim.catalog.lock:
        expires = _state(sim).get("tokens", {}).get(token)
    valid = expires is not None and sim.signer.now() < expires
    # the rate budget and API faults are the vendor's, whichever credential reached it
    return preflight(sim, VENDOR, sim.token(VENDOR) if valid else None,
                     unauthorized=lambda: _error(401, "Missing, expired or invalid x-siro-auth-token"),
                     endpoint=endpoint)


def _sign(sim: Simulator, request: Request, recording_id: str) -> Response:
    early = _gateway_guard(sim, request, "signed_url")
    if early is not None:
        return early
    if request.body.strip() not in (b"", b"{}"):
        return _error(400, "this endpoint takes no body")
    rec = sim.catalog.get(VENDOR, recording_id)
    if rec is None or rec.state != "ready":
        return _error(404, f"No redacted audio for recording {recording_id}")
    path = f"/{VENDOR}/media/recordings/{rec.id}/redacted.{'m4a' if rec.is_video else rec.kind}"
    expires = sim.signer.now() + sim.link_ttl(VENDOR)
    if sim.options.siro_signed_paths:
        path, expiry = s3_link(sim, VENDOR, path)
        expires = float(expiry)
    origin = sim.origin("siro-storage")
    foreign = sim.catalog.take_fault(VENDOR, rec.id, frozenset({"foreign_url"}))
    if foreign is not None:
        origin = f"http://{foreign.params.get('target_host', '127.0.0.2')}:{origin.rsplit(':', 1)[1]}"
    response = json_response(200, {"data": {"signedUrl": f"{origin}{path}",
                                            "expiresAt": iso_ms(datetime.fromtimestamp(expires, UTC))}})
    response.recording_id = rec.id
    return response


def _detail(sim: Simulator, request: Request, recording_id: str) -> Response:
    """The detailed record of document 004, trimmed to the fields an archiver could use."""
    early = _gateway_guard(sim, request, "item")
    if early is not None:
        return early
    rec = sim.catalog.get(VENDOR, recording_id)
    if rec is None:
        return _error(404, f"Recording {recording_id} not found")
    status = {"not_ready": "in-progress", "no_recording": "error"}.get(rec.state, "complete")
    millis = round(rec.seconds * 1000)
    return json_response(200, {"data": {
        "id": rec.id, "dateCreated": iso_ms(rec.created_at), "deleted": rec.state == "deleted",
        "deletedPermanently": False, "processingStatus": status,
        "processingStage": "done" if status == "complete" else "transcribing",
        "organizationId": "org_sim_1", "teamId": "team_sim_1", "userId": f"user_{rec.extra['first'].lower()}",
        "repFirstName": rec.extra["first"], "repLastName": rec.extra["last"], "title": rec.extra["title"],
        "durationInMilliseconds": millis, "audioDurationInMilliseconds": millis, "isVideo": rec.is_video,
        "transcriptionLanguage": "English", "os": "ios", "conversationType": "in-person",
    }})


# -- storage -------------------------------------------------------------------------------------------

def storage_route(sim: Simulator, request: Request, sub: str) -> Response:
    match = _MEDIA.match(sub)
    if match is None:
        return _error(404, "Not Found")
    if request.method not in ("GET", "HEAD"):
        return as_media(_error(405, "Method Not Allowed"), match.group(1))
    return as_media(_media(sim, request, match.group(1)), match.group(1))


def _media(sim: Simulator, request: Request, recording_id: str) -> Response:
    if sim.options.siro_signed_paths:
        rejected = verify_s3(sim, VENDOR, request)
        if rejected is not None:
            return rejected
    rec = sim.catalog.get(VENDOR, recording_id)
    if rec is None or rec.state != "ready":
        return _error(404, "No such object")
    kind = "m4a" if rec.is_video else rec.kind
    return media_response(sim, request, rec, content_type=CONTENT_TYPES[kind], expired=s3_expired,
                          data=rec.audio if rec.is_video else None)
