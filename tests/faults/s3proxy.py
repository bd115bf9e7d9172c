"""A fault-injecting HTTP reverse proxy for S3: put it between the archiver and moto's server.

Why a proxy and not a patched boto3: the archiver's real client (botocore's retries, timeouts, its
connection pool, the conditional ``If-None-Match`` writes) must meet the failures a real S3 endpoint
produces, on the wire. The proxy listens on 127.0.0.1 (port 0) and forwards each request to the
upstream server **byte for byte**: the request line, every header line exactly as received (so the
``Host`` header, and with it the SigV4 signature, stays what the client signed) and the body. The one
exception is ``Expect: 100-continue``, a hop-by-hop negotiation SigV4 never signs: the proxy answers
``100 Continue`` itself and drops the header upstream, so the upstream server never makes the client
wait for it. Responses are re-framed with a ``Content-Length`` (the status, headers and body are the
upstream's).

Faults are rules (``Rule``) matched in order against method, path and query: after ``skip``
untouched ones, the first ``first`` matching requests, or a seeded ``fraction`` of them, or all, get

- ``error500`` / ``error503`` / ``slowdown``: S3's XML error (``InternalError`` 500,
  ``ServiceUnavailable`` 503, ``SlowDown`` 503);
- ``hang``: no answer for ``hang`` seconds (past the client's read timeout), then the connection closes;
- ``close``: the connection closes mid-request (after half the body) with no answer.

With ``after=True`` the request is forwarded first (the store applies it) and the fault replaces the
answer: the "response lost" case, where a retry meets the effect of its own first attempt; ``close``
then sends half the upstream answer before closing.

``ProxyEntry`` log lines keep the query's parameter *names* only, never a value (a presigned query
would carry a signature).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import random
import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BufferedIOBase
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit

__all__ = ["ACTIONS", "ProxyEntry", "Rule", "S3FaultProxy"]

ACTIONS = frozenset({"error500", "error503", "slowdown", "hang", "close"})
_ERRORS = {
    "error500": (500, "Internal Server Error", "InternalError", "We encountered an internal error. Please try again."),
    "error503": (503, "Service Unavailable", "ServiceUnavailable", "Service is unable to handle request."),
    "slowdown": (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    # what a store that checks upload digests answers (``verify_digests``, ``refuse_checksums``)
    "bad_digest": (400, "Bad Request", "BadDigest", "The digest you specified did not match what we received."),
    "no_checksums": (400, "Bad Request", "InvalidArgument", "x-amz-checksum headers are not supported."),
}
#: response headers that describe the upstream hop, replaced by the proxy's own framing
_HOP_RESPONSE = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})
_MAX_LINE = 65536


@dataclass
class Rule:
    """One fault: which requests it matches and what they get instead of the upstream's answer."""

    action: str
    method: str | None = None
    path: str | None = None  # a substring of the path (no query)
    query: str | None = None  # a substring of the raw query, e.g. "uploadId" or "partNumber"
    skip: int = 0  # let the first N matching requests through untouched (an outage mid-run) ...
    first: int | None = None  # ... then fault the next N matching requests ...
    fraction: float | None = None  # ... or this share of them (seeded); neither: every one
    per_path: bool = False  # count ``skip`` and ``first`` per path (e.g. the first PUT of every key)
    after: bool = False  # forward first (the store applies the request), then lose the answer
    hang: float = 30.0
    matched: int = 0
    fired: int = 0
    _paths: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown proxy action {self.action!r}; known: {', '.join(sorted(ACTIONS))}")

    def matches(self, method: str, path: str, query: str) -> bool:
        return ((self.method is None or self.method == method)
                and (self.path is None or self.path in path)
                and (self.query is None or self.query in query))


@dataclass(frozen=True)
class ProxyEntry:
    method: str
    path: str
    query_names: tuple[str, ...]
    status: int | None  # the status the client saw; None when it saw no answer
    action: str | None  # the fault applied, if any


@dataclass
class _Request:
    line: bytes
    header_lines: list[bytes]
    headers: dict[str, str]
    method: str
    path: str
    query: str
    body: bytes = b""

    def raw(self, drop: tuple[bytes, ...] = ()) -> bytes:
        """The request as forwarded: as received, less ``Expect`` (answered by the proxy) and the
        ``drop`` headers (lower-case names with the colon, e.g. ``b"if-none-match:"``)."""
        kept = [h for h in self.header_lines if not h.lower().startswith((b"expect:", *drop))]
        return self.line + b"".join(kept) + b"\r\n" + self.body


@dataclass
class _Upstream:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


class S3FaultProxy:
    """The proxy: ``with S3FaultProxy(upstream_url, seed=s) as proxy: ... proxy.url ...``."""

    def __init__(self, upstream: str, *, seed: int = 0, record: bool = False,
                 drop_headers: tuple[str, ...] = (), verify_digests: tuple[str, ...] = (),
                 refuse_checksums: bool = False, corrupt_puts: int = 0) -> None:
        """``drop_headers``: request headers never forwarded (``("If-None-Match",)`` makes the store
        one that ignores conditional writes; moto checks no signature, so it still answers).
        ``verify_digests`` (``"sha256"``, ``"md5"``) makes the store one that checks a PUT's
        ``x-amz-checksum-sha256`` / ``Content-MD5`` against its body (moto checks neither), answering
        ``BadDigest`` as AWS does; ``refuse_checksums`` one that refuses any ``x-amz-checksum-*`` header;
        ``corrupt_puts``: that many PUT bodies from 64 KiB up get one byte flipped on the way, as a
        broken link would."""
        self.verify_digests = verify_digests
        self.refuse_checksums = refuse_checksums
        self.corrupt_puts = corrupt_puts
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self.upstream = (parts.hostname, parts.port)
        self.rules: list[Rule] = []
        self.log: list[ProxyEntry] = []
        #: raw requests as received from clients (``record=True``), for the byte-for-byte check
        self.received: list[bytes] = []
        self.record = record
        self._drop = tuple(f"{name.lower()}:".encode("latin-1") for name in drop_headers)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: socketserver.ThreadingTCPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> S3FaultProxy:
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                proxy._serve_connection(self.connection, self.rfile, self.wfile)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = False
            block_on_close = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="s3-fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # idle keep-alive connections wait in readline(): wake them
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()  # joins the handler threads
        if thread is not None:
            thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> S3FaultProxy:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # ----------------------------------------------------------------- rules

    def add(self, action: str, **kwargs: object) -> Rule:
        rule = Rule(action, **kwargs)  # type: ignore[arg-type]
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    @contextmanager
    def faults(self, *rules: Rule) -> Iterator[list[Rule]]:
        """The rules for the duration of a block (cleared after, whatever happens)."""
        with self._lock:
            self.rules.extend(rules)
        try:
            yield list(rules)
        finally:
            self.clear()

    def faulted(self) -> int:
        with self._lock:
            return sum(1 for entry in self.log if entry.action is not None)

    def _pick(self, method: str, path: str, query: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if not rule.matches(method, path, query):
                    continue
                rule.matched += 1
                seen = rule.matched
                if rule.per_path:
                    seen = rule._paths[path] = rule._paths.get(path, 0) + 1
                if seen <= rule.skip:
                    hit = False
                elif rule.first is not None:
                    hit = seen - rule.skip <= rule.first
                elif rule.fraction is not None:
                    hit = self._rng.random() < rule.fraction
                else:
                    hit = True
                if hit:
                    rule.fired += 1
                    return rule
            return None

    def _note(self, request: _Request, status: int | None, action: str | None) -> None:
        names = tuple(name for name, _ in parse_qsl(request.query, keep_blank_values=True))
        with self._lock:
            self.log.append(ProxyEntry(request.method, request.path, names, status, action))

    # ----------------------------------------------------------------- serving

    def _serve_connection(self, conn: socket.socket, rfile: BufferedIOBase, wfile: BufferedIOBase) -> None:
        with self._lock:
            self._connections.add(conn)
        try:
            while not self._stopping.is_set():
                request = _read_head(rfile)
                if request is None:
                    return
                if not self._serve_one(request, rfile, wfile):
                    return
        except (OSError, ValueError, http.client.HTTPException):
            return  # the client went away, or sent something we cannot frame: drop the connection
        finally:
            with self._lock:
                self._connections.discard(conn)

    def _serve_one(self, request: _Request, rfile: BufferedIOBase, wfile: BufferedIOBase) -> bool:
        """Answer one request; False when the connection must close."""
        rule = self._pick(request.method, request.path, request.query)
        length = int(request.headers.get("content-length", "0") or 0)
        if "chunked" in request.headers.get("transfer-encoding", "").lower():
            raise ValueError("chunked request bodies are not supported by the fault proxy")
        continue_needed = request.headers.get("expect", "").lower() == "100-continue"
        if rule is not None and not rule.after and rule.action in ("hang", "close"):
            self._note(request, None, rule.action)
            if rule.action == "close" and length:
                if continue_needed:
                    wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    wfile.flush()
                rfile.read(length // 2)  # mid-request: half the body arrives, then the line drops
            elif rule.action == "hang":
                self._stopping.wait(rule.hang)
            return False
        if continue_needed and length:
            wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            wfile.flush()
        request.body = rfile.read(length) if length else b""
        if len(request.body) != length:
            return False
        if self.record:
            with self._lock:
                self.received.append(request.line + b"".join(request.header_lines) + b"\r\n" + request.body)
        if rule is not None and not rule.after:
            self._send_error(wfile, request, rule.action)
            self._note(request, _ERRORS[rule.action][0], rule.action)
            return True
        refusal = self._digest_refusal(request)
        if refusal is not None:
            self._send_error(wfile, request, refusal)
            self._note(request, _ERRORS[refusal][0], refusal)
            return True
        upstream = self._forward(request)
        if rule is not None:  # after=True: the store applied the request; its answer is lost
            if rule.action in _ERRORS:
                self._send_error(wfile, request, rule.action)
                self._note(request, _ERRORS[rule.action][0], rule.action)
                return True
            self._note(request, None, rule.action)
            if rule.action == "close":
                self._send(wfile, request, upstream, truncate=True)
            else:
                self._stopping.wait(rule.hang)
            return False
        self._send(wfile, request, upstream)
        self._note(request, upstream.status, None)
        return request.headers.get("connection", "").lower() != "close"

    def _digest_refusal(self, request: _Request) -> str | None:
        """What a digest-checking store answers this request instead of storing it, or None."""
        if request.method != "PUT":
            return None
        if self.refuse_checksums and any(name.startswith("x-amz-checksum-") for name in request.headers):
            return "no_checksums"
        if self.corrupt_puts and len(request.body) >= 65536:
            with self._lock:
                corrupt, self.corrupt_puts = self.corrupt_puts > 0, self.corrupt_puts - 1
            if corrupt:
                middle = len(request.body) // 2
                request.body = request.body[:middle] + bytes([request.body[middle] ^ 0xFF]) + request.body[middle + 1:]
        sent = request.headers.get("x-amz-checksum-sha256")
        if "sha256" in self.verify_digests and sent is not None and \
                sent != base64.b64encode(hashlib.sha256(request.body).digest()).decode("ascii"):
            return "bad_digest"
        sent = request.headers.get("content-md5")
        if "md5" in self.verify_digests and sent is not None and \
                sent != base64.b64encode(hashlib.md5(request.body, usedforsecurity=False).digest()).decode("ascii"):
            return "bad_digest"
        return None

    def _forward(self, request: _Request) -> _Upstream:
        with socket.create_connection(self.upstream, timeout=60) as sock:
            sock.sendall(request.raw(self._drop))
            response = http.client.HTTPResponse(sock, method=request.method)
            try:
                response.begin()
                body = response.read()
                return _Upstream(response.status, response.reason, response.getheaders(), body)
            finally:
                response.close()

    @staticmethod
    def _send(wfile: BufferedIOBase, request: _Request, upstream: _Upstream, *, truncate: bool = False) -> None:
        lines = [f"HTTP/1.1 {upstream.status} {upstream.reason}\r\n".encode("latin-1")]
        declared: str | None = None
        for name, value in upstream.headers:
            if name.lower() == "content-length":
                declared = value
            if name.lower() not in _HOP_RESPONSE:
                lines.append(f"{name}: {value}\r\n".encode("latin-1"))
        no_body = request.method == "HEAD" or upstream.status in (204, 304)
        # a HEAD answer announces the object's length without sending it: keep the upstream's figure
        length = (declared or "0") if no_body else str(len(upstream.body))
        lines.append(f"Content-Length: {length}\r\n\r\n".encode("latin-1"))
        body = b"" if no_body else upstream.body
        if truncate:
            body = body[: len(body) // 2]
        wfile.write(b"".join(lines) + body)
        wfile.flush()

    @staticmethod
    def _send_error(wfile: BufferedIOBase, request: _Request, action: str) -> None:
        status, reason, code, message = _ERRORS[action]
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}'
                f"</Message><RequestId>fault-proxy</RequestId></Error>").encode()
        if request.method == "HEAD":
            body = b""
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
        wfile.write(head + body)
        wfile.flush()


def _read_head(rfile: BufferedIOBase) -> _Request | None:
    """The request line and header lines, exactly as received; None at the end of the connection."""
    line = rfile.readline(_MAX_LINE)
    while line in (b"\r\n", b"\n"):
        line = rfile.readline(_MAX_LINE)
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3:
        raise ValueError("bad request line")
    header_lines: list[bytes] = []
    headers: dict[str, str] = {}
    while True:
        header = rfile.readline(_MAX_LINE)
        if header in (b"\r\n", b"\n", b""):
            break
        header_lines.append(header)
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    target = urlsplit(parts[1])
    return _Request(line, header_lines, headers, parts[0].upper(), target.path, target.query)
