"""The simulator's HTTP server: one threaded stdlib server for every vendor, its media and control.

Routing is by the first path segment: ``/{vendor}/...`` goes to that vendor's module,
``/_sim/...`` to the control API. Connections are HTTP/1.1 keep-alive unless a response has to
close (close-delimited bodies, faults that lie about their length). ``stop`` closes every open
connection so a handler stuck writing an endless body to a client that stopped reading ends too.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from providers.simulator._http import Request, Response, json_response
from providers.simulator.catalog import VENDORS, SimRequest
from worker.redact import mask_secrets

if TYPE_CHECKING:
    from providers.simulator.core import Simulator

__all__ = ["Handler", "SimServer"]

log = logging.getLogger(__name__)
_MAX_BODY = 1024 * 1024

Route = Callable[["Simulator", Request, str], Response]


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], sim: Simulator, routes: dict[str, Route]) -> None:
        self.sim = sim
        self.routes = routes
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client hanging up mid-body is normal here (faults, resumed downloads): stay quiet
        log.debug("simulator connection error from %s", client_address, exc_info=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "recarchive-sim/1"
    timeout = 60
    server: SimServer

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle + delayed ACK add 40 ms
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # never the raw request line: its query holds Convoso's auth_token and link signatures
        log.debug("sim: %s %s %s", self.command, urlsplit(self.path).path, code)

    def log_message(self, format: str, *args: Any) -> None:
        text = format % args
        raw = getattr(self, "path", "")
        if raw:
            text = text.replace(raw, urlsplit(raw).path)
        log.debug("sim: %s", mask_secrets(text))

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            self._write(json_response(413, {"error": "request body too large"}), "", "control")
            return
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                          self.headers, body, self.headers.get("Host", ""), str(self.client_address[0]))
        segment, _, rest = parts.path.lstrip("/").partition("/")
        route = self.server.routes.get(segment)
        vendor = segment if segment in VENDORS else ("_sim" if segment == "_sim" else "")
        if route is None:
            response = json_response(404, {"error": "not found"})
        else:
            try:
                response = route(self.server.sim, request, "/" + rest)
            except Exception:
                log.exception("simulator route %s failed", parts.path)
                response = json_response(500, {"error": "simulator failure"})
        self._write(response, vendor, "control" if vendor == "_sim" else response.kind)

    def _write(self, response: Response, vendor: str, kind: str) -> None:
        if kind != "control":  # the log is about what a client of the vendors did
            self.server.sim.catalog.log(SimRequest(time.monotonic(), vendor, self.command,
                                                   urlsplit(self.path).path, response.status, kind,
                                                   response.recording_id))
        body = response.body
        length = response.length
        if length is None and isinstance(body, bytes):
            length = len(body)
        self.send_response(response.status)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if length is not None:
            self.send_header("Content-Length", str(length))
        if response.close or length is None:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command == "HEAD" or response.status in (204, 304):
            return
        self._write_body(response)

    def _write_body(self, response: Response) -> None:
        chunks = [response.body] if isinstance(response.body, bytes) else response.body
        budget = response.cut_at
        size = response.chunk_size
        for chunk in chunks:
            for offset in range(0, len(chunk), size):
                piece = chunk[offset : offset + size]
                if budget is not None:
                    piece = piece[:budget]
                    budget -= len(piece)
                if self.server.stopping.is_set():
                    self.close_connection = True
                    return
                self.wfile.write(piece)
                if budget == 0:
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if response.chunk_delay:
                    self.wfile.flush()
                    time.sleep(response.chunk_delay)
        self.wfile.flush()
