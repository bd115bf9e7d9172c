"""Which media URLs an account may fetch (CONTRACT §4.8), checked on every hop of a redirect chain.

Allowed hosts: the host of ``base_url`` and of ``media_base_url``, the provider's own media hosts
(Convirza: ``*.convirza.com``) and the account's ``allowed_media_hosts``. Only http(s), and plain http
only when the account's ``base_url`` is itself http.

Ports: an entry with ``:port`` allows that port only; an entry without one allows only the URL
scheme's default port (443, or 80 for http). ``base_url`` and ``media_base_url`` allow their own port.

Addresses: the host is resolved once, here, and ``check`` returns the addresses it checked; the
downloader connects to exactly those (``worker.pipeline.http.pinned``), so a name that answers
differently a moment later (DNS rebinding) changes nothing. A resolution error refuses the URL. Every
address is checked: link-local (cloud metadata at 169.254.169.254), unspecified and multicast
addresses are always refused, even when configured; private, loopback and other non-public addresses
are refused unless the host was named exactly by the operator (``base_url``, ``media_base_url``, an
``allowed_media_hosts`` entry without ``*``) or the account's ``base_url`` host is itself such an
address (an on-premises or test vendor). A host allowed only through a wildcard or a provider default
must not be an IP literal either.

A refusal names the ``allowed_media_hosts`` entry that would allow the host (``allow_hint``), so the
operator can decide.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from worker.errors import UnsafeURL
from worker.redact import redact_url

__all__ = ["MediaPolicy", "MediaTarget", "allow_hint"]

Resolver = Callable[[str], list[str]]
_DEFAULT_PORTS = {"http": 80, "https": 443}
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _resolve(host: str) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order; raises ``OSError`` on failure."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _ip(host: str) -> _Address | None:
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return address


def _never(ip: _Address) -> str | None:
    """Why ``ip`` is refused whatever the configuration, or None."""
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    return None


@dataclass(frozen=True)
class _Entry:
    """One allowed host: exact, or a wildcard's suffix (``.example.com``); ``port`` None is the URL
    scheme's default port; ``trusted``: named exactly by the operator, so it may be a private address."""

    host: str
    wildcard: bool
    port: int | None
    trusted: bool

    @classmethod
    def parse(cls, pattern: str, *, trusted: bool) -> _Entry:
        text = pattern.strip().lower()
        port: int | None = None
        if text.count(":") == 1:
            text, _, digits = text.partition(":")
            port = int(digits) if digits.isdigit() else -1  # a bad port matches nothing
        text = text.rstrip(".")
        if text.startswith("*."):
            return cls(text[1:], True, port, False)
        return cls(text, False, port, trusted)

    def allows_host(self, host: str) -> bool:
        return host.endswith(self.host) and len(host) > len(self.host) if self.wildcard else host == self.host

    def allows_port(self, port: int, scheme: str) -> bool:
        return port == (self.port if self.port is not None else _DEFAULT_PORTS[scheme])


@dataclass(frozen=True)
class MediaTarget:
    """A checked media URL's host, port and the addresses to connect to (empty: a proxy resolves it)."""

    host: str
    port: int
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class MediaPolicy:
    entries: tuple[_Entry, ...]
    allow_http: bool
    #: the account's base_url host is itself a private/loopback address: its media may be too
    private_ok: bool = False
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
        entries: list[_Entry] = []
        for url in (base_url, media_base_url):
            if url:
                parts = urlsplit(url)
                try:
                    port = parts.port
                except ValueError:
                    continue
                if parts.hostname:
                    entries.append(_Entry(parts.hostname.lower().rstrip("."), False, port, True))
        entries += [_Entry.parse(pattern, trusted=False) for pattern in provider_hosts]
        entries += [_Entry.parse(pattern, trusted=True) for pattern in allowed_media_hosts]
        base_host = (urlsplit(base_url).hostname or "").lower()
        base_ip = _ip(base_host)
        return cls(
            entries=tuple(dict.fromkeys(entries)),
            allow_http=urlsplit(base_url).scheme == "http",
            private_ok=base_host == "localhost" or (base_ip is not None and not base_ip.is_global),
            resolver=resolver or _resolve,
        )

    def check(self, url: str, *, recording_id: str | None = None, resolve: bool = True) -> MediaTarget:
        """Raise ``UnsafeURL`` unless ``url`` may be fetched for this account; else the host, port and
        checked addresses to connect to. ``resolve=False`` (the request goes through a proxy, which
        resolves the name) checks the name only and returns no addresses."""
        shown = redact_url(url)
        try:
            parts = urlsplit(url)
            explicit_port = parts.port
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
        port = explicit_port if explicit_port is not None else _DEFAULT_PORTS[scheme]
        literal = _ip(host)
        never = _never(literal) if literal is not None else None
        if never:
            raise UnsafeURL(f"media host {host} is {never}", recording_id=recording_id)
        by_host = [entry for entry in self.entries if entry.allows_host(host)]
        shown_port = None if port == _DEFAULT_PORTS[scheme] else port
        if not by_host:
            raise UnsafeURL(f"media host {host} is not allowed for this account: {allow_hint(host, shown_port)}",
                            recording_id=recording_id)
        exact_entry = f'add "{host}{"" if shown_port is None else f":{port}"}" to allowed_media_hosts'
        matched = [entry for entry in by_host if entry.allows_port(port, scheme)]
        if not matched:
            raise UnsafeURL(f"media URL {shown}: port {port} is not allowed for {host}: {exact_entry}",
                            recording_id=recording_id)
        if literal is not None:
            if all(entry.wildcard for entry in matched):
                raise UnsafeURL(f"media host {host} is an IP address, which a wildcard never allows: "
                                f"{exact_entry} if it is yours", recording_id=recording_id)
            addresses: tuple[str, ...] = (str(literal),)
        elif not resolve:
            return MediaTarget(host, port, ())
        else:
            addresses = self._resolve(host, recording_id)
        private_ok = self.private_ok or any(entry.trusted for entry in matched)
        for address in addresses:
            ip = _ip(address)
            if ip is None:
                raise UnsafeURL(f"media host {host} resolves to {address!r}, not an IP address",
                                recording_id=recording_id)
            never = _never(ip)
            if never:
                raise UnsafeURL(f"media host {host} resolves to {never}", recording_id=recording_id)
            if not ip.is_global and not private_ok:
                raise UnsafeURL(f"media host {host} resolves to a non-public address, which a wildcard or a "
                                f"provider default never allows: {exact_entry} if it is yours",
                                recording_id=recording_id)
        return MediaTarget(host, port, addresses)

    def _resolve(self, host: str, recording_id: str | None) -> tuple[str, ...]:
        try:
            addresses = tuple(self.resolver(host))
        except (OSError, UnicodeError) as exc:  # UnicodeError: a label idna cannot encode
            raise UnsafeURL(f"media host {host} cannot be resolved ({type(exc).__name__}): refused",
                            recording_id=recording_id) from None
        if not addresses:
            raise UnsafeURL(f"media host {host} resolves to no address: refused", recording_id=recording_id)
        return addresses


#: second-level labels under a two-letter country code that are registries, not one owner's domain
_REGISTRY_LABELS = frozenset({"ac", "co", "com", "edu", "gov", "ltd", "net", "org", "plc"})


def allow_hint(host: str, port: int | None = None) -> str:
    """The ``allowed_media_hosts`` entry that would allow ``host`` (on ``port``, when it is not the
    scheme's default): the host itself and, when its parent is one owner's domain (not a bare TLD or
    a registry like ``co.uk``), the wildcard of that parent."""
    suffix = "" if port is None else f":{port}"
    exact = f'add "{host}{suffix}" to allowed_media_hosts'
    labels = host.split(".")
    if _ip(host) is not None or len(labels) < 3:
        return exact
    parent = labels[1:]
    if len(parent) == 2 and len(parent[1]) == 2 and parent[0] in _REGISTRY_LABELS:
        return exact
    return f'{exact} (or "*.{".".join(parent)}{suffix}" for every host under {".".join(parent)})'
