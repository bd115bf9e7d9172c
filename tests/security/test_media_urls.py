"""Media URLs are followed only to the hosts an account allows (CONTRACT §4.8).

A media URL or a redirect to another host, a private or link-local address (169.254.169.254, the
cloud metadata service), ``file://`` or ``ftp://`` is refused before any connection to it: the
recording is parked as ``unsafe_url`` and a server listening on the foreign address (127.0.0.2, a
different address from the simulator's 127.0.0.1) records no request at all.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from providers.base import MediaLink
from providers.simulator import Simulator
from tests.security._support import one_pass, outcomes, recorder, sim_settings
from worker.errors import ArchiverError, PermanentError, UnsafeURL
from worker.pipeline.fetch import MAX_REDIRECTS, Spool, fetch_into
from worker.pipeline.mediapolicy import MediaPolicy

VENDORS = ("convirza", "convoso", "envoy", "salesloft", "siro")


@pytest.mark.parametrize("vendor", VENDORS)
def test_media_url_on_a_foreign_host_is_parked_without_a_connection(sim: Simulator, tmp_path: Path,
                                                                    vendor: str) -> None:
    good, bad = sim.add(vendor, 2, seconds=1.0)
    with recorder("127.0.0.2", sim.port) as foreign:
        sim.set_fault(vendor, bad.id, "foreign_url", target_host="127.0.0.2")
        summary = one_pass(sim_settings(sim, tmp_path, (vendor,)))
    assert outcomes(summary) == {good.id: ("archived", None), bad.id: ("parked", "unsafe_url")}
    assert foreign.hits == []
    assert not list((tmp_path / "archive").rglob(f"{bad.id}/*"))


def test_salesloft_href_on_a_foreign_host_never_receives_the_token(sim: Simulator, tmp_path: Path) -> None:
    (rec,) = sim.add("salesloft", seconds=1.0)
    with recorder("127.0.0.2", sim.port) as foreign:
        sim.set_fault("salesloft", rec.id, "foreign_url", target_host="127.0.0.2", on="href")
        summary = one_pass(sim_settings(sim, tmp_path, ("salesloft",)))
    assert outcomes(summary) == {rec.id: ("parked", "unsafe_url")}
    assert foreign.hits == []


def test_redirects_to_forbidden_targets_are_refused_before_any_connection(sim: Simulator, tmp_path: Path) -> None:
    with recorder("127.0.0.2") as foreign:
        targets = {
            "other host": f"{foreign.url}/stolen.wav",
            "cloud metadata": "http://169.254.169.254/latest/meta-data/",
            "file": "file:///etc/passwd",
            "ftp": f"ftp://127.0.0.2:{foreign.port}/x.wav",
            "localhost by name": f"http://localhost:{foreign.port}/x.wav",
            "ipv6 loopback": f"http://[::1]:{foreign.port}/x.wav",
            "decimal ip": "http://2852039166/latest/meta-data/",
            "credentials": f"http://user:pw@127.0.0.1:{sim.port}/convirza/x",
            "unparseable": "javascript:alert(1)",
        }
        recordings = sim.add("convirza", len(targets) + 1, seconds=1.0)
        clean, faulted = recordings[0], dict(zip(targets, recordings[1:], strict=True))
        for name, rec in faulted.items():
            sim.set_fault("convirza", rec.id, "redirect_foreign", target=targets[name])
        summary = one_pass(sim_settings(sim, tmp_path, ("convirza",)))
    seen = outcomes(summary)
    assert seen[clean.id] == ("archived", None)
    assert {name: seen[rec.id] for name, rec in faulted.items()} == dict.fromkeys(targets, ("parked", "unsafe_url"))
    assert foreign.hits == []


# -- the policy itself ----------------------------------------------------------------------------------


def no_dns(host: str) -> list[str]:
    raise AssertionError(f"{host} should have been decided without DNS")


@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1/", "data:audio/wav;base64,UklGRg==",
    "javascript:alert(1)", "//127.0.0.1/x", "/relative/x.wav", "",
    "http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/x", "http://127.0.0.2/x",
    "http://localhost/x", "http://[::1]/x", "http://10.0.0.5/x", "http://2852039166/", "http://0x7f000001/",
    "http://user:pw@api.vendor.test/x", "http://api.vendor.test@evil.test/x", "http://evil.test#@api.vendor.test/",
    "http://api.vendor.test.evil.test/x", "http://evil.test/api.vendor.test/x", "http://api.vendor.test:bad/x",
    "http://convirza.com.evil.test/x", "http://1.2.3.4/x",
])
def test_policy_refuses(url: str) -> None:
    policy = MediaPolicy.for_account("http://api.vendor.test", None, ["*.convirza.com"], [], resolver=no_dns)
    with pytest.raises(UnsafeURL):
        policy.check(url)


@pytest.mark.parametrize(("url", "resolves_to"), [
    ("https://media.convirza.com/x.wav", ["169.254.169.254"]),
    ("https://media.convirza.com/x.wav", ["127.0.0.1"]),
    ("https://media.convirza.com/x.wav", ["10.1.2.3", "93.184.216.34"]),
    ("https://media.convirza.com/x.wav", ["fd00::1"]),
    ("https://127.0.0.1.convirza.com/x.wav", ["127.0.0.1"]),
])
def test_wildcard_hosts_resolving_to_private_addresses_are_refused(url: str, resolves_to: list[str]) -> None:
    policy = MediaPolicy.for_account("https://api.convirza.com", None, ["*.convirza.com"], [],
                                     resolver=lambda _host: resolves_to)
    with pytest.raises(UnsafeURL):
        policy.check(url)


def test_link_local_is_refused_even_when_configured() -> None:
    policy = MediaPolicy.for_account("http://api.vendor.test", None, [], ["169.254.169.254", "fe80::1"],
                                     resolver=no_dns)
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/x"):
        with pytest.raises(UnsafeURL, match="link-local"):
            policy.check(url)


def test_https_account_refuses_plain_http_media() -> None:
    policy = MediaPolicy.for_account("https://api.vendor.test", None, [], [], resolver=lambda _h: ["93.184.216.34"])
    with pytest.raises(UnsafeURL, match="plain http"):
        policy.check("http://api.vendor.test/x.wav")
    policy.check("https://api.vendor.test/x.wav")
    policy.check("HTTPS://API.VENDOR.TEST./x.wav")


def test_allowed_hosts_pass() -> None:
    policy = MediaPolicy.for_account("https://api.convirza.com", "https://files.vendor.test/base/",
                                     ["*.convirza.com"], ["cdn.example.com", "*.media.example.com"],
                                     resolver=lambda _host: ["93.184.216.34"])
    for url in ("https://api.convirza.com/a", "https://files.vendor.test/b", "https://x.convirza.com/c",
                "https://cdn.example.com/d", "https://a.media.example.com/e"):
        policy.check(url)


@pytest.mark.parametrize(("url", "hint"), [
    ("https://media.example.com/x.wav", '"media.example.com" to allowed_media_hosts (or "*.example.com"'),
    ("https://bucket.s3.eu-west-1.amazonaws.com/x", '(or "*.s3.eu-west-1.amazonaws.com"'),
    ("https://example.com/x", 'add "example.com" to allowed_media_hosts'),
    ("https://cdn.example.co.uk/x", 'add "cdn.example.co.uk" to allowed_media_hosts'),
    ("http://127.0.0.3:9/x", 'add "127.0.0.3:9" to allowed_media_hosts'),  # a port other than the default
    ("https://media.example.com:8443/x", 'add "media.example.com:8443" to allowed_media_hosts (or "*.example.com:8443"'),
])
def test_a_refusal_names_the_allowed_media_hosts_entry_that_would_allow_it(url: str, hint: str) -> None:
    policy = MediaPolicy.for_account("http://api.vendor.test", None, ["*.convirza.com"], [], resolver=no_dns)
    with pytest.raises(UnsafeURL) as info:
        policy.check(url)
    assert hint in str(info.value)
    assert "*.co.uk" not in str(info.value)
    for entry in str(info.value).split('"')[1::2]:  # each entry the message names does allow the URL
        MediaPolicy.for_account("http://api.vendor.test", None, [], [entry], resolver=lambda _h: ["93.184.216.34"]
                                ).check(url)


def test_a_wildcard_host_on_a_private_address_names_the_exact_entry() -> None:
    policy = MediaPolicy.for_account("https://api.convirza.com", None, ["*.convirza.com"], [],
                                     resolver=lambda _host: ["10.0.0.7"])
    with pytest.raises(UnsafeURL, match='add "media.convirza.com" to allowed_media_hosts'):
        policy.check("https://media.convirza.com/x.wav")
    MediaPolicy.for_account("https://api.convirza.com", None, ["*.convirza.com"], ["media.convirza.com"],
                            resolver=lambda _host: ["10.0.0.7"]).check("https://media.convirza.com/x.wav")


# -- the downloader: every hop checked, credentials kept to their origin ------------------------------


def fetch(url: str, policy: MediaPolicy, tmp_path: Path, headers: dict[str, str] | None = None) -> Spool:
    with httpx.Client(timeout=5, trust_env=False) as http, Spool(tmp_path / "spool") as spool:
        fetch_into(http, MediaLink(url=url, headers=headers or {}), spool, policy, recording_id="r1")
        return spool


def test_fetch_refuses_a_disallowed_first_hop_without_connecting(tmp_path: Path) -> None:
    with recorder("127.0.0.2") as foreign:
        policy = MediaPolicy.for_account("http://127.0.0.1:9", None, [], [], resolver=no_dns)
        with pytest.raises(UnsafeURL):
            fetch(f"{foreign.url}/x.wav", policy, tmp_path)
    assert foreign.hits == []


def test_fetch_checks_the_redirect_hop_before_following_it(tmp_path: Path) -> None:
    with recorder("127.0.0.2") as foreign, recorder("127.0.0.1") as origin:
        origin.redirect_to = f"{foreign.url}/x.wav"
        policy = MediaPolicy.for_account(origin.url, None, [], [], resolver=no_dns)
        with pytest.raises(UnsafeURL):
            fetch(f"{origin.url}/start.wav", policy, tmp_path, {"Authorization": "Bearer secret-origin-token"})
    assert len(origin.hits) == 1 and foreign.hits == []


def test_credentials_of_a_link_never_follow_a_redirect_to_another_origin(tmp_path: Path) -> None:
    with recorder("127.0.0.2") as second, recorder("127.0.0.1") as first:
        first.redirect_to = f"{second.url}/media.wav"
        policy = MediaPolicy.for_account(first.url, None, [], [f"127.0.0.2:{second.port}"], resolver=no_dns)
        fetch(f"{first.url}/start.wav", policy, tmp_path, {"Authorization": "Bearer secret-origin-token"})
    assert first.hits[0].headers.get("authorization") == "Bearer secret-origin-token"
    assert len(second.hits) == 1 and "authorization" not in second.hits[0].headers


def test_redirect_loops_are_bounded(tmp_path: Path) -> None:
    with recorder("127.0.0.1") as loop:
        loop.redirect_to = f"{loop.url}/again.wav"
        policy = MediaPolicy.for_account(loop.url, None, [], [], resolver=no_dns)
        with pytest.raises(PermanentError, match="redirects"):
            fetch(f"{loop.url}/start.wav", policy, tmp_path)
    assert len(loop.hits) == MAX_REDIRECTS + 1


@pytest.mark.parametrize("suffix", ["/a\x00b.wav", "/a\r\nX-Injected: 1", "/%zz", "/a b.wav"])
def test_hostile_url_text_raises_only_our_errors(tmp_path: Path, suffix: str) -> None:
    with recorder("127.0.0.1") as server:
        policy = MediaPolicy.for_account(server.url, None, [], [], resolver=no_dns)
        try:
            fetch(server.url + suffix, policy, tmp_path)
        except ArchiverError:
            pass
        for hit in server.hits:
            assert "x-injected" not in hit.headers
