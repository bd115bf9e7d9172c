"""The same media as a plain HTTP directory listing at ``/files/``: what a generic copy tool sees.

The throughput benchmark copies these files with ``rclone copy`` (its ``http`` backend reads links
from an HTML index, then HEADs and GETs each file) and archives the same recordings through the
vendor APIs, so both read the very same bytes from the very same server code. Every ready recording
of every vendor is listed as ``{vendor}-{id}.{ext}``; files answer ``Content-Length``,
``Last-Modified``, ``ETag`` and ``Range`` like the vendors' media, but no fault ever applies here.
No authentication: the simulator holds nothing secret and serves loopback only by default.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from providers.simulator._http import Request, Response, text_response
from providers.simulator._serve import plain_media_response
from providers.simulator.catalog import VENDORS, SimRecording
from providers.simulator.media import CONTENT_TYPES

if TYPE_CHECKING:
    from providers.simulator.core import Simulator

__all__ = ["file_name", "route"]


def file_name(recording: SimRecording) -> str:
    """The recording's name in the listing."""
    return f"{recording.vendor}-{recording.id}.{recording.ext}"


def _listed(sim: Simulator) -> dict[str, SimRecording]:
    return {file_name(rec): rec for vendor in VENDORS for rec in sim.catalog.sorted(vendor)
            if rec.state == "ready"}


def route(sim: Simulator, request: Request, sub: str) -> Response:
    if request.method not in ("GET", "HEAD"):
        return text_response(405, "Method Not Allowed")
    files = _listed(sim)
    if sub in ("", "/"):
        links = "".join(f'<li><a href="{html.escape(name)}">{html.escape(name)}</a></li>\n' for name in files)
        page = f"<!DOCTYPE html><html><head><title>Index of /files/</title></head><body>\n<ul>\n{links}</ul>\n" \
               "</body></html>\n"
        response = text_response(200, page, "text/html; charset=utf-8")
        response.kind = "listing"
        return response
    recording = files.get(sub.lstrip("/"))
    if recording is None or "/" in sub.lstrip("/"):
        response = text_response(404, "Not Found")
        response.kind = "listing"
        return response
    return plain_media_response(request, recording, content_type=CONTENT_TYPES[recording.kind])
