"""Serving one recording's bytes the way a CDN does, or the way it fails.

Normal responses carry ``Content-Length``, an ``ETag`` (from the SHA-256), ``Accept-Ranges`` and
honour one ``Range: bytes=N-`` / ``N-M`` / ``-K`` range (206 + ``Content-Range``; 416 when past
the end) so an interrupted download can resume. A media fault set with ``Simulator.set_fault``
replaces or bends that response; see ``Simulator.set_fault`` for the list.
"""

from __future__ import annotations

import email.utils
import hashlib
import itertools
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from providers.simulator._http import Request, Response, json_response, text_response
from providers.simulator.catalog import FaultSpec, SimRecording

if TYPE_CHECKING:
    from providers.simulator.core import Simulator

__all__ = ["HOP_PARAM", "as_media", "media_response", "plain_media_response", "retry_after_header"]

#: a redirect fault adds this to the Location so the second hop is served normally
HOP_PARAM = "sim_hop"
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")
_SERVE_FAULTS = frozenset({
    "rate_limit", "cut", "html200", "json200", "empty200", "error500", "slow", "expired",
    "wrong_length", "redirect", "redirect_foreign", "giant_length", "endless", "huge_headers",
    "reprocessed",
})
_HTML_ERROR = (
    "<!DOCTYPE html><html><head><title>503 Service Temporarily Unavailable</title></head>"
    "<body><h1>Service Temporarily Unavailable</h1><p>The recording could not be retrieved. "
    "Please try again later.</p></body></html>"
)


def as_media(response: Response, recording_id: str | None) -> Response:
    """Log an answer on a media path as media, refusals included (expired or forged link, unknown
    file): the request log then counts every media request a client made for a recording."""
    response.kind = "media"
    if response.recording_id is None:
        response.recording_id = recording_id
    return response


def retry_after_header(seconds: float, http_date: bool) -> str:
    if http_date:
        return email.utils.formatdate(time.time() + seconds, usegmt=True)
    return str(max(0, round(seconds)))


def media_response(
    sim: Simulator,
    request: Request,
    recording: SimRecording,
    *,
    content_type: str,
    expired: Callable[[], Response],
    data: bytes | None = None,
) -> Response:
    """The response to a media request for ``recording`` (whose link was already verified).

    ``data`` replaces the recording's own media (Siro's separate audio of a video); without it the
    recording's ``data`` is served, or its ``media_file`` streamed from disk."""
    body: bytes | Path
    if data is not None:
        body = data
    elif recording.media_file is not None:
        body = recording.media_file
    else:
        body = recording.data
    spec = None
    if request.param(HOP_PARAM) is None:
        spec = sim.catalog.take_fault(recording.vendor, recording.id, _SERVE_FAULTS)
    if spec is not None and spec.name == "reprocessed":
        body = _next_variant(sim, recording, spec)
    response = _fault_only(sim, request, spec, expired, content_type) if spec else None
    if response is None:
        response = _ranged(request, recording, body, content_type)
        if spec is not None and response.status in (200, 206):
            _bend(response, spec, body)
    response.kind = "media"
    response.recording_id = recording.id
    return response


def plain_media_response(request: Request, recording: SimRecording, *, content_type: str) -> Response:
    """The recording's own media with no fault applied (and none used up): the plain file listing."""
    body = recording.media_file if recording.media_file is not None else recording.data
    response = _ranged(request, recording, body, content_type)
    response.headers.pop("X-Sim-Range-Start", None)
    response.kind = "listing"
    response.recording_id = recording.id
    return response


def _fault_only(
    sim: Simulator, request: Request, spec: FaultSpec, expired: Callable[[], Response], content_type: str
) -> Response | None:
    params = spec.params
    if spec.name == "rate_limit":
        header = retry_after_header(float(params.get("retry_after", 1)), bool(params.get("http_date")))
        response = text_response(429, "Too Many Requests")
        response.headers["Retry-After"] = header
        return response
    if spec.name == "html200":
        return text_response(200, _HTML_ERROR, "text/html; charset=utf-8")
    if spec.name == "json200":
        return json_response(200, {"error": {"code": "RecordingUnavailable",
                                             "message": "The recording is temporarily unavailable."}})
    if spec.name == "empty200":
        return Response(200, b"", content_type)
    if spec.name == "error500":
        return text_response(500, "Internal Server Error")
    if spec.name == "expired":
        return expired()
    if spec.name == "redirect":
        query = urlencode([*((k, v) for k, values in request.query.items() for v in values), (HOP_PARAM, "1")])
        origin = f"http://{request.host}" if request.host else sim.url  # the server that was asked
        return _redirect(f"{origin}{request.path}?{query}")
    if spec.name == "redirect_foreign":
        return _redirect(str(params.get("target", "http://169.254.169.254/latest/meta-data/")))
    return None


def _next_variant(sim: Simulator, recording: SimRecording, spec: FaultSpec) -> bytes:
    """``reprocessed``: the vendor re-rendered the recording between two requests, so each media
    request gets the next of ``variants`` (cycling); the recording's own ``data`` becomes the variant
    last served, as a vendor's "current" bytes would."""
    variants: list[bytes] = list(spec.params["variants"])
    with sim.catalog.lock:
        served = int(spec.params.get("served", 0))
        spec.params["served"] = served + 1
        recording.data = variants[served % len(variants)]
    return recording.data


def _redirect(location: str) -> Response:
    response = text_response(302, "Found")
    response.headers["Location"] = location
    return response


def _ranged(request: Request, recording: SimRecording, body: bytes | Path, content_type: str) -> Response:
    size = body.stat().st_size if isinstance(body, Path) else len(body)
    own = body is recording.data or body == recording.media_file
    digest = recording.sha256 if own or isinstance(body, Path) else hashlib.sha256(body).hexdigest()
    etag = f'"{digest[:32]}"'
    headers = {"ETag": etag, "Accept-Ranges": "bytes",
               "Last-Modified": email.utils.format_datetime(recording.created_at, usegmt=True)}
    wanted = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if wanted and (if_range is None or if_range.strip() == etag):
        match = _RANGE.match(wanted)
        if match and (match.group(1) or match.group(2)):
            first_text, last_text = match.groups()
            if first_text:
                first = int(first_text)
                last = min(int(last_text), size - 1) if last_text else size - 1
            else:
                first, last = max(0, size - int(last_text)), size - 1
            if first >= size or last < first:
                response = Response(416, b"", content_type, headers)
                response.headers["Content-Range"] = f"bytes */{size}"
                return response
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
            response = _part(206, body, first, last, content_type, headers)
            response.headers["X-Sim-Range-Start"] = str(first)
            return response
    return _part(200, body, 0, size - 1, content_type, headers)


def _part(status: int, body: bytes | Path, first: int, last: int, content_type: str,
          headers: dict[str, str]) -> Response:
    """Bytes ``first..last`` of ``body``: a slice, or a file streamed with its length announced."""
    if isinstance(body, bytes):
        return Response(status, body[first : last + 1], content_type, headers)
    count = max(0, last - first + 1)
    return Response(status, _file_chunks(body, first, count), content_type, headers, length=count)


def _file_chunks(path: Path, first: int, count: int) -> Iterator[bytes]:
    """``count`` bytes of ``path`` from ``first``, a MiB at a time; the file is opened only when the
    body is written (a HEAD never opens it) and closed however the writing ends."""
    with open(path, "rb") as handle:
        handle.seek(first)
        while count > 0:
            block = handle.read(min(count, 1 << 20))
            if not block:
                return
            count -= len(block)
            yield block


def _bend(response: Response, spec: FaultSpec, body: bytes | Path) -> None:
    """Faults that keep the media but break its delivery."""
    params = spec.params
    start = int(response.headers.pop("X-Sim-Range-Start", "0"))
    sent = len(response.body) if isinstance(response.body, bytes) else response.length or 0
    if spec.name == "cut":
        total = body.stat().st_size if isinstance(body, Path) else len(body)
        at = int(params.get("at", total // 2))
        if start < at < start + sent:
            response.length = sent
            response.cut_at = at - start
            response.close = True
    elif spec.name == "slow" or (spec.name == "reprocessed" and "delay" in params):
        response.chunk_delay = float(params.get("delay", 0.05))
        response.chunk_size = int(params.get("chunk", 8192))
    elif spec.name == "wrong_length":
        response.length = sent + int(params.get("extra", 1000))
        response.close = True
    elif spec.name == "giant_length":
        response.length = 10**13
        response.close = True
    elif spec.name == "endless":
        response.body = _endless(body)
        response.length = None
        response.status = 200
        response.headers.pop("Content-Range", None)
        response.close = True
    elif spec.name == "huge_headers":
        response.headers["X-Sim-Padding"] = "x" * int(params.get("size", 100_000))


def _endless(body: bytes | Path) -> Iterator[bytes]:
    if isinstance(body, Path):
        yield from _file_chunks(body, 0, body.stat().st_size)
    else:
        yield body
    filler = bytes(64 * 1024)
    yield from itertools.repeat(filler)
