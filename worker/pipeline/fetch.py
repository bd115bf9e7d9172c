"""Streaming a recording's bytes into a local spool, hashing as they arrive.

This is the boundary where media downloads meet httpx: every ``httpx`` exception is translated here.
Redirects are followed by hand so each hop passes the account's ``MediaPolicy``, and each hop connects
to the addresses the policy checked (``pinned``: resolved once, no DNS rebinding). Credentials that
came with a link are sent to its own origin only (scheme, host, port), and over plain http only when
the account's API itself is http. A body cut short is resumed with ``Range`` from the
bytes already spooled (or restarted when the server ignores ``Range``), so the result is byte-exact.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

import httpx

from providers._http import parse_retry_after
from providers.base import MediaLink
from worker.errors import (
    Interrupted,
    LinkExpired,
    PermanentError,
    RateLimited,
    TooLarge,
    Unavailable,
    UnsafeURL,
)
from worker.pipeline.http import pinned, proxy_for
from worker.pipeline.mediapolicy import MediaPolicy
from worker.pipeline.sniff import SNIFF_BYTES
from worker.redact import redact_url

__all__ = ["DEFAULT_MAX_BYTES", "Spool", "fetch_into"]

#: the largest recording we accept (an endless body or a gigantic Content-Length is refused)
DEFAULT_MAX_BYTES = 64 * 2**30
MAX_REDIRECTS = 5
_REDIRECTS = {301, 302, 303, 307, 308}
_EXPIRED = {401, 403, 404, 410}


@dataclass
class Spool:
    """A local file receiving one recording, with its running SHA-256, size and first bytes."""

    path: Path
    size: int = 0
    head: bytearray = field(default_factory=bytearray)
    restarts: int = 0
    #: called once with the first bytes (``SNIFF_BYTES`` or the whole short body): may raise
    #: ``NotMedia`` so an error page is refused before a large body is downloaded
    head_check: Callable[[bytes], None] | None = None
    _head_checked: bool = False
    #: MD5 too, in the same pass, where the store checks it (Content-MD5) against the bytes it
    #: receives (``Storage.upload_digest``): the upload then needs no second read of the spool, and what
    #: it stores is what was hashed here. Elsewhere MD5 would cost half again SHA-256's CPU for nothing.
    md5: bool = True
    _sha: Any = field(default_factory=hashlib.sha256)
    _md5: Any = None
    _file: IO[bytes] | None = None

    def __enter__(self) -> Spool:
        if self.md5 and self._md5 is None:
            self._md5 = hashlib.md5(usedforsecurity=False)
        self._file = open(self.path, "wb")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def write(self, chunk: bytes) -> None:
        assert self._file is not None, "spool not open"
        self._file.write(chunk)
        if len(self.head) < SNIFF_BYTES:
            self.head += chunk[: SNIFF_BYTES - len(self.head)]
        self._sha.update(chunk)
        if self._md5 is not None:
            self._md5.update(chunk)
        self.size += len(chunk)
        if not self._head_checked and len(self.head) >= SNIFF_BYTES:
            self.check_head()

    def check_head(self) -> None:
        """Run ``head_check`` on the first bytes once (at SNIFF_BYTES, or at the end of a short body)."""
        if not self._head_checked and self.head_check is not None:
            self._head_checked = True
            self.head_check(bytes(self.head))

    def reset(self) -> None:
        """Start over from byte 0 (the server could not resume)."""
        assert self._file is not None, "spool not open"
        self._file.seek(0)
        self._file.truncate()
        self.size = 0
        self.head = bytearray()
        self._sha = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False) if self.md5 else None
        self._head_checked = False
        self.restarts += 1

    def finish(self) -> str:
        """Flush and return the hex SHA-256 of everything written. No fsync: the spool is scratch
        space, read back by this process; durability comes from the store it is uploaded to."""
        assert self._file is not None, "spool not open"
        self._file.flush()
        return str(self._sha.hexdigest())

    @property
    def sha256(self) -> str:
        return str(self._sha.hexdigest())

    @property
    def content_md5(self) -> str | None:
        """The base64 MD5 of everything written (an HTTP ``Content-MD5`` value); None if not hashed."""
        return None if self._md5 is None else base64.b64encode(self._md5.digest()).decode("ascii")


def fetch_into(
    http: httpx.Client,
    link: MediaLink,
    spool: Spool,
    policy: MediaPolicy,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    recording_id: str | None = None,
) -> None:
    """Fetch ``link`` into ``spool`` from ``spool.size`` on (``Range`` when resuming).

    Returns when the announced body is complete; raises ``Interrupted`` (resumable), ``LinkExpired``,
    ``RateLimited``, ``Unavailable``, ``UnsafeURL``, ``TooLarge`` or ``PermanentError``.
    """
    url = link.url
    origin = _origin(url)
    for _hop in range(MAX_REDIRECTS + 1):
        target = policy.check(url, recording_id=recording_id, resolve=proxy_for(http, url) is None)
        headers = {"Accept": "*/*", "Accept-Encoding": "identity"}
        if _origin(url) == origin and (origin[0] == "https" or policy.allow_http):
            headers.update(link.headers)  # a link's credentials: its own origin only, over https
        if spool.size:
            headers["Range"] = f"bytes={spool.size}-"
        try:
            with pinned(target.host, target.port, target.addresses), \
                    http.stream("GET", url, headers=headers, follow_redirects=False) as response:
                if response.status_code in _REDIRECTS:
                    location = response.headers.get("Location")
                    if not location:
                        raise PermanentError(f"{redact_url(url)}: redirect without Location",
                                             recording_id=recording_id)
                    url = urljoin(url, location)
                    continue
                _check_status(response, url, spool, recording_id)
                _receive(response, url, spool, max_bytes, recording_id)
                return
        except httpx.TimeoutException:
            if spool.size:
                raise Interrupted(f"{redact_url(url)}: timed out after {spool.size} bytes",
                                  received=spool.size, recording_id=recording_id) from None
            raise Unavailable(f"{redact_url(url)}: timed out", recording_id=recording_id) from None
        except httpx.TransportError as exc:
            if spool.size:
                raise Interrupted(
                    f"{redact_url(url)}: connection lost after {spool.size} bytes ({type(exc).__name__})",
                    received=spool.size, recording_id=recording_id,
                ) from None
            raise Unavailable(f"{redact_url(url)}: connection failed ({type(exc).__name__})",
                              recording_id=recording_id) from None
        except httpx.InvalidURL:
            # a URL httpx cannot send, or a redirect whose Location it cannot parse (httpx reads the
            # Location of every 3xx, even when not following it): refused like any URL we cannot vet
            raise UnsafeURL(f"{redact_url(url)}: the URL or its redirect Location is not a valid URL",
                            recording_id=recording_id) from None
    raise PermanentError(f"{redact_url(link.url)}: more than {MAX_REDIRECTS} redirects", recording_id=recording_id)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return (parts.scheme.lower(), (parts.hostname or "").lower(), port)


def _check_status(response: httpx.Response, url: str, spool: Spool, recording_id: str | None) -> None:
    status = response.status_code
    shown = redact_url(url)
    if status == 200:
        if spool.size:
            spool.reset()  # the server ignored Range: take the whole body again
        return
    if status == 206:
        start = _content_range_start(response.headers.get("Content-Range"))
        if start != spool.size:
            spool.reset()
            raise Interrupted(f"{shown}: resumed at byte {start}, expected {spool.size}",
                              received=0, recording_id=recording_id)
        return
    if status == 416:
        spool.reset()
        raise Unavailable(f"{shown}: range not satisfiable; restarting", recording_id=recording_id)
    if status in _EXPIRED:
        raise LinkExpired(f"{shown}: HTTP {status} (link expired or revoked)", recording_id=recording_id)
    if status == 429:
        raise RateLimited(f"{shown}: HTTP 429", recording_id=recording_id,
                          retry_after=parse_retry_after(response.headers.get("Retry-After")))
    if status >= 500 or status in (408, 425):
        raise Unavailable(f"{shown}: HTTP {status}", recording_id=recording_id)
    raise PermanentError(f"{shown}: HTTP {status}", recording_id=recording_id)


def _content_range_start(value: str | None) -> int | None:
    # "bytes 100-199/200"
    if not value or not value.startswith("bytes "):
        return None
    try:
        return int(value[6:].split("-", 1)[0])
    except ValueError:
        return None


def _receive(response: httpx.Response, url: str, spool: Spool, max_bytes: int, recording_id: str | None) -> None:
    declared = response.headers.get("Content-Length")
    expected_end: int | None = None
    if declared is not None and "Content-Encoding" not in response.headers:
        try:
            expected_end = spool.size + int(declared)
        except ValueError:
            expected_end = None
    if expected_end is not None and expected_end > max_bytes:
        raise TooLarge(f"{redact_url(url)}: announces {expected_end} bytes, beyond the {max_bytes} byte bound",
                       recording_id=recording_id)
    # no chunk_size: httpx would hold back a partial chunk, losing what arrived before a cut
    for chunk in response.iter_bytes():
        spool.write(chunk)
        if spool.size > max_bytes:
            raise TooLarge(f"{redact_url(url)}: body exceeds the {max_bytes} byte bound", recording_id=recording_id)
    if expected_end is not None and spool.size < expected_end:
        raise Interrupted(f"{redact_url(url)}: body ended at {spool.size} of {expected_end} bytes",
                          received=spool.size, recording_id=recording_id)
