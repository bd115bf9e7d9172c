"""Which media URLs an account may fetch (CONTRACT §4.8), checked on every hop of a redirect chain.

Allowed: the host of ``base_url`` and of ``media_base_url``, the provider's own media hosts (Convirza:
``*.convirza.com``) and the account's ``allowed_media_hosts``. Only http(s), and plain http only when
the account's ``base_url`` is itself http. Hosts that are allowed only through a wildcard must not be
IP literals nor resolve to private, loopback or link-local addresses (DNS rebinding, cloud metadata at
169.254.169.254); a link-local address is refused even when configured. A refusal names the
``allowed_media_hosts`` entry that would allow the host (``allow_hint``), so the operator can decide.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from worker.errors import UnsafeURL
from worker.redact import redact_url

__all__ = ["MediaPolicy", "allow_hint"]

Resolver = Callable[[str], list[str]]


def _resolve(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return sorted({str(info[4][0]) for info in infos})


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


@dataclass(frozen=True)
class MediaPolicy:
    exact_hosts: frozenset[str]
    wildcard_suffixes: tuple[str, ...]
    allow_http: bool
    resolver: Resolver = _resolve

    @classmethod
    def for_account(
        cls,
        base_url: str,
        media_base_url: str | None,
        provider_hosts: Iterable[str],
        allowed_media_hosts: Iterable[str],
        *,
        resolver: Resolver | None = None,
    ) -> MediaPolicy:
        exact: set[str] = set()
        wild: list[str] = []
        for url in (base_url, media_base_url):
            if url:
                host = urlsplit(url).hostname
                if host:
                    exact.add(host.lower())
        for pattern in [*provider_hosts, *allowed_media_hosts]:
            host = pattern.lower().rsplit(":", 1)[0] if pattern.count(":") == 1 else pattern.lower()
            if host.startswith("*."):
                wild.append(host[1:])  # ".example.com"
            else:
                exact.add(host)
        return cls(
            exact_hosts=frozenset(exact),
            wildcard_suffixes=tuple(sorted(set(wild))),
            allow_http=urlsplit(base_url).scheme == "http",
            resolver=resolver or _resolve,
        )

    def check(self, url: str, *, recording_id: str | None = None) -> None:
        """Raise ``UnsafeURL`` unless ``url`` may be fetched for this account."""
        shown = redact_url(url)
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise UnsafeURL(f"media URL {shown} cannot be parsed", recording_id=recording_id) from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise UnsafeURL(f"media URL scheme {scheme or '(none)'!r} is not allowed", recording_id=recording_id)
        if scheme == "http" and not self.allow_http:
            raise UnsafeURL(f"media URL {shown} is plain http; the account's API is https",
                            recording_id=recording_id)
        if parts.username or parts.password:
            raise UnsafeURL(f"media URL {shown} carries credentials", recording_id=recording_id)
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            raise UnsafeURL(f"media URL {shown} has no host", recording_id=recording_id)
        literal = _ip(host)
        if literal is not None and literal.is_link_local:
            raise UnsafeURL(f"media host {host} is a link-local address", recording_id=recording_id)
        if host in self.exact_hosts:
            return
        if not any(host.endswith(suffix) and len(host) > len(suffix) for suffix in self.wildcard_suffixes):
            raise UnsafeURL(f"media host {host} is not allowed for this account: {allow_hint(host)}",
                            recording_id=recording_id)
        if literal is not None:
            raise UnsafeURL(f"media host {host} is an IP address, which a wildcard never allows: "
                            f'add "{host}" to allowed_media_hosts if it is yours', recording_id=recording_id)
        for address in self.resolver(host):
            ip = _ip(address)
            if ip is not None and not ip.is_global:
                raise UnsafeURL(f"media host {host} resolves to a non-public address, which a wildcard never "
                                f'allows: add "{host}" to allowed_media_hosts if it is yours',
                                recording_id=recording_id)


#: second-level labels under a two-letter country code that are registries, not one owner's domain
_REGISTRY_LABELS = frozenset({"ac", "co", "com", "edu", "gov", "ltd", "net", "org", "plc"})


def allow_hint(host: str) -> str:
    """The ``allowed_media_hosts`` entry that would allow ``host``: the host itself and, when its parent
    is one owner's domain (not a bare TLD or a registry like ``co.uk``), the wildcard of that parent."""
    exact = f'add "{host}" to allowed_media_hosts'
    labels = host.split(".")
    if _ip(host) is not None or len(labels) < 3:
        return exact
    parent = labels[1:]
    if len(parent) == 2 and len(parent[1]) == 2 and parent[0] in _REGISTRY_LABELS:
        return exact
    return f'{exact} (or "*.{".".join(parent)}" for every host under {".".join(parent)})'
