"""The one place where vendor API calls meet httpx: rate limit, retries, classification, redaction.

Providers call ``VendorClient.get_json`` and get parsed JSON or one of our own errors; nothing above
this module catches ``httpx`` exceptions. Credentials (``auth_headers``, ``auth_params``) are attached
only to requests for the account's API host; any other host gets none.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from providers._classify import Action, classify_status
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
)
from worker.redact import redact_url

__all__ = ["MAX_JSON_BYTES", "VendorClient", "parse_retry_after"]

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
        self.api_host = (urlsplit(self.base_url).hostname or "").lower()
        self.api_port = urlsplit(self.base_url).port
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

    @property
    def calls(self) -> int:
        """How many requests this client has sent (discovery efficiency figures)."""
        return self._calls

    def url_for(self, path_or_url: str) -> str:
        if "://" in path_or_url:
            return path_or_url
        return urljoin(self.base_url, path_or_url.lstrip("/"))

    def is_api_host(self, url: str) -> bool:
        parts = urlsplit(url)
        return (parts.hostname or "").lower() == self.api_host and parts.port == self.api_port

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
    ) -> httpx.Response:
        """Send one request (with retries) and return the successful, fully read response.

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
        shown = redact_url(url)
        last_error: Exception | None = None
        for attempt in range(1, self.max_attempts + 1):
            self.limiter.acquire()
            with self._calls_lock:
                self._calls += 1
            try:
                response = self._send(method, url, query, headers, follow_redirects, media_ok=media_ok)
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
        *, media_ok: bool = False,
    ) -> httpx.Response:
        with self.http.stream(method, url, params=query, headers=headers, follow_redirects=follow) as response:
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
        delay = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        self._sleep(delay * (0.5 + random.random() / 2))

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
        try:
            document = json.loads(response.content)
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
