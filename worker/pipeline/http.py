"""The one HTTP client for vendor APIs and media, built for real networks and hostile ones.

Real networks (``[http]``, CONTRACT §4.8): a private CA (``ca_bundle``, else ``SSL_CERT_FILE`` /
``SSL_CERT_DIR``, else certifi's bundle) and a proxy (``proxy``, else ``HTTPS_PROXY`` / ``HTTP_PROXY``
/ ``ALL_PROXY`` with ``NO_PROXY``). The environment is read here, by us: httpx's own ``trust_env``
stays off, because it would also read ``~/.netrc`` and attach whatever login it holds for a host to
requests for that host (a vendor's media CDN included).

Hostile networks: a media URL's host is resolved once by ``MediaPolicy``, every address checked, and
the connection then goes to exactly those addresses (``pinned``), with the URL's name kept for the
TLS server name, the certificate check and the ``Host`` header. A resolver that answers a public
address at check time and 127.0.0.1 a moment later (DNS rebinding) is never asked twice. Media
requests use their own connection pool, whose network backend refuses any connection it was not
given checked addresses for, so a media request never rides on an API connection either.

Through a proxy the proxy resolves the name: the pinning then applies to the proxy's address (the
one the operator configured) and the media host check is on the name only.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import httpcore
import httpx

from config.settings import HttpSettings
from worker import __version__
from worker.errors import ConfigError
from worker.redact import guard_library_loggers, redact_url

__all__ = ["USER_AGENT", "PinnedBackend", "RoutingTransport", "VendorHttpClient", "make_http_client", "pinned",
           "proxy_for"]

USER_AGENT = f"recarchive/{__version__} (+call-recording archiver)"

_DEFAULT_PORTS = {"http": 80, "https": 443}
_local = threading.local()


def _norm(host: str) -> str:
    """A host as httpcore connects to it: lower case, no trailing dot or brackets, IDNA (punycode)."""
    host = host.lower().rstrip(".").strip("[]")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return host  # matches no connection: refused
    return host


@contextmanager
def pinned(host: str, port: int, addresses: Iterable[str]) -> Iterator[None]:
    """Within the block, this thread's media connection to ``host:port`` goes to ``addresses`` only
    (tried in order), whatever the resolver would answer now. httpx connects in the calling thread,
    so a thread-local is exactly the scope of one ``http.stream(...)``."""
    previous = getattr(_local, "pin", None)
    _local.pin = (_norm(host), port, tuple(addresses))
    try:
        yield
    finally:
        _local.pin = previous


def _current_pin() -> tuple[str, int, tuple[str, ...]] | None:
    pin: tuple[str, int, tuple[str, ...]] | None = getattr(_local, "pin", None)
    return pin


class PinnedBackend(httpcore.NetworkBackend):
    """Connects only to the addresses ``pinned`` gave for the host asked: no pin, no connection.

    httpcore passes the URL's host here and keeps it for the TLS handshake (SNI and the certificate's
    name), so swapping the address below changes where we connect and nothing else."""

    def __init__(self, inner: httpcore.NetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        pin = _current_pin()
        if pin is None or pin[0] != _norm(host) or pin[1] != port or not pin[2]:
            raise httpcore.ConnectError(f"no checked address to connect to for {host}:{port}")
        failure: Exception | None = None
        for address in pin[2]:
            try:
                return self._inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                               socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("media is never fetched over a unix socket")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class RoutingTransport(httpx.BaseTransport):
    """Sends each request through the proxy that applies to it, else through the pinned media pool
    (inside ``pinned``), else through the API pool."""

    def __init__(self, *, ssl_context: ssl.SSLContext, limits: httpx.Limits, proxy: str | None,
                 env_proxies: dict[str, str], network_backend: httpcore.NetworkBackend | None = None) -> None:
        self._proxy = proxy
        self._env = env_proxies
        self._api = httpx.HTTPTransport(verify=ssl_context, limits=limits, trust_env=False)
        self._media = httpx.HTTPTransport(verify=ssl_context, limits=limits, trust_env=False)
        self._media._pool = httpcore.ConnectionPool(  # httpx has no public way to pass a backend
            ssl_context=ssl_context, max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry, network_backend=PinnedBackend(network_backend),
        )
        self._proxied: dict[str, httpx.HTTPTransport] = {}
        for url in {proxy} if proxy else {v for k, v in self._env.items() if k != "no"}:
            try:
                self._proxied[url] = httpx.HTTPTransport(verify=ssl_context, limits=limits, trust_env=False,
                                                         proxy=url)
            except (ImportError, ValueError, httpx.InvalidURL) as exc:
                raise ConfigError(f"proxy {redact_url(url)} cannot be used: {exc}") from None

    def proxy_for(self, url: str | httpx.URL) -> str | None:
        """The proxy URL a request to ``url`` goes through, or None (direct). A request's own
        ``httpx.URL`` is used as it is: parsing a long signed URL again costs more than the rest."""
        if self._proxy:
            return self._proxy
        if not self._proxied:
            return None  # no proxy in the environment: nothing to decide
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        except httpx.InvalidURL:
            return None
        scheme, host = parsed.scheme, parsed.host
        proxy = self._env.get(scheme) or self._env.get("all")
        if not proxy:
            return None
        if _no_proxy(self._env.get("no", ""), _norm(host), parsed.port or _DEFAULT_PORTS.get(scheme)):
            return None
        return proxy

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        proxy = self.proxy_for(request.url)
        if proxy is not None:
            return self._proxied[proxy].handle_request(request)
        pin = _current_pin()
        if pin is not None:
            url = request.url
            if _norm(url.raw_host.decode("ascii")) != pin[0] or (url.port or _DEFAULT_PORTS.get(url.scheme)) != pin[1]:
                raise httpx.ConnectError("a media request may only go to the host that was checked",
                                         request=request)
            return self._media.handle_request(request)
        return self._api.handle_request(request)

    def close(self) -> None:
        for transport in (self._api, self._media, *self._proxied.values()):
            transport.close()


class VendorHttpClient(httpx.Client):
    """An ``httpx.Client`` that knows its routing (``proxy_for``), so the downloader can tell whether
    the media host is resolved by us (direct: resolve, check, pin) or by a proxy (check the name)."""

    routing: RoutingTransport


def proxy_for(http: httpx.Client, url: str) -> str | None:
    """The proxy ``http`` sends ``url`` through, or None (direct, or a client we did not build)."""
    routing = getattr(http, "routing", None)
    return routing.proxy_for(url) if isinstance(routing, RoutingTransport) else None


def _env_proxies(environ: dict[str, str]) -> dict[str, str]:
    """``{"http"|"https"|"all": proxy URL, "no": NO_PROXY}`` from the environment, as curl and urllib
    read it (lower case wins; ``HTTP_PROXY`` is ignored under CGI, where a request header sets it)."""
    found: dict[str, str] = {}
    for upper in (False, True):
        for name, value in environ.items():
            key = name.lower()
            if not value or not key.endswith("_proxy") or (name == key) == upper:
                continue
            scheme = key[: -len("_proxy")]
            if scheme in ("http", "https", "all", "no") and scheme not in found:
                found[scheme] = value
    if "REQUEST_METHOD" in environ:
        found.pop("http", None)
    return found


def _no_proxy(rules: str, host: str, port: int | None) -> bool:
    """Whether ``NO_PROXY`` exempts ``host:port``, as curl reads it: ``*``; a name matching the host
    or a parent domain (a leading dot optional); an IP or CIDR block; each with an optional ``:port``."""
    address = None
    with suppress(ValueError):
        address = ipaddress.ip_address(host)
    for raw in rules.split(","):
        rule = raw.strip().lower()
        if not rule:
            continue
        if rule == "*":
            return True
        name, _, rule_port = rule.rpartition(":") if rule.count(":") == 1 else (rule, "", "")
        if rule_port and (not rule_port.isdigit() or int(rule_port) != port):
            continue
        name = name.strip("[]").lstrip(".").rstrip(".")
        if address is not None:
            try:
                if address in ipaddress.ip_network(name, strict=False):
                    return True
            except ValueError:
                pass
            continue
        if host == name or host.endswith("." + name):
            return True
    return False


def _ssl_context(settings: HttpSettings, environ: dict[str, str]) -> ssl.SSLContext:
    """``ca_bundle`` replaces the default trust; without it ``SSL_CERT_FILE``/``SSL_CERT_DIR`` do
    (what OpenSSL, curl and httpx do), else certifi's bundle."""
    cafile = settings.ca_bundle or environ.get("SSL_CERT_FILE") or None
    capath = None if settings.ca_bundle else environ.get("SSL_CERT_DIR") or None
    if cafile is None and capath is None:
        return httpx.create_ssl_context(trust_env=False)
    try:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    except (OSError, ssl.SSLError) as exc:
        what = "[http] ca_bundle" if settings.ca_bundle else "SSL_CERT_FILE/SSL_CERT_DIR"
        raise ConfigError(f"{what} {cafile or capath} cannot be loaded as PEM certificates: {exc}") from None


def make_http_client(
    http: HttpSettings | None = None,
    concurrency: int = 8,
    *,
    environ: dict[str, str] | None = None,
    network_backend: httpcore.NetworkBackend | None = None,
) -> VendorHttpClient:
    """One pooled client for vendor APIs and media: no redirect followed implicitly (each hop is
    checked by ``MediaPolicy``), bounded timeouts so a stalled vendor cannot hang a worker, and the
    ``[http]`` settings (else the standard environment variables) for trust and proxies.

    ``environ`` defaults to ``os.environ``; ``network_backend`` replaces the socket layer under the
    pinned media pool (tests watch where connections go)."""
    guard_library_loggers()
    settings = http or HttpSettings()
    env = dict(os.environ if environ is None else environ)
    env_proxies = {} if settings.proxy else _env_proxies(env)
    limits = httpx.Limits(max_connections=max(8, concurrency * 3),
                          max_keepalive_connections=max(8, concurrency * 2))
    routing = RoutingTransport(ssl_context=_ssl_context(settings, env), limits=limits, proxy=settings.proxy,
                               env_proxies=env_proxies, network_backend=network_backend)
    client = VendorHttpClient(
        transport=routing,
        timeout=httpx.Timeout(connect=settings.connect_timeout, read=settings.read_timeout,
                              write=settings.read_timeout, pool=settings.read_timeout),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
        trust_env=False,
    )
    client.routing = routing
    return client
