"""The one place where vendor API calls meet httpx: rate limit, retries, classification, redaction.

Providers call ``VendorClient.get_json`` and get parsed JSON or one of our own errors; nothing above
this module catches ``httpx`` exceptions. Credentials (``auth_headers``, ``auth_params``) are attached
only to requests for the account's API *origin*: the same scheme, host and port as ``base_url``
(default ports made explicit), so an ``http://`` link to the API host, or the API host on another
port, gets none (PROVIDERS.md general rules: never over plain http unless ``base_url`` itself is).

Some vendors announce how much of a shared budget is left (Salesloft's ``x-ratelimit-remaining-minute``:
the team's 600 cost units a minute are shared with the customer's other integrations).
``watch_remaining`` makes the client slow down as that figure gets low, through the limiter's
``pause`` (so a daemon's shared limiter slows every worker of the account), instead of running the
budget dry and leaving the customer's other integrations with 429s.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from providers._classify import Action, classify_status
from providers._jsonbounds import MAX_JSON_DEPTH, json_depth_exceeds
from providers._ratelimit import RateLimiter, Unlimited
from worker.errors import (
    AccountError,
    AuthError,
    BadVendorData,
    NoRecording,
    NotReady,
    PermanentError,
    RateLimited,
    TooLarge,
    Unavailable,
    backoff_delay,
)
from worker.redact import redact_url

__all__ = ["MAX_JSON_BYTES", "VendorClient", "origin_of", "parse_retry_after"]

log = logging.getLogger(__name__)

#: a vendor JSON page larger than this is refused (an endless or hostile body must not exhaust memory)
MAX_JSON_BYTES = 32 * 1024 * 1024


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of ``url``, the default port made explicit; an unparsable URL gives
    an origin that matches nothing."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        port = parts.port if parts.port is not None else _DEFAULT_PORTS.get(scheme)
    except ValueError:
        return ("", "", None)
    return scheme, (parts.hostname or "").lower().rstrip("."), port


def _is_media_type(value: str | None) -> bool:
    kind = (value or "").split(";", 1)[0].strip().lower()
    return kind.startswith(("audio/", "video/")) or kind == "application/octet-stream"


class VendorClient:
    """An account's view of its vendor API.

    ``max_attempts`` bounds retries of one call (429 and 5xx/timeouts); ``max_retry_after`` caps how
    long one 429 may make us wait before we give up on this call with ``RateLimited``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        http: httpx.Client,
        auth_headers: Mapping[str, str] | None = None,
        auth_params: Mapping[str, str] | None = None,
        limiter: RateLimiter | None = None,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_retry_after: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.api_origin = origin_of(self.base_url)
        self.http = http
        self._auth_headers = dict(auth_headers or {})
        self._auth_params = dict(auth_params or {})
        self.limiter: RateLimiter = limiter or Unlimited()
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self._calls = 0
        self._calls_lock = threading.Lock()
        self._parent: VendorClient | None = None
        self._remaining_header: str | None = None
        self._remaining_window = 60.0
        self._remaining_low = 0

    @property
    def calls(self) -> int:
        """How many requests this client has sent (discovery efficiency figures)."""
        return self._calls

    def _count(self) -> None:
        with self._calls_lock:
            self._calls += 1
        if self._parent is not None:
            self._parent._count()

    def sibling(self, base_url: str) -> VendorClient:
        """A client for a second API of the same account (Siro's gateway beside its external API):
        the same connection pool, rate limiter and retry policy, none of this client's credentials
        (the caller passes ``credentials`` per call, sent only to the sibling's own origin), and its
        requests counted in this client's ``calls`` too, so an account's API figures stay whole."""
        other = VendorClient(base_url, http=self.http, limiter=self.limiter, max_attempts=self.max_attempts,
                             backoff_base=self.backoff_base, backoff_max=self.backoff_max,
                             max_retry_after=self.max_retry_after, sleep=self._sleep)
        other._parent = self
        return other

    def url_for(self, path_or_url: str) -> str:
        if "://" in path_or_url:
            return path_or_url
        return urljoin(self.base_url, path_or_url.lstrip("/"))

    def is_api_host(self, url: str) -> bool:
        """Whether ``url`` is on the API's exact origin (scheme, host, port): the only place the
        account's credentials may go."""
        return origin_of(url) == self.api_origin

    def watch_remaining(self, header: str, *, window: float = 60.0, low: int = 100) -> None:
        """Slow down when response header ``header`` (what is left of a budget renewed every ``window``
        seconds, shared with others) falls to ``low`` or below: each such answer pauses the limiter
        for ``window / (remaining + 1)`` seconds, so the less is left the slower we go, and at 0 we
        wait out a whole window. Nothing happens while the header is absent or above ``low``."""
        self._remaining_header = header
        self._remaining_window = window
        self._remaining_low = low

    def _notice_remaining(self, response: httpx.Response, shown: str) -> None:
        if self._remaining_header is None:
            return
        value = response.headers.get(self._remaining_header, "").strip()
        try:
            remaining = int(float(value))
        except ValueError:
            return
        if remaining > self._remaining_low:
            return
        wait = self._remaining_window / (max(0, remaining) + 1)
        log.info("vendor budget low (%s: %d left) after %s: slowing down %.1fs",
                 self._remaining_header, remaining, shown, wait)
        self.limiter.pause(wait)

    def auth_headers_for(self, url: str) -> dict[str, str]:
        """The credentials for ``url``: the account's, if and only if it is on the API host."""
        return dict(self._auth_headers) if self.is_api_host(url) else {}

    def get_json(
        self,
        path_or_url: str,
        params: Mapping[str, Any] | None = None,
        *,
        overrides: Mapping[int, Action] | None = None,
        recording_id: str | None = None,
    ) -> Any:
        """GET and parse JSON, retrying what is transient; raise our own errors for the rest."""
        url = self.url_for(path_or_url)
        response = self.request("GET", url, params=params, overrides=overrides, recording_id=recording_id)
        return self.parse_json(response, url, recording_id=recording_id)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        overrides: Mapping[int, Action] | None = None,
        recording_id: str | None = None,
        follow_redirects: bool = False,
        media_ok: bool = False,
        credentials: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> httpx.Response:
        """Send one request (with retries) and return the successful, fully read response.

        ``credentials``: headers that authenticate this one call (a short-lived token the provider
        holds, e.g. Siro's OAuth access token), attached like the account's own: only when ``url`` is
        on this client's API origin. ``json_body`` is sent as the JSON request body.

        ``media_ok``: a successful answer whose ``Content-Type`` is media (``audio/*``, ``video/*``,
        ``application/octet-stream``) comes back with its body unread (empty ``content``): the caller
        only learns that the URL serves the bytes, which the downloader then streams (a Salesloft
        recording ``_href``). Without it such a body is read like any other, within ``MAX_JSON_BYTES``.
        """
        query: dict[str, Any] = {k: v for k, v in (params or {}).items() if v is not None}
        headers: dict[str, str] = {"Accept": "application/json"}
        if self.is_api_host(url):
            query.update(self._auth_params)
            headers.update(self._auth_headers)
            headers.update(credentials or {})
        content = None if json_body is None else json.dumps(json_body).encode("utf-8")
        if content is not None:
            headers["Content-Type"] = "application/json"
        shown = redact_url(url)
        for name, value in headers.items():
            if not value.isascii():  # the value is a credential: named, never shown
                raise AuthError(f"{shown}: the {name} header for this account holds non-ASCII text; "
                                "HTTP headers carry ASCII only (check the token)")
        last_error: Exception | None = None
        for attempt in range(1, self.max_attempts + 1):
            self.limiter.acquire()
            self._count()
            try:
                response = self._send(method, url, query, headers, follow_redirects, media_ok=media_ok,
                                      content=content)
            except httpx.TimeoutException as exc:
                last_error = Unavailable(f"{shown}: timed out", recording_id=recording_id)
                log.debug("vendor call timed out: %s (%s)", shown, type(exc).__name__)
                self._backoff(attempt)
                continue
            except httpx.TransportError as exc:
                last_error = Unavailable(
                    f"{shown}: connection failed ({type(exc).__name__})", recording_id=recording_id
                )
                self._backoff(attempt)
                continue
            except httpx.InvalidURL:
                # httpx parses a 3xx Location even when not following it: a malformed one lands here
                raise PermanentError(f"{shown}: the URL or the vendor's redirect Location is not a valid URL",
                                     recording_id=recording_id) from None
            self._notice_remaining(response, shown)
            action = classify_status(response.status_code, overrides)
            if action is Action.OK:
                return response
            if action is Action.RATE_LIMITED:
                wait = parse_retry_after(response.headers.get("Retry-After"))
                wait = 1.0 if wait is None else wait
                last_error = RateLimited(f"{shown}: 429 Too Many Requests", retry_after=wait,
                                         recording_id=recording_id)
                if wait > self.max_retry_after:
                    raise last_error
                self.limiter.pause(wait)
                log.info("vendor rate limited %s: waiting %.1fs", shown, wait)
                continue
            if action is Action.RETRY:
                last_error = Unavailable(f"{shown}: HTTP {response.status_code}", recording_id=recording_id)
                self._backoff(attempt)
                continue
            raise self._error_for(action, response, shown, recording_id)
        assert last_error is not None
        raise last_error

    def _send(
        self, method: str, url: str, query: Mapping[str, Any], headers: Mapping[str, str], follow: bool,
        *, media_ok: bool = False, content: bytes | None = None,
    ) -> httpx.Response:
        with self.http.stream(method, url, params=query, headers=headers, follow_redirects=follow,
                              content=content) as response:
            if media_ok and response.is_success and _is_media_type(response.headers.get("Content-Type")):
                response._content = b""
                return response
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > MAX_JSON_BYTES:
                raise TooLarge(f"{redact_url(url)}: a {int(declared)} byte API response is beyond our bound")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_JSON_BYTES:
                    raise BadVendorData(f"{redact_url(url)}: API response larger than {MAX_JSON_BYTES} bytes")
                chunks.append(chunk)
            response._content = b"".join(chunks)
            return response

    def _backoff(self, attempt: int) -> None:
        if attempt >= self.max_attempts:
            return
        self._sleep(backoff_delay(attempt, self.backoff_base, self.backoff_max))

    def _error_for(
        self, action: Action, response: httpx.Response, shown: str, recording_id: str | None
    ) -> Exception:
        status = response.status_code
        message = f"{shown}: HTTP {status}"
        if action is Action.FAIL_ACCOUNT:
            if status in (401, 403):
                return AuthError(f"{message}: the vendor refused the account's credentials")
            return AccountError(message)
        if action is Action.NOT_READY:
            return NotReady(message, recording_id=recording_id)
        if action is Action.NO_RECORDING:
            return NoRecording(message, recording_id=recording_id)
        return PermanentError(message, recording_id=recording_id)

    @staticmethod
    def parse_json(response: httpx.Response, url: str, *, recording_id: str | None = None) -> Any:
        if json_depth_exceeds(response.content):
            raise BadVendorData(
                f"{redact_url(url)}: the vendor's JSON is nested deeper than {MAX_JSON_DEPTH} levels",
                recording_id=recording_id,
            )
        try:
            document = json.loads(response.content)
        except RecursionError:  # the depth check makes this unreachable; kept as the last guard
            raise BadVendorData(f"{redact_url(url)}: the vendor's JSON is nested too deep",
                                recording_id=recording_id) from None
        except (ValueError, UnicodeDecodeError):
            raise BadVendorData(
                f"{redact_url(url)}: the vendor answered HTTP {response.status_code} with a body that is not JSON",
                recording_id=recording_id,
            ) from None
        if _SURROGATE_ESCAPE.search(response.content) and _has_lone_surrogate(document):
            # "\ud800" is valid JSON but not text: it cannot be encoded as UTF-8 into a key, a
            # metadata.json or a URL, so such a page is malformed for us (RFC 8259 §8.2)
            raise BadVendorData(
                f"{redact_url(url)}: the vendor's JSON holds an unpaired UTF-16 surrogate escape",
                recording_id=recording_id,
            )
        return document


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(value: Any) -> bool:
    """Whether a string anywhere in parsed JSON (keys included) holds an unpaired surrogate."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False
