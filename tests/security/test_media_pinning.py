"""Media hosts resolved once and connected to exactly (issue 14, item 2), and vendor HTTP in real
networks (item 5): a private CA, a proxy, the standard environment variables, no ``.netrc``.

The servers are real (loopback, TLS with a CA made here); what the tests control is the resolver
(``MediaPolicy``'s, injected) and, for the rebinding test, the socket layer under the pinned pool, so
that a connection to a public address is recorded and refused instead of leaving the machine.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
from pydantic import ValidationError

from config import settings_from_mapping
from config.settings import AccountSettings, HttpSettings
from providers._http import VendorClient
from providers.base import MediaLink
from tests.security._network import BODY, forward_proxy, make_ca, media_server
from worker.errors import Unavailable, UnsafeURL
from worker.pipeline.context import build_context
from worker.pipeline.fetch import Spool, fetch_into
from worker.pipeline.http import make_http_client, proxy_for
from worker.pipeline.mediapolicy import MediaPolicy

PUBLIC = "93.184.216.34"


def answers(*rounds: list[str]) -> tuple[Callable[[str], list[str]], list[str]]:
    """A resolver answering ``rounds`` in turn (the last one again after that), and its call log."""
    asked: list[str] = []

    def resolve(host: str) -> list[str]:
        asked.append(host)
        return rounds[min(len(asked), len(rounds)) - 1]

    return resolve, asked


def no_dns(host: str) -> list[str]:
    raise AssertionError(f"{host} must not be resolved by us")


def fetch(http: httpx.Client, url: str, policy: MediaPolicy, tmp_path: Path,
          headers: dict[str, str] | None = None) -> int:
    with Spool(tmp_path / "spool") as spool:
        fetch_into(http, MediaLink(url=url, headers=headers or {}), spool, policy, recording_id="r1")
        spool.finish()
        return spool.size


class Watching(httpcore.NetworkBackend):
    """The real socket layer for loopback; any other address is recorded and refused (loopback only)."""

    def __init__(self) -> None:
        self.inner = httpcore.SyncBackend()
        self.addresses: list[str] = []

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        self.addresses.append(host)
        if not host.startswith("127."):
            raise httpcore.ConnectError(f"test network: {host} is not reachable")
        return self.inner.connect_tcp(host, port, timeout=timeout, local_address=local_address,
                                      socket_options=socket_options)

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


# -- the policy -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", [socket.gaierror(socket.EAI_NONAME, "no such host"), OSError("timed out"), None])
def test_a_name_that_does_not_resolve_is_refused(failure: OSError | None) -> None:
    def resolve(_host: str) -> list[str]:
        if failure is not None:
            raise failure
        return []

    policy = MediaPolicy.for_account("https://api.vendor.test", None, ["*.vendor.test"], [], resolver=resolve)
    with pytest.raises(UnsafeURL, match="resolve"):
        policy.check("https://media.vendor.test/x.wav")


@pytest.mark.parametrize(("allowed", "url", "ok"), [
    (["cdn.example.com:8443"], "https://cdn.example.com:8443/x", True),
    (["cdn.example.com:8443"], "https://cdn.example.com/x", False),  # the entry names one port only
    (["cdn.example.com"], "https://cdn.example.com:443/x", True),    # no port: the scheme's default
    (["cdn.example.com"], "https://cdn.example.com:8443/x", False),
    (["*.example.com:8443"], "https://a.example.com:8443/x", True),
    (["*.example.com:8443"], "https://a.example.com/x", False),
    (["*.example.com"], "https://a.example.com:444/x", False),
    ([], "https://api.vendor.test:8443/x", False),                   # base_url's host, another port
    ([], "https://api.vendor.test/x", True),
])
def test_ports_are_matched(allowed: list[str], url: str, ok: bool) -> None:
    policy = MediaPolicy.for_account("https://api.vendor.test", None, [], allowed, resolver=lambda _h: [PUBLIC])
    if ok:
        assert policy.check(url).addresses == (PUBLIC,)
    else:
        with pytest.raises(UnsafeURL, match="allowed_media_hosts"):
            policy.check(url)


@pytest.mark.parametrize(("addresses", "why"), [
    (["::ffff:127.0.0.1"], "non-public"),     # IPv4-mapped loopback is loopback
    (["0.0.0.0"], "unspecified"),             # "connect to 0.0.0.0" reaches this machine
    (["224.0.0.1"], "multicast"),
    ([PUBLIC, "169.254.169.254"], "link-local"),
    ([PUBLIC, "10.0.0.8"], "non-public"),     # every address is checked, not the first one
])
def test_every_resolved_address_is_checked(addresses: list[str], why: str) -> None:
    policy = MediaPolicy.for_account("https://api.vendor.test", None, ["*.vendor.test"], [],
                                     resolver=lambda _h: addresses)
    with pytest.raises(UnsafeURL, match=why):
        policy.check("https://media.vendor.test/x.wav")


def test_private_addresses_only_for_exact_entries_or_a_private_base_url() -> None:
    private = MediaPolicy.for_account("https://api.vendor.test", None, [], ["*.corp.test", "media.corp.test"],
                                      resolver=lambda _h: ["10.0.0.8"])
    assert private.check("https://media.corp.test/x").addresses == ("10.0.0.8",)  # named exactly
    with pytest.raises(UnsafeURL, match="non-public"):
        private.check("https://other.corp.test/x")                                # only a wildcard
    on_premises = MediaPolicy.for_account("http://10.0.0.2:8080", None, [], ["*.corp.test"],
                                          resolver=lambda _h: ["10.0.0.9"])
    assert on_premises.check("https://other.corp.test/x").addresses == ("10.0.0.9",)
    with pytest.raises(UnsafeURL, match="link-local"):
        MediaPolicy.for_account("http://10.0.0.2:8080", None, [], ["media.corp.test"],
                                resolver=lambda _h: ["169.254.169.254"]).check("https://media.corp.test/x")


@pytest.mark.parametrize(("entry", "ok"), [
    ("*.com", False), ("*.example.com", True), ("*.co.uk", True), ("cdn.example.com:8443", True),
    ("cdn.example.com:0", False), ("cdn.example.com:65536", False), ("*.example.com:8443", True),
])
def test_allowed_media_hosts_patterns_are_checked_at_config_time(entry: str, ok: bool) -> None:
    account = {"name": "a", "provider": "envoy", "base_url": "https://api.tryenvoy.ai", "token_env": "T",
               "start": "2026-01-01T00:00:00Z", "allowed_media_hosts": [entry]}
    if ok:
        assert AccountSettings.model_validate(account).allowed_media_hosts == [entry]
    else:
        with pytest.raises(ValidationError, match="allowed_media_hosts"):
            AccountSettings.model_validate(account)


# -- the connection goes to the checked address -------------------------------------------------------------


def test_dns_rebinding_never_reaches_loopback(tmp_path: Path) -> None:
    """The resolver answers a public address when the host is checked and 127.0.0.1 after that: the
    connection goes to the public address (refused by this test network) and 127.0.0.1 sees nothing."""
    resolve, asked = answers([PUBLIC], ["127.0.0.1"])
    backend = Watching()
    with media_server() as server, make_http_client(HttpSettings(), environ={}, network_backend=backend) as http:
        policy = MediaPolicy.for_account("http://api.example.com", None, [], [f"*.example.com:{server.port}"],
                                         resolver=resolve)
        with pytest.raises(Unavailable, match="connection failed"):
            fetch(http, f"http://media.example.com:{server.port}/x.wav", policy, tmp_path)
    assert server.hosts == []
    assert set(backend.addresses) == {PUBLIC}
    assert asked == ["media.example.com"]  # resolved once per attempt; the connection did not ask again


def test_a_loopback_answer_at_check_time_is_refused_without_a_connection(tmp_path: Path) -> None:
    resolve, _ = answers(["127.0.0.1"])
    backend = Watching()
    with media_server() as server, make_http_client(HttpSettings(), environ={}, network_backend=backend) as http:
        policy = MediaPolicy.for_account("http://api.example.com", None, [], [f"*.example.com:{server.port}"],
                                         resolver=resolve)
        with pytest.raises(UnsafeURL, match="non-public"):
            fetch(http, f"http://media.example.com:{server.port}/x.wav", policy, tmp_path)
    assert server.hosts == [] and backend.addresses == []


def test_the_pinned_connection_keeps_the_name_for_tls_and_host(tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    with media_server(ca.leaf("media.test")) as server, \
            make_http_client(HttpSettings(ca_bundle=str(ca.bundle)), environ={}) as http:
        policy = MediaPolicy.for_account("https://api.vendor.test", None, [], [f"media.test:{server.port}"],
                                         resolver=lambda _h: ["127.0.0.1"])
        assert fetch(http, f"https://media.test:{server.port}/x.wav", policy, tmp_path) == len(BODY)
    assert server.server_names == ["media.test"]             # SNI: the name, not 127.0.0.1
    assert server.hosts == [f"media.test:{server.port}"]     # Host header: the name


def test_the_certificate_is_checked_against_the_name(tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    with media_server(ca.leaf("other.test")) as server, \
            make_http_client(HttpSettings(ca_bundle=str(ca.bundle)), environ={}) as http:
        policy = MediaPolicy.for_account("https://api.vendor.test", None, [], [f"media.test:{server.port}"],
                                         resolver=lambda _h: ["127.0.0.1"])
        with pytest.raises(Unavailable):
            fetch(http, f"https://media.test:{server.port}/x.wav", policy, tmp_path)
    assert server.hosts == []


# -- trust: [http] ca_bundle, SSL_CERT_FILE, and nothing else -----------------------------------------------


@pytest.mark.parametrize("how", ["ca_bundle", "SSL_CERT_FILE", "default"])
def test_the_ca_bundle_or_ssl_cert_file_is_trusted(tmp_path: Path, how: str) -> None:
    ca = make_ca(tmp_path)
    settings = HttpSettings(ca_bundle=str(ca.bundle)) if how == "ca_bundle" else HttpSettings()
    environ = {"SSL_CERT_FILE": str(ca.bundle)} if how == "SSL_CERT_FILE" else {}
    with media_server(ca.leaf("media.test")) as server, make_http_client(settings, environ=environ) as http:
        policy = MediaPolicy.for_account("https://api.vendor.test", None, [], [f"media.test:{server.port}"],
                                         resolver=lambda _h: ["127.0.0.1"])
        url = f"https://media.test:{server.port}/x.wav"
        if how == "default":  # certifi's roots do not know our CA
            with pytest.raises(Unavailable):
                fetch(http, url, policy, tmp_path)
            assert server.hosts == []
        else:
            assert fetch(http, url, policy, tmp_path) == len(BODY)


def test_netrc_never_adds_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine media.test login someone password netrc-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))  # httpx with trust_env would read ~/.netrc
    monkeypatch.setenv("NETRC", str(netrc))
    with media_server() as server, make_http_client(HttpSettings()) as http:
        policy = MediaPolicy.for_account("http://api.vendor.test", None, [], [f"media.test:{server.port}"],
                                         resolver=lambda _h: ["127.0.0.1"])
        fetch(http, f"http://media.test:{server.port}/x.wav", policy, tmp_path)
    assert server.hosts and all("authorization" not in headers for headers in server.headers)


# -- proxies: [http] proxy, HTTP(S)_PROXY / NO_PROXY ------------------------------------------------------


def test_the_configured_proxy_carries_media_and_resolves_the_name(tmp_path: Path) -> None:
    with media_server() as server, forward_proxy() as proxy, \
            make_http_client(HttpSettings(proxy=f"http://127.0.0.1:{proxy.port}"), environ={}) as http:
        policy = MediaPolicy.for_account("http://api.example.com", None, [], [f"media.example.com:{server.port}"],
                                         resolver=no_dns)
        assert fetch(http, f"http://media.example.com:{server.port}/x.wav", policy, tmp_path) == len(BODY)
    assert proxy.lines == [f"GET http://media.example.com:{server.port}/x.wav HTTP/1.1"]
    assert server.hosts == [f"media.example.com:{server.port}"]


def test_https_through_the_proxy_tunnels_with_the_name_and_the_ca(tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    settings = HttpSettings(ca_bundle=str(ca.bundle))
    with media_server(ca.leaf("media.test")) as server, forward_proxy() as proxy, \
            make_http_client(settings, environ={"HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}"}) as http:
        policy = MediaPolicy.for_account("https://api.vendor.test", None, [], [f"media.test:{server.port}"],
                                         resolver=no_dns)
        assert fetch(http, f"https://media.test:{server.port}/x.wav", policy, tmp_path) == len(BODY)
    assert proxy.lines == [f"CONNECT media.test:{server.port} HTTP/1.1"]
    assert server.server_names == ["media.test"]


def test_no_proxy_sends_matching_hosts_direct(tmp_path: Path) -> None:
    with media_server() as server, forward_proxy() as proxy:
        environ = {"http_proxy": f"http://127.0.0.1:{proxy.port}", "NO_PROXY": "localhost,.example.com"}
        with make_http_client(HttpSettings(), environ=environ) as http:
            policy = MediaPolicy.for_account("http://api.example.com", None, [],
                                             [f"media.example.com:{server.port}"], resolver=lambda _h: ["127.0.0.1"])
            assert proxy_for(http, "http://media.example.com/x") is None
            assert proxy_for(http, "http://elsewhere.test/x") == f"http://127.0.0.1:{proxy.port}"
            assert fetch(http, f"http://media.example.com:{server.port}/x.wav", policy, tmp_path) == len(BODY)
    assert proxy.lines == [] and server.hosts == [f"media.example.com:{server.port}"]


def test_vendor_api_calls_use_the_proxy_too(tmp_path: Path) -> None:
    with media_server() as server, forward_proxy() as proxy, \
            make_http_client(HttpSettings(proxy=f"http://127.0.0.1:{proxy.port}"), environ={}) as http:
        client = VendorClient(f"http://api.example.com:{server.port}/", http=http, sleep=lambda _s: None)
        response = client.request("GET", client.url_for("v1/calls"), media_ok=True)
    assert response.status_code == 200
    assert proxy.lines == [f"GET http://api.example.com:{server.port}/v1/calls HTTP/1.1"]


# -- credentials only to their own origin over https --------------------------------------------------------


def test_the_api_token_never_goes_to_plain_http_on_the_api_host() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        client = VendorClient("https://api.salesloft.test/", http=http, auth_headers={"Authorization": "Bearer T0K"},
                              sleep=lambda _s: None)
        assert client.auth_headers_for("http://api.salesloft.test/v2/recordings/1") == {}
        client.get_json("http://api.salesloft.test/v2/recordings/1")  # a Salesloft _href on http://
        client.get_json("https://api.salesloft.test/v2/recordings/1")
    assert "authorization" not in seen[0].headers
    assert seen[1].headers["authorization"] == "Bearer T0K"


def test_the_pipeline_client_is_built_from_the_http_settings(tmp_path: Path) -> None:
    settings = settings_from_mapping({
        "storage": {"url": str(tmp_path / "archive"), "work_dir": str(tmp_path / "work")},
        "http": {"proxy": "http://127.0.0.1:3128", "connect_timeout": 3, "read_timeout": 7},
        "accounts": [],
    }, {})
    ctx = build_context(settings)
    try:
        assert proxy_for(ctx.http, "https://media.example.com/x.wav") == "http://127.0.0.1:3128"
        assert ctx.http.timeout.connect == 3 and ctx.http.timeout.read == 7
    finally:
        ctx.close()
