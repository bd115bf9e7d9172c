"""Real-network pieces on loopback for the pinning, CA-bundle and proxy tests: a private CA (made with
``cryptography``), an HTTPS media server that records the TLS server name and ``Host`` header it saw,
and a small forward proxy (absolute-form GET and CONNECT tunnels) that records what went through it
and resolves every name to 127.0.0.1 itself (the proxy, not us, resolves the name)."""

from __future__ import annotations

import datetime as dt
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

BODY = b"RIFF" + b"\x00" * 60  # what the media server serves


@dataclass
class CA:
    """A private CA and leaf certificates it signs; ``bundle`` is its PEM certificate file."""

    folder: Path
    key: Any
    cert: x509.Certificate

    @property
    def bundle(self) -> Path:
        path = self.folder / "ca.pem"
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path

    def leaf(self, *names: str) -> tuple[Path, Path]:
        """``(cert.pem, key.pem)`` for ``names`` (DNS names), signed by this CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        cert_path, key_path = self.folder / f"{names[0]}.pem", self.folder / f"{names[0]}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return cert_path, key_path


def make_ca(folder: Path) -> CA:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "recarchive test CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return CA(folder, key, cert)


@dataclass
class Seen:
    """What a server saw: ``hosts`` (the ``Host`` headers), ``server_names`` (TLS SNI), ``headers``."""

    port: int = 0
    hosts: list[str] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


@contextmanager
def _serve(server: ThreadingHTTPServer) -> Iterator[None]:
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def media_server(cert: tuple[Path, Path] | None = None) -> Iterator[Seen]:
    """An HTTP(S) server on 127.0.0.1 serving ``BODY`` as audio/wav; TLS when ``cert`` is given."""
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.hosts.append(self.headers.get("Host", ""))
            seen.headers.append({k.lower(): v for k, v in self.headers.items()})
            seen.lines.append(self.requestline)
            self.send_response(200)
            self.send_header("Content-Type", "audio/wav")
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if cert is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert[0]), str(cert[1]))

        def remember(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            seen.server_names.append(name)

        context.sni_callback = remember  # type: ignore[assignment]
        server.socket = context.wrap_socket(server.socket, server_side=True)
    seen.port = int(server.server_address[1])
    with _serve(server):
        yield seen


@contextmanager
def forward_proxy() -> Iterator[Seen]:
    """A forward proxy on 127.0.0.1: ``GET http://name:port/...`` is forwarded, ``CONNECT name:port``
    tunnelled, both to 127.0.0.1:port (this proxy resolves every name to loopback). ``lines`` keeps the
    request lines it received."""
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        def do_CONNECT(self) -> None:
            seen.lines.append(self.requestline)
            port = int(self.path.rsplit(":", 1)[1])
            upstream = socket.create_connection(("127.0.0.1", port), timeout=5)
            self.send_response(200, "Connection established")
            self.end_headers()
            self.wfile.flush()
            sockets = [self.connection, upstream]
            try:
                while True:
                    ready, _, _ = select.select(sockets, [], [], 5)
                    if not ready:
                        break
                    for sock in ready:
                        data = sock.recv(65536)
                        if not data:
                            return
                        (upstream if sock is self.connection else self.connection).sendall(data)
            finally:
                upstream.close()

        def do_GET(self) -> None:
            seen.lines.append(self.requestline)
            seen.headers.append({k.lower(): v for k, v in self.headers.items()})
            target = urlsplit(self.path)
            upstream = socket.create_connection(("127.0.0.1", target.port or 80), timeout=5)
            with upstream:
                path = target.path + (f"?{target.query}" if target.query else "")
                head = f"GET {path} HTTP/1.1\r\nHost: {target.netloc}\r\nConnection: close\r\n\r\n"
                upstream.sendall(head.encode())
                answer = b""
                while chunk := upstream.recv(65536):
                    answer += chunk
            self.wfile.write(answer)
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    seen.port = int(server.server_address[1])
    with _serve(server):
        yield seen
