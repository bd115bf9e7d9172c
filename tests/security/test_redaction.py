"""Redaction that keeps evidence (issue 14, item 3): ``scrub_record`` drops secrets, judged by whole
key segments and by the shape of values, at any depth, and keeps every harmless field, including the
ones a substring match used to drop (anything containing "auth", "sig" or "token")."""

from __future__ import annotations

import json
from typing import Any

import pytest

from worker.redact import is_secret_key, scrub_record

SECRET_KEYS = [
    "token", "access_token", "accessToken", "refresh_token", "oauth_token", "auth_token", "id_token", "apitoken",
    "secret", "client_secret", "clientSecret", "secretKey", "password", "passwd", "pwd", "password_hash",
    "passphrase", "auth", "Authorization", "signature", "sig", "x-amz-signature", "X-Amz-Credential",
    "credentials", "cookie", "Set-Cookie", "api_key", "apiKey", "APIKey", "apikey", "x-api-key",
    "AWSAccessKeyId", "access_key", "private_key", "session_id", "sessionKey", "bearer", "jwt",
]
HARMLESS_KEYS = [
    "assigned_user_id", "author", "author_name", "authored_at", "token_count", "token_type", "tokens_used",
    "auth_type", "accessTokenId", "token_expires_at", "signal", "signal_strength", "design", "designation",
    "keyframe", "keyframes", "key", "monkey", "tokenizer", "signed_by", "sign_off", "session_count",
    "sessionCount", "signature_url", "cookie_policy_url", "id", "recording_id", "duration", "status",
]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_keys_are_dropped_whatever_their_value(key: str) -> None:
    assert is_secret_key(key)
    for value in ("s3cr3t-value-123", 12345, ["a", "b"], {"nested": "s3cr3t"}, None):
        scrubbed = scrub_record({"keep": 1, "deep": [{"x": {key: value}}]})
        assert scrubbed == {"keep": 1, "deep": [{"x": {}}]}, (key, value)


@pytest.mark.parametrize("key", HARMLESS_KEYS)
def test_harmless_keys_survive(key: str) -> None:
    assert not is_secret_key(key)
    record = {key: "value 1", "nested": {key: 2, "list": [{key: [3]}]}}
    assert scrub_record(record) == record


@pytest.mark.parametrize(("value", "expected"), [
    ("https://user:pa55@cdn.vendor.test/a.wav", "https://cdn.vendor.test/a.wav"),
    ("https://cdn.vendor.test/a.wav?X-Amz-Signature=abc&X-Amz-Expires=60", "https://cdn.vendor.test/a.wav?***"),
    ("media/audio/1.wav?X-Goog-Signature=abc", "media/audio/1.wav?***"),
    ("see https://u:p@host.test/x and https://host.test/y?token=t0k", "see https://host.test/x and https://host.test/y?***"),
    ("Bearer abcdefgh12345678", "***"),
    ("Basic dXNlcjpwYXNzd29yZA==", "***"),
    ("sent with Bearer abcdefgh12345678abcd today", "sent with *** today"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "***"),
    ("the key AKIAIOSFODNN7EXAMPLE leaked", "the key *** leaked"),
])
def test_credential_values_are_masked_under_any_key(value: str, expected: str) -> None:
    assert scrub_record({"notes": [{"text": value}]}) == {"notes": [{"text": expected}]}


@pytest.mark.parametrize("value", [
    "0f3c2a9be84d4b6f9d2c1e7a5b3c9d8e",                                      # a hex id
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",       # a sha256
    "call_6f1c1a0e-3b7a-4c5e-9f1d-2b8e4a7c9d01",                              # an Envoy id
    "sefTfpgeHHBkxwNsDf5O",                                                   # a Siro id
    "Discussed the bearer bond; signature pending",                          # prose
    "the bearer instrument was signed",
    "https://cdn.vendor.test/a.wav",
])
def test_ids_and_text_that_only_look_random_are_kept(value: str) -> None:
    assert scrub_record({"id": value, "note": value}) == {"id": value, "note": value}


def test_a_realistic_record_keeps_its_evidence() -> None:
    record: dict[str, Any] = {
        "id": "7f3a", "author": {"id": 9, "name": "Ann"}, "assigned_user_id": 4, "authored_at": "2026-02-14",
        "token_count": 812, "signal": "good", "design": "v2", "keyframe": 12,
        "recording": {"url": "https://u:p@s3.test/r.wav?X-Amz-Signature=x", "access_token": {"value": "t"},
                      "credentials": ["a", "b"], "_href": "http://api.vendor.test/v2/recordings/7f3a"},
        "headers": {"Authorization": "Bearer zzzzzzzzzzzz", "Accept": "audio/*"},
    }
    scrubbed = scrub_record(record)
    assert scrubbed == {
        "id": "7f3a", "author": {"id": 9, "name": "Ann"}, "assigned_user_id": 4, "authored_at": "2026-02-14",
        "token_count": 812, "signal": "good", "design": "v2", "keyframe": 12,
        "recording": {"url": "https://s3.test/r.wav?***", "_href": "http://api.vendor.test/v2/recordings/7f3a"},
        "headers": {"Accept": "audio/*"},
    }
    text = json.dumps(scrubbed)
    assert "zzzz" not in text and "X-Amz-Signature" not in text and "u:p@" not in text


def test_deep_records_are_scrubbed_without_recursion() -> None:
    deep: Any = {"password": "x", "keep": 1}
    for _ in range(5000):
        deep = {"child": deep}
    scrubbed = scrub_record(deep)
    for _ in range(5000):
        scrubbed = scrubbed["child"]
    assert scrubbed == {"keep": 1}
