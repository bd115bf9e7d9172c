"""Keeping secrets out of everything we print, log or store.

Signed media URLs carry their authority in the query string (``secret=…&expires=…``), Convoso puts
``auth_token`` there too: so a URL is only ever shown without its query. Vendor records are scrubbed
of URL queries and of secret-looking keys before they are stored in ``metadata.json``. A process-wide
registry of known secrets (the configured tokens) backs a logging filter that masks them wherever
they might still slip through.

``scrub_record`` keeps evidence: it drops only what is a secret, judged by whole key *segments*
(``access_token`` → ``access``, ``token``; ``xApiKey`` → ``x``, ``api``, ``key``), not by substrings,
so ``assigned_user_id``, ``author``, ``authored_at``, ``token_count``, ``signal``, ``design`` and
``keyframe`` survive. A key is secret when

1. two adjacent segments make a secret pair (``api key``, ``access key``, ``secret key``,
   ``private key``, ``signing key``, ``session id``, ``session key``, ...), else
2. it ends in a harmless qualifier (``count``, ``type``, ``id``, ``at``, ``expires``, ``url``, ...:
   ``token_count``, ``auth_type``, ``accessTokenId``, ``token_expires_at`` describe a secret, they
   are not one), it is kept, else
3. any segment is a secret word (``token``, ``secret``, ``password``/``passwd``/``pwd``,
   ``passphrase``, ``auth``/``authorization``, ``signature``/``sig``, ``credential(s)``,
   ``cookie(s)``, ``bearer``, ``jwt``, ``apikey``, ``accesstoken``, ...).

A secret key's value goes whatever it is (text, number, list, object). Values are checked under any
key, at any depth: a URL loses its query and its ``user:password@``; a signed relative path its
query; ``Bearer …``/``Basic …`` and JWT-shaped strings, AWS access key ids and PEM private keys are
masked. Long hex or base64 strings are *not* masked by shape: recording ids and checksums look the
same, and masking them would destroy the evidence this document exists for.
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "SecretFilter",
    "guard_library_loggers",
    "is_secret_key",
    "key_segments",
    "mask_secrets",
    "redact_url",
    "register_secret",
    "scrub_record",
]

_MASK = "***"
_SECRET_WORDS = frozenset({
    "token", "tokens", "secret", "secrets", "password", "passwords", "passwd", "pwd", "passphrase",
    "auth", "authorization", "signature", "signatures", "sig", "credential", "credentials", "cookie",
    "cookies", "bearer", "jwt", "apikey", "apikeys", "accesstoken", "refreshtoken", "authtoken", "idtoken",
    "apitoken", "accesskey", "secretkey", "privatekey", "sessionid", "sessionkey", "sessiontoken",
    "clientsecret", "xsrf", "csrf",
})
_SECRET_PAIRS = frozenset({
    ("api", "key"), ("access", "key"), ("secret", "key"), ("private", "key"), ("signing", "key"),
    ("encryption", "key"), ("account", "key"), ("master", "key"), ("session", "id"), ("session", "key"),
    ("client", "secret"), ("x", "signature"),
})
_HARMLESS_LAST = frozenset({
    "count", "counts", "type", "types", "kind", "length", "len", "size", "limit", "limits", "usage", "used",
    "remaining", "expires", "expiry", "expiration", "at", "on", "time", "date", "id", "ids", "name", "names",
    "required", "enabled", "method", "methods", "scheme", "status", "state", "version", "provider", "url",
    "uri", "endpoint", "present", "set", "valid", "verified", "scope", "scopes",
})
_KEY_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_CREDENTIAL_VALUE = re.compile(r"(?i)^\s*(bearer|basic|token|digest)\s+\S{8,}\s*$")
_CREDENTIAL_TEXT = re.compile(
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"           # a JWT
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"                                        # an AWS access key id
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"
    r"|\b(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{16,}",                       # an Authorization value
    re.DOTALL,
)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#]*@")
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


def key_segments(key: str) -> list[str]:
    """``"xAmzSignature"`` → ``["x", "amz", "signature"]``: split on punctuation and camelCase."""
    return [part.lower() for part in _KEY_SPLIT.split(key) if part]


@functools.lru_cache(maxsize=4096)  # vendor records repeat the same few dozen field names
def is_secret_key(key: str) -> bool:
    """Whether a field named ``key`` holds a secret (the rules in the module docstring)."""
    parts = key_segments(key)
    if any(pair in _SECRET_PAIRS for pair in itertools.pairwise(parts)):
        return True
    if not parts or parts[-1] in _HARMLESS_LAST:
        return False
    return any(part in _SECRET_WORDS for part in parts)


def scrub_record(value: Any) -> Any:
    """A copy of a vendor record safe to store: secret keys dropped whatever their value, credentials
    and URL queries/userinfo masked at any depth, everything else kept. Iterative, so a deep record
    cannot exhaust the stack (vendor pages are depth-bounded anyway: ``providers._jsonbounds``)."""
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while stack:
        item, parent, slot = stack.pop()
        if isinstance(item, Mapping):
            out: dict[str, Any] = {}
            parent[slot] = out
            for key, child in item.items():
                name = str(key)
                if not is_secret_key(name):
                    out[name] = None
                    stack.append((child, out, name))
        elif isinstance(item, list | tuple):
            items: list[Any] = [None] * len(item)
            parent[slot] = items
            stack.extend((child, items, n) for n, child in enumerate(item))
        elif isinstance(item, str):
            parent[slot] = _scrub_text(item)
        else:
            parent[slot] = item
    return root[0]


def _scrub_text(value: str) -> str:
    if _CREDENTIAL_VALUE.match(value):
        return _MASK
    if "?" in value and not any(ch.isspace() for ch in value):
        path, _, query = value.partition("?")
        if re.match(r"(?i)^[a-z][a-z0-9+.-]*://", value):
            return redact_url(value)
        if "=" in query:  # a relative path with a signed query (Siro's media paths)
            return f"{path}?{_MASK}"
    if re.match(r"(?i)^[a-z][a-z0-9+.-]*://\S*$", value) and "@" in value:
        return redact_url(value)
    if "@" in value and "://" in value:
        value = _USERINFO.sub(lambda m: m.group(1), value)
    value = _CREDENTIAL_TEXT.sub(_MASK, value)
    if "://" in value and "?" in value:
        return mask_secrets(value)
    return mask_secrets(value) if _secrets else value


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
