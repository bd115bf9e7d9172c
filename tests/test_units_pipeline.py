"""Small pure pieces of the pipeline: sniffing, key layout, media host policy, redaction."""

from __future__ import annotations

import logging
import struct

import pytest

from storage.keys import recording_prefix, sanitize_id
from worker.errors import NotMedia, PermanentError, UnsafeURL
from worker.pipeline.mediapolicy import MediaPolicy
from worker.pipeline.sniff import sniff
from worker.redact import SecretFilter, mask_secrets, redact_url, register_secret, scrub_record


def wav_head() -> bytes:
    return b"RIFF" + struct.pack("<I", 36 + 100) + b"WAVEfmt " + b"\x10\x00\x00\x00" + b"\x00" * 16


MP3_FRAME = b"\xff\xfb\x90\x64" + b"\x00" * 413


@pytest.mark.parametrize(
    ("head", "ext"),
    [
        (wav_head(), "wav"),
        (MP3_FRAME * 3, "mp3"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x0a" + b"\x00" * 10 + MP3_FRAME * 2, "mp3"),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00" + b"\x00" * 20, "m4a"),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00" + b"\x00" * 20, "mp4"),
        (b"OggS\x00\x02" + b"\x00" * 30, "ogg"),
        (b"fLaC\x00\x00\x00\x22" + b"\x00" * 30, "flac"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01" + b"\x00" * 30, "webm"),
    ],
)
def test_sniff_media(head: bytes, ext: str) -> None:
    assert sniff(head).ext == ext


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "empty"),
        (b"<!DOCTYPE html><html><body>Recording URL has expired</body></html>", "HTML"),
        (b'{"error": "expired"}', "JSON"),
        (b"<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>", "XML"),
        (b"Service temporarily unavailable", "text"),
        (b"\xff\xfbnot really an mp3 but starts like one" * 100, "not media"),
    ],
)
def test_sniff_refuses_non_media(body: bytes, words: str) -> None:
    with pytest.raises(NotMedia) as info:
        sniff(body, recording_id="r1")
    assert words in str(info.value)
    assert info.value.recording_id == "r1"


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("987654", "987654"),
        ("call_0000-aa.b_c", "call_0000-aa.b_c"),
        ("../../etc/passwd", "..%2F..%2Fetc%2Fpasswd"),
        ("a/b", "a%2Fb"),
        ("nul\x00byte", "nul%00byte"),
        ("é", "%C3%A9"),
        ("a%2Fb", "a%252Fb"),
        ("\u202eevil", "%E2%80%AEevil"),
    ],
)
def test_sanitize_id(raw: str, safe: str) -> None:
    assert sanitize_id(raw) == safe
    assert "/" not in sanitize_id(raw)


@pytest.mark.parametrize("bad", ["", ".", "..", "x" * 300])
def test_sanitize_id_refuses(bad: str) -> None:
    with pytest.raises(PermanentError):
        sanitize_id(bad)


def test_recording_prefix_uses_utc_day() -> None:
    from datetime import datetime, timedelta, timezone

    moment = datetime(2026, 2, 14, 23, 30, tzinfo=timezone(timedelta(hours=-5)))  # 04:30 UTC next day
    assert recording_prefix("convirza", "acme", moment, "1/2") == "convirza/acme/2026/02/15/1%2F2/"


def policy(base: str = "https://platform-api.convirza.com", **kw: object) -> MediaPolicy:
    return MediaPolicy.for_account(base, kw.get("media_base"), kw.get("provider_hosts", ["*.convirza.com"]),
                                   kw.get("allowed", []), resolver=kw.get("resolver", lambda h: ["93.184.216.34"]))


def test_policy_allows_account_hosts() -> None:
    p = policy()
    p.check("https://platform-api.convirza.com/v3/recordings/1?secret=x")
    p.check("https://api.convirza.com/v3/recordings/1?secret=x")


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/a.wav",
        "http://api.convirza.com/a.wav",  # plain http while the API is https
        "file:///etc/passwd",
        "ftp://api.convirza.com/a.wav",
        "https://169.254.169.254/latest/meta-data/",
        "https://user:pw@api.convirza.com/a.wav",
        "https://convirza.com.evil.com/a.wav",
        "https://10.0.0.1/a.wav",
    ],
)
def test_policy_refuses(url: str) -> None:
    with pytest.raises(UnsafeURL):
        policy().check(url)


def test_policy_refuses_wildcard_host_resolving_to_private_address() -> None:
    with pytest.raises(UnsafeURL, match="non-public"):
        policy(resolver=lambda h: ["10.1.2.3"]).check("https://cdn.convirza.com/a.wav")


def test_policy_allows_explicit_loopback_base_over_http() -> None:
    p = policy("http://127.0.0.1:8080/convirza", provider_hosts=[])
    p.check("http://127.0.0.1:8080/convirza/media/1?sig=x")
    with pytest.raises(UnsafeURL):
        p.check("http://127.0.0.2:8080/convirza/media/1")


def test_redaction() -> None:
    register_secret("tok-abcdef-123456")
    assert redact_url("https://u:p@api.x.com/a.wav?secret=1&expires=2") == "https://api.x.com/a.wav?***"
    text = mask_secrets("GET https://api.convoso.com/v1/x?auth_token=tok-abcdef-123456&lead_id=1 failed")
    assert "tok-abcdef-123456" not in text and "lead_id" not in text
    assert "tok-abcdef-123456" not in mask_secrets("Bearer tok-abcdef-123456")
    record = scrub_record({"url": "https://a.b/c.mp3?secret=s&access=a", "auth_token": "tok-abcdef-123456",
                           "nested": [{"password": "pw-123456", "ok": 1}]})
    assert record == {"url": "https://a.b/c.mp3?***", "nested": [{"ok": 1}]}


def test_log_filter_masks_tokens_and_queries(caplog: pytest.LogCaptureFixture) -> None:
    register_secret("tok-in-a-log-line-9")
    logger = logging.getLogger("test.redact")
    handler_filter = SecretFilter()
    record = logger.makeRecord("x", logging.INFO, __file__, 1, "calling %s with %s",
                               ("https://h/x?sig=abc", "tok-in-a-log-line-9"), None)
    handler_filter.filter(record)
    assert "tok-in-a-log-line-9" not in record.getMessage()
    assert "sig=abc" not in record.getMessage()
