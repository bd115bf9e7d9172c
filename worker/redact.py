"""Keeping secrets out of everything we print, log or store.

Signed media URLs carry their authority in the query string (``secret=…&expires=…``), Convoso puts
``auth_token`` there too: so a URL is only ever shown without its query. Vendor records are scrubbed
of URL queries and of secret-looking keys before they are stored in ``metadata.json``. A process-wide
registry of known secrets (the configured tokens) backs a logging filter that masks them wherever
they might still slip through.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "SecretFilter",
    "guard_library_loggers",
    "mask_secrets",
    "redact_url",
    "register_secret",
    "scrub_record",
]

_MASK = "***"
_SECRET_KEY = re.compile(r"(token|secret|password|passwd|api[_-]?key|signature|sig|auth|credential)", re.I)
_URL_IN_TEXT = re.compile(r"(?i)\b((?:https?|ftp|file)://[^\s\"'<>?#]*)(\?[^\s\"'<>#]*)")
_QUERY_SECRET = re.compile(
    r"(?i)((?:auth_token|token|secret|signature|sig|access|key|x-amz-signature|x-amz-credential)=)[^&\s\"']+"
)

_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a secret so that ``mask_secrets`` and the log filter hide it everywhere."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def mask_secrets(text: str) -> str:
    """Hide every registered secret and every URL query string in ``text``."""
    text = _URL_IN_TEXT.sub(lambda m: m.group(1) + "?" + _MASK, text)
    text = _QUERY_SECRET.sub(lambda m: m.group(1) + _MASK, text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, _MASK)
    return text


def redact_url(url: str) -> str:
    """The URL without query, fragment or user info: safe to log, store and show."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a port that is not a number in range
    except ValueError:
        return "<unparseable url>"
    host = parts.hostname or ""
    netloc = f"{host}:{port}" if port else host
    if ":" in host and not host.startswith("["):
        netloc = f"[{host}]" + (f":{port}" if port else "")
    query = _MASK if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def scrub_record(value: Any) -> Any:
    """A copy of a vendor record safe to store: URL queries removed, secret-named keys dropped."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and _SECRET_KEY.search(key) and isinstance(item, str | int | float):
                continue
            out[str(key)] = scrub_record(item)
        return out
    if isinstance(value, list | tuple):
        return [scrub_record(item) for item in value]
    if isinstance(value, str):
        if "?" in value and not any(ch.isspace() for ch in value):
            path, _, query = value.partition("?")
            if re.match(r"(?i)^[a-z][a-z0-9+.-]*://", value):
                return redact_url(value)
            if "=" in query:  # a relative path with a signed query (Siro's media paths)
                return f"{path}?{_MASK}"
        if "://" in value and "?" in value:
            return mask_secrets(value)
        return mask_secrets(value) if _secrets else value
    return value


class SecretFilter(logging.Filter):
    """A logging filter that rewrites every record's message through ``mask_secrets``."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        record.msg = mask_secrets(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = mask_secrets(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


_LIBRARY_LOGGERS = ("httpx", "httpcore", "urllib3", "botocore", "boto3", "s3transfer", "celery", "kombu")


_LIBRARY_CHILDREN = tuple(f"{name}." for name in _LIBRARY_LOGGERS)


class _GuardedRecordFactory:
    """Wraps the log record factory: records of the library loggers *and their children* are masked
    as they are created. A logger's own filters never see its children's records, and those are the
    chatty ones (``httpcore.http11`` logs response headers at DEBUG, a redirect's signed ``Location``
    included; ``botocore.endpoint`` logs the S3 ``Authorization`` header)."""

    def __init__(self, inner: Callable[..., logging.LogRecord]) -> None:
        self.inner = inner
        self._filter = SecretFilter()

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.inner(*args, **kwargs)
        if record.name in _LIBRARY_LOGGERS or record.name.startswith(_LIBRARY_CHILDREN):
            self._filter.filter(record)
        return record


def guard_library_loggers() -> None:
    """Mask every record of the libraries that log full URLs (httpx logs every request line, signed
    query included, at INFO), so no handler anywhere ever sees one: a record factory masks the
    records of their loggers and child loggers as they are created (installed once per process)."""
    with _lock:
        current = logging.getLogRecordFactory()
        if not isinstance(current, _GuardedRecordFactory):
            logging.setLogRecordFactory(_GuardedRecordFactory(current))
