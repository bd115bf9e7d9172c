"""Pieces the security tests share: a hit-recording HTTP server (the "foreign host" that must never be
contacted), simulator-backed settings, one-pass runs and the secret scanner."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from config import Settings, settings_from_mapping
from providers.simulator import Simulator
from worker.compliance.session import open_context
from worker.pipeline.context import ArchiveContext, RetryPolicy
from worker.pipeline.passes import PassSummary, run_pass

FAST = RetryPolicy(max_attempts=3, backoff_base=0.01, backoff_max=0.02, max_retry_after=2.0)

#: the query parameters that carry a link's authority, in every vendor's spelling (simulator included)
SIGNED_QUERY = re.compile(
    r"(?i)[?&;\s\"'](secret|signature|x-amz-signature|x-amz-credential|awsaccesskeyid|auth_token|access|"
    r"expires|token|sig)=(?!\*\*\*)[^&\s\"'<>]+"
)


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Recorder:
    """A server that records every request it gets: the foreign host no request may reach."""

    host: str
    port: int
    hits: list[Hit] = field(default_factory=list)
    redirect_to: str | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextmanager
def recorder(host: str = "127.0.0.2", port: int = 0, *, redirect_to: str | None = None) -> Iterator[Recorder]:
    """Serve a ``Recorder`` on ``host:port`` (port 0: a free one) until the block ends."""
    state = Recorder(host, port, redirect_to=redirect_to)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits.append(Hit(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
            if state.redirect_to:
                self.send_response(302)
                self.send_header("Location", state.redirect_to)
            else:
                self.send_response(200)
                self.send_header("Content-Type", "audio/wav")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = do_GET

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    state.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def sim_settings(sim: Simulator, tmp_path: Path, vendors: tuple[str, ...], *, storage: dict[str, Any] | None = None,
                 **extra: Any) -> Settings:
    data: dict[str, Any] = {
        "storage": storage or {"url": str(tmp_path / "archive"), "work_dir": str(tmp_path / "work")},
        "accounts": [sim.account(vendor, name=f"sec-{vendor}") for vendor in vendors],
    }
    data.update(extra)
    return settings_from_mapping(data, sim.environ())


def one_pass(settings: Settings, **options: Any) -> PassSummary:
    ctx: ArchiveContext = open_context(settings, retry=options.pop("retry", FAST), **options)
    try:
        return run_pass(ctx, settings.accounts, concurrency=3)
    finally:
        ctx.close()


def outcomes(summary: PassSummary) -> dict[str, tuple[str, str | None]]:
    """recording id -> (outcome, reason) over every account of the pass."""
    return {r.recording_id: (str(r.outcome), r.reason) for a in summary.accounts for r in a.results}


def leaks(text: str, secrets: list[str]) -> list[str]:
    """What in ``text`` is a configured secret or a signed-URL query value (empty: nothing leaked)."""
    found = [secret for secret in secrets if secret and secret in text]
    found += [match.group(0).strip() for match in SIGNED_QUERY.finditer(text)]
    return found
