"""What every simulated vendor API does before and around its own logic: authentication, the
per-token rate budget, switchable API faults, signed media links and list-page faults."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from providers.simulator._http import (
    Request,
    Response,
    b64_json,
    from_b64_json,
    iso_ms,
    json_response,
    parse_iso,
    text_response,
)
from providers.simulator._serve import retry_after_header
from providers.simulator.catalog import SimRecording
from providers.simulator.signing import LinkState

if TYPE_CHECKING:
    from providers.simulator.core import Simulator

__all__ = [
    "OVERSIZED_BYTES",
    "insert_during_paging",
    "keyset_page",
    "list_page_fault",
    "media_origin",
    "num",
    "preflight",
    "s3_expired",
    "s3_invalid",
    "s3_link",
    "verify_s3",
]

#: the body size of an ``oversized_json`` page (providers refuse JSON pages over 32 MiB)
OVERSIZED_BYTES = 41 * 1024 * 1024


def preflight(
    sim: Simulator,
    vendor: str,
    token: str | None,
    *,
    unauthorized: Callable[[], Response],
    endpoint: str,
) -> Response | None:
    """A response that ends the request early (401, 429, 500), or None to carry on."""
    catalog = sim.catalog
    if catalog.take_api_fault(vendor, "auth_fail", endpoint=endpoint) or token != sim.token(vendor):
        return unauthorized()
    with catalog.lock:
        budget = catalog.budgets.get(vendor)
        wait = budget.take(token) if budget is not None else None
    if budget is not None and wait is not None:
        return _too_many(wait, budget.http_date)
    spec = catalog.take_api_fault(vendor, "rate_limit", endpoint=endpoint)
    if spec is not None:
        return _too_many(float(spec.params.get("retry_after", 1)), bool(spec.params.get("http_date")))
    if catalog.take_api_fault(vendor, "error500", endpoint=endpoint) is not None:
        return json_response(500, {"error": "Internal Server Error"})
    return None


def _too_many(seconds: float, http_date: bool) -> Response:
    response = json_response(429, {"error": "Too Many Requests"})
    response.headers["Retry-After"] = retry_after_header(seconds, http_date)
    return response


def list_page_fault(sim: Simulator, vendor: str, page: int) -> Response | None:
    """``malformed_json`` / ``oversized_json`` / ``deep_json`` replacing list page ``page`` (1-based)."""
    if sim.catalog.take_api_fault(vendor, "malformed_json", page=page, endpoint="list") is not None:
        return Response(200, b'{"data": [{"id": "7f3a", "created_at": "2026-', "application/json")
    if sim.catalog.take_api_fault(vendor, "oversized_json", page=page, endpoint="list") is not None:
        head = b'{"padding": "'
        tail = b'", "data": []}'
        return Response(200, _padding(OVERSIZED_BYTES - len(head) - len(tail), head, tail),
                        "application/json", length=OVERSIZED_BYTES)
    spec = sim.catalog.take_api_fault(vendor, "deep_json", page=page, endpoint="list")
    if spec is not None:
        depth = int(spec.params.get("depth", 10_000))
        return Response(200, b'{"data": ' + b"[" * depth + b"]" * depth + b"}", "application/json")
    return None


def _padding(count: int, head: bytes, tail: bytes) -> Iterator[bytes]:
    yield head
    block = b"x" * (1024 * 1024)
    while count > 0:
        yield block[: min(count, len(block))]
        count -= len(block)
    yield tail


def num(value: float, as_string: bool) -> Any:
    """A number, or its text when the vendor (or the ``string_numbers`` fault) sends it quoted."""
    return json.dumps(value) if as_string else value


def media_origin(sim: Simulator, recording: SimRecording) -> str:
    """Where this recording's media link points: the simulator, or a foreign host (``foreign_url``)."""
    spec = sim.catalog.take_fault(recording.vendor, recording.id, frozenset({"foreign_url"}))
    if spec is None:
        return sim.url
    return f"http://{spec.params.get('target_host', '127.0.0.2')}:{sim.port}"


def s3_link(sim: Simulator, vendor: str, path: str) -> tuple[str, int]:
    """``(path?AWSAccessKeyId=…&Expires=…&Signature=…, expires)``: an S3-style presigned query."""
    expires, signature = sim.signer.sign(vendor, path, sim.link_ttl(vendor))
    return f"{path}?AWSAccessKeyId=SIM{vendor.upper()}&Expires={expires}&Signature={signature}", expires


def verify_s3(sim: Simulator, vendor: str, request: Request) -> Response | None:
    state = sim.signer.verify(vendor, request.path, request.param("Expires"), request.param("Signature"))
    if state is LinkState.EXPIRED:
        return s3_expired(request.param("Expires") or "0")
    if state is LinkState.INVALID:
        return s3_invalid()
    return None


def s3_expired(expires: str = "0") -> Response:
    return text_response(
        403,
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
        f"<Message>Request has expired</Message><Expires>{expires}</Expires></Error>",
        "application/xml",
    )


def s3_invalid() -> Response:
    return text_response(
        403,
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code>'
        "<Message>The request signature we calculated does not match the signature you provided."
        "</Message></Error>",
        "application/xml",
    )


def insert_during_paging(sim: Simulator, vendor: str, anchor: SimRecording | None) -> None:
    """After page 1 was served: add recordings that sort right after ``anchor`` (the first listed),
    i.e. before the client's next offset, shifting every later item one place down."""
    spec = sim.catalog.take_api_fault(vendor, "insert_during_paging", endpoint="list")
    if spec is None or anchor is None:
        return
    for _ in range(int(spec.params.get("count", 1))):
        (added,) = sim.add(vendor, kind=spec.params.get("kind"), seconds=float(spec.params.get("seconds", 3.0)),
                           started_at=anchor.started_at, lead_id=anchor.lead_id)
        with sim.catalog.lock:
            added.created_at = anchor.created_at


def keyset_page(
    sim: Simulator, vendor: str, items: list[SimRecording], cursor: str | None, limit: int
) -> tuple[list[SimRecording], str | None, int]:
    """A page of ``items`` (sorted by ``(created_at, seq)``) after an opaque keyset ``cursor``:
    ``(page items, next cursor or None, page number)``. Raises ``ValueError`` on a bad cursor.

    Keyset cursors (the last key served, like Firestore's ``startAfter``) do not shift when items
    are inserted before them: such items are simply not seen by this pass."""
    page, after = 1, None
    if cursor:
        decoded = from_b64_json(cursor)
        if not isinstance(decoded, dict):
            raise ValueError("bad cursor")
        after = (parse_iso(str(decoded["t"])), int(decoded["s"]))
        page = int(decoded["p"])
    start = 0
    if after is not None:
        start = next((i for i, r in enumerate(items) if (r.created_at, r.seq) > after), len(items))
    if page > 1 and limit > 1 and start > 0 and sim.catalog.take_api_fault(vendor, "duplicates_across_pages"):
        start -= 1
    chunk = items[start : start + limit]
    following = None
    if chunk and start + limit < len(items):
        last = chunk[-1]
        following = b64_json({"t": iso_ms(last.created_at), "s": last.seq, "p": page + 1})
    return chunk, following, page
