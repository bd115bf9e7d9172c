"""The simulator's tiny HTTP vocabulary: a parsed request, a response to write, and the helpers the
vendor modules share (JSON bodies, timestamps, paging). Stdlib only: this is runtime code."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from typing import Any, TypeVar

__all__ = [
    "Request",
    "Response",
    "b64_json",
    "bearer",
    "from_b64_json",
    "iso_ms",
    "iso_s",
    "json_response",
    "offset_page",
    "parse_int",
    "parse_iso",
    "text_response",
]

T = TypeVar("T")


@dataclass
class Request:
    method: str
    path: str  # without the query
    query: dict[str, list[str]]
    headers: Message
    body: bytes = b""
    host: str = ""
    client: str = ""  # the peer's address

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Response:
    """What the server writes. ``length`` overrides Content-Length (faults lie with it); a body
    iterator without ``length`` is sent close-delimited. ``cut_at`` closes the connection after that
    many body bytes; ``chunk_delay`` sleeps between chunks."""

    status: int
    body: bytes | Iterable[bytes] = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None = None
    close: bool = False
    cut_at: int | None = None
    chunk_delay: float = 0.0
    chunk_size: int = 64 * 1024
    kind: str = "api"
    recording_id: str | None = None


def json_response(status: int, payload: Any, *, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return Response(status, body, "application/json", dict(headers or {}))


def text_response(status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> Response:
    return Response(status, text.encode("utf-8"), content_type)


def bearer(request: Request) -> str | None:
    value = request.headers.get("Authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def iso_ms(moment: datetime) -> str:
    """``2026-02-14T18:20:12.000Z``: millisecond ISO 8601 in UTC, the shape most vendors use."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_s(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> datetime:
    """An ISO 8601 timestamp; naive means UTC. A ``+`` turned into a space by form decoding is undone."""
    text = value.strip()
    if "T" in text and " " in text:
        text = text.replace(" ", "+")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_int(value: str | None, default: int | None) -> int | None:
    """An integer query parameter; ``ValueError`` if present but not an integer."""
    if value is None or value == "":
        return default
    return int(value.strip())


def offset_page(items: Sequence[T], offset: int, limit: int, *, duplicate: bool = False) -> list[T]:
    """``items[offset:offset+limit]``; with ``duplicate`` a page after the first starts one item early
    (the previous page's last item is repeated) and the last page still reaches the end, so every
    item is still listed by a client that pages by ``offset`` until ``offset + len >= total``."""
    if not duplicate or offset <= 0 or limit < 2 or offset >= len(items):
        return list(items[offset : offset + limit])
    if offset + limit >= len(items):
        return list(items[offset - 1 :])
    return list(items[offset - 1 : offset - 1 + limit])


def b64_json(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode().rstrip("=")


def from_b64_json(token: str) -> Any:
    padded = token + "=" * (-len(token) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode()))
