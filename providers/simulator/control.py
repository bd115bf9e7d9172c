"""The simulator's control API under ``/_sim/``, for out-of-process tests and ``recarchive simulate``.

Everything ``Simulator`` offers from Python, over HTTP with JSON bodies; only answered to loopback
clients (no auth: the simulator holds nothing secret, but it should not be steerable from afar).

| method and path            | body / query                                                   |
|----------------------------|----------------------------------------------------------------|
| GET  /_sim/recordings      | ``?vendor=`` (optional) → list of recordings                    |
| POST /_sim/add             | ``{vendor, count, kind, seconds, started_at, state, lead_id}``  |
| POST /_sim/state           | ``{vendor, id, state, detail}``                                 |
| POST /_sim/fault           | ``{vendor, id, fault, times, ...params}`` (``fault: "none"`` clears) |
| POST /_sim/api_fault       | ``{vendor, fault, times, ...params}`` (``fault: "none"`` clears all) |
| POST /_sim/clear_faults    | ``{}``                                                          |
| POST /_sim/rate_limit      | ``{vendor, requests, per, retry_after, http_date}``              |
| POST /_sim/options         | ``{option: value, ...}``                                        |
| POST /_sim/expire_links    | ``{vendor}`` (optional)                                         |
| POST /_sim/delivery        | ``{vendor, id, mode}``                                          |
| POST /_sim/replace_media   | ``{vendor, id, kind, seconds}``                                 |
| GET  /_sim/accounts        | → ``{"accounts": [...], "environ": {...}}``                      |
| GET  /_sim/requests        | → the request log; ``POST /_sim/clear_requests`` empties it      |
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from providers.simulator._http import Request, Response, json_response, parse_iso
from providers.simulator.catalog import VENDORS

if TYPE_CHECKING:
    from providers.simulator.core import Simulator

__all__ = ["route"]

_BASE_KEYS = frozenset({"vendor", "id", "fault", "times", "params"})


def route(sim: Simulator, request: Request, sub: str) -> Response:
    try:
        if not ipaddress.ip_address(request.client).is_loopback:
            return json_response(403, {"error": "the control API answers loopback clients only"})
    except ValueError:
        return json_response(403, {"error": "the control API answers loopback clients only"})
    handler = _GET.get(sub) if request.method == "GET" else _POST.get(sub) if request.method == "POST" else None
    if handler is None:
        return json_response(404, {"error": f"no control endpoint {request.method} /_sim{sub}"})
    try:
        body: Any = json.loads(request.body or b"{}") if request.method == "POST" else {}
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        return json_response(200, handler(sim, request, body))
    except (ValueError, KeyError, TypeError) as exc:
        return json_response(400, {"error": str(exc)})


def _recordings(sim: Simulator, request: Request, body: dict[str, Any]) -> Any:
    vendor = request.param("vendor")
    vendors = [vendor] if vendor else list(VENDORS)
    return [rec.to_dict() for name in vendors for rec in sim.recordings(name)]


def _add(sim: Simulator, request: Request, body: dict[str, Any]) -> Any:
    started = body.get("started_at")
    added = sim.add(
        body["vendor"], int(body.get("count", 1)), kind=body.get("kind"), seconds=float(body.get("seconds", 5.0)),
        started_at=parse_iso(started) if started else None, state=body.get("state", "ready"),
        lead_id=body.get("lead_id"),
    )
    return [rec.to_dict() for rec in added]


def _state(sim: Simulator, request: Request, body: dict[str, Any]) -> Any:
    sim.set_state(body["vendor"], str(body["id"]), body["state"], detail=body.get("detail"))
    return sim.get(body["vendor"], str(body["id"])).to_dict()


def _params(body: dict[str, Any]) -> dict[str, Any]:
    params = dict(body.get("params") or {})
    params.update({key: value for key, value in body.items() if key not in _BASE_KEYS})
    return params


def _fault(sim: Simulator, request: Request, body: dict[str, Any]) -> Any:
    if body["fault"] in (None, "none"):
        sim.clear_fault(body["vendor"], str(body["id"]))
    else:
        sim.set_fault(body["vendor"], str(body["id"]), body["fault"], times=body.get("times"), **_params(body))
    return {"ok": True}


def _api_fault(sim: Simulator, request: Request, body: dict[str, Any]) -> Any:
    if body.get("fault") in (None, "none"):
        sim.clear_api_fault(body["vendor"])
    else:
        sim.set_api_fault(body["vendor"], body["fault"], times=body.get("times"), **_params(body))
    return {"ok": True}


def _clear_faults(sim: Simulator, request: Request, body: dict[str, Any]) -> Any:
    sim.clear_faults()
    return {"ok": True}


def _rate_limit(sim: Simulator, request: Request, body: dict[str, Any]) -> Any:
    requests = body.get("requests")
    sim.set_rate_limit(body["vendor"], None if requests is None else int(requests), float(body.get("per", 1.0)),
                       retry_after=body.get("retry_after"), http_date=bool(body.get("http_date", False)))
    return {"ok": True}


def _options(sim: Simulator, request: Request, body: dict[str, Any]) -> Any:
    for name, value in body.items():
        sim.set_option(name, value)
    return asdict(sim.options)


def _expire_links(sim: Simulator, request: Request, body: dict[str, Any]) -> Any:
    sim.expire_links(body.get("vendor"))
    return {"ok": True}


def _delivery(sim: Simulator, request: Request, body: dict[str, Any]) -> Any:
    sim.set_delivery(body["vendor"], str(body["id"]), body["mode"])
    return {"ok": True}


def _replace_media(sim: Simulator, request: Request, body: dict[str, Any]) -> Any:
    seconds = body.get("seconds")
    rec = sim.replace_media(body["vendor"], str(body["id"]), kind=body.get("kind"),
                            seconds=None if seconds is None else float(seconds))
    return rec.to_dict()


def _accounts(sim: Simulator, request: Request, body: dict[str, Any]) -> Any:
    from providers.simulator.demo import demo_accounts  # demo imports core, which imports this module

    return {"accounts": demo_accounts(sim, prefix="sim"), "environ": sim.environ()}


def _requests(sim: Simulator, request: Request, body: dict[str, Any]) -> Any:
    return [entry.to_dict() for entry in sim.requests if entry.kind != "control"]


def _clear_requests(sim: Simulator, request: Request, body: dict[str, Any]) -> Any:
    sim.clear_requests()
    return {"ok": True}


_Handler = Callable[["Simulator", Request, dict[str, Any]], Any]
_GET: dict[str, _Handler] = {"/recordings": _recordings, "/requests": _requests, "/accounts": _accounts}
_POST: dict[str, _Handler] = {
    "/add": _add, "/state": _state, "/fault": _fault, "/api_fault": _api_fault, "/clear_faults": _clear_faults,
    "/rate_limit": _rate_limit, "/options": _options, "/expire_links": _expire_links, "/delivery": _delivery,
    "/replace_media": _replace_media, "/clear_requests": _clear_requests,
}
