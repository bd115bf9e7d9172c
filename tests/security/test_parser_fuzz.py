"""Property-based: every provider fed arbitrary vendor JSON raises only our own error classes.

Each example builds a provider over an ``httpx.MockTransport`` and lets it list, resolve media and
re-read recordings. Whatever the vendor answers, the only exceptions allowed out are ``ArchiverError``
subclasses (``BadVendorData``, ``NoRecording``, ``UnsafeURL`` ...): a ``KeyError``/``TypeError``/
``ValueError``/``AttributeError`` (or an ``httpx`` exception) would crash a whole pass instead of
stopping one account or parking one recording.

Two kinds of input: plain arbitrary JSON values (the envelope checks), and each vendor's *valid*
answers with a few fields replaced by arbitrary values or deleted (hypothesis picks which), so that
the examples get past the envelopes into the record, time, number, path and media-link parsers.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers import get_provider
from providers._http import VendorClient
from providers.base import Window
from tests._provider_mock import make_account
from worker.errors import ArchiverError

API = "https://api.vendor.test/"
PLAUSIBLE = st.sampled_from([
    "2026-01-15T10:00:00Z", "2026-01-15T10:00:00.123Z", "2026-01-15 10:00:00", "2026-02-30T25:61:00Z",
    "1768471200", "1768471200000", "-1", "0", "", " ", "12.5", "1e400", "NaN", "true", "false", "yes",
    "complete", "completed", "processing", "failed", "video", "audio", "video/mp4", "audio/mpeg",
    "https://api.vendor.test/media/1.wav?sig=abc", "http://api.vendor.test/x", "/relative/path.wav",
    "audio/1/processed.m4a?Signature=x", "ftp://api.vendor.test/a", "//other.test/x", "file:///etc/passwd",
    "https://other.test/x.mp3", "javascript:alert(1)", "http://[::1", "http://a b/\x00", "..", "../x",
    "a/b", "\x00", "\u202e", "\ud800", "\udfff\ud800", "%2F", "x" * 300,
])
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 100, 200, 401, 404, 500, 10**11, 10**13, 10**20, 1.5]),
)
LEAVES = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=12), PLAUSIBLE)
JSON = st.recursive(
    LEAVES, lambda children: st.one_of(st.lists(children, max_size=3),
                                       st.dictionaries(st.text(max_size=6), children, max_size=4)),
    max_leaves=12,
)
DELETE = object()

# -- each vendor's valid answers (PROVIDERS.md shapes) -----------------------------------------------

T0, T1 = "2026-01-15T10:00:00Z", "2026-01-15T11:00:00Z"
CONVIRZA_CALL = {"call_id": 1001, "call_started": "2026-01-15T10:00:00.000Z", "duration": 30,
                 "recording_details": {"url": "https://api.vendor.test/media/1?secret=s&expires=9",
                                       "expires_at": 1900000000, "format": "wav"}}
SALESLOFT_CONVERSATION = {"id": "c-1", "created_at": T0, "event_start_date": T0, "duration": 30000,
                          "media_type": "audio", "recording": {"id": "r1", "_href": f"{API}v2/recordings/r1"}}
SIRO_RECORDING = {"id": "s1", "userId": "u1", "title": "Visit", "durationInMilliseconds": 30000, "createdAt": T0,
                  "updatedAt": T1, "links": {"web": {"self": "https://app.siro.ai/r/s1"}}, "rootDataPurgedAt": None,
                  "isProcessingDone": True}
TEMPLATES: dict[str, dict[str, Any]] = {
    "convirza": {
        "list": {"code": 200, "data": {"total": 1, "calls": [CONVIRZA_CALL]}},
        "item": {"code": 200, "data": {"total": 1, "calls": [CONVIRZA_CALL]}},
    },
    "convoso": {
        "list": {"success": True, "data": {"offset": "0", "limit": "100", "total": "1", "entries": [
            {"recording_id": 1, "lead_id": 270, "start_time": "2026-01-15 10:00:00", "end_time": "",
             "seconds": "30", "url": "1-all.wav"}]}},
    },
    "envoy": {
        "list": {"data": [{"id": "call_1", "status": "COMPLETED", "created_at": T0, "call_start_time": T0,
                           "call_end_time": T1, "recording_status": "AVAILABLE"}],
                 "pagination": {"page": 1, "page_size": 100, "total_count": 1, "total_pages": 1, "has_next": False,
                                "has_prev": False}},
        "item": {"call_id": "call_1", "url": "https://api.vendor.test/m/1.m4a?X-Amz-Signature=x",
                 "content_type": "audio/mp4", "expires_at": T1, "recording_status": "AVAILABLE",
                 "duration_seconds": 30, "file_size_bytes": 1000, "recording_start_time": T0},
        "call": {"id": "call_1", "status": "COMPLETED", "created_at": T0, "call_start_time": T0,
                 "recording_status": "AVAILABLE"},
    },
    "salesloft": {
        "list": {"data": [SALESLOFT_CONVERSATION], "metadata": {"paging": {"next_page": None}}},
        "item": {"data": SALESLOFT_CONVERSATION},
        "href": {"data": {"id": "r1", "url": "https://media.vendor.test/r1.mp3?Signature=x", "expires_at": T1}},
    },
    "siro": {
        "list": {"data": [SIRO_RECORDING], "cursor": None},
        "item": SIRO_RECORDING,
        "mint": {"accessTokenId": "t1", "accessToken": "oat-fuzz-1"},
        "sign": {"data": {"signedUrl": "https://storage.googleapis.com/b/s1.m4a?X-Goog-Signature=x", "expiresAt": T1}},
    },
}


def endpoint(provider: str, request: httpx.Request) -> str:
    """Which template answers ``request``."""
    path = request.url.path
    if provider == "convirza":
        return "item" if "call_id" in request.url.params else "list"
    if provider == "convoso":
        return "list"
    if provider == "envoy":
        if path.endswith("/recording"):
            return "item"
        return "list" if path.rstrip("/").endswith("/api/v1/calls") else "call"
    if provider == "salesloft":
        if "/v2/recordings/" in path:
            return "href"
        return "item" if path.rstrip("/") != "/v2/conversations" else "list"
    if path.endswith("/access-token"):
        return "mint"
    if path.endswith("/signedUrl"):
        return "sign"
    return "list" if path.rstrip("/") == "/v1/core/recordings" else "item"


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def mutate(template: Any, changes: list[tuple[int, Any]]) -> Any:
    """``template`` with each (path number, new value or DELETE) applied; vanished paths are skipped."""
    body = copy.deepcopy(template)
    paths = _paths(template)
    for number, value in changes:
        path = paths[number % len(paths)]
        parent = body
        try:
            for step in path[:-1]:
                parent = parent[step]
            if value is DELETE:
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    return body


ACCOUNT_EXTRA: dict[str, dict[str, Any]] = {
    "convoso": {"lead_ids": ["270"], "media_base_url": f"{API}media/", "timezone": "America/New_York"},
    "siro": {"media_api_url": "https://gateway.vendor.test", "oauth_client_id": "app1", "oauth_client_secret_env": "S",
             "oauth_user_id": "u1", "oauth_client_secret": "client-secret-fuzz"},
}
WINDOW = Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))


def exercise(provider_name: str, answer: Callable[[httpx.Request], httpx.Response]) -> int:
    """List, resolve and re-read with ``answer`` serving every request; return how many recordings
    the listing yielded. Only ``ArchiverError`` may escape any of the calls."""
    account = make_account(provider_name, API, **ACCOUNT_EXTRA.get(provider_name, {}))
    cls = get_provider(provider_name)
    headers, params = cls.client_auth(account)
    found: list[Any] = []
    with httpx.Client(transport=httpx.MockTransport(answer)) as http:
        client = VendorClient(account.base_url, http=http, auth_headers=headers, auth_params=params,
                              max_attempts=2, sleep=lambda _s: None, max_retry_after=1.0)
        provider = cls(account, client)

        def listing() -> None:
            for recording in provider.list_recordings(WINDOW):
                found.append(recording)
                if len(found) >= 3:
                    break

        steps: list[Callable[[], Any]] = [listing, lambda: provider.get_recording("1001")]
        listed = 0
        for index, step in enumerate(steps):
            try:
                step()
            except ArchiverError:
                pass
            if index == 0:
                listed = len(found)
        for recording in found:
            for action in (lambda r=recording: provider.resolve_media(r),
                           lambda r=recording: provider.resolve_media(r, refresh=True),
                           lambda r=recording: provider.get_recording(r.recording_id)):
                try:
                    action()
                except ArchiverError:
                    pass
    return listed


VENDORS = ["convirza", "convoso", "envoy", "salesloft", "siro"]
CHANGES = st.lists(st.tuples(st.integers(0, 10**6), st.one_of(st.just(DELETE), JSON, PLAUSIBLE)),
                   min_size=1, max_size=3)
STATUS = st.sampled_from([200] * 12 + [204, 301, 302, 307, 404, 410, 422, 429, 500])
LOCATIONS = st.one_of(
    st.sampled_from(["javascript:alert(1)", "file:x", "mailto:a@b", "http://[::1", "https://media.vendor.test/a.mp3",
                     "/v2/media/a.mp3", "", "http://other.test:99999/", "https://media.vendor.test/\x00"]),
    st.text(max_size=8),
)
MAX_CALLS = 12


@st.composite
def vendor_answers(draw: st.DrawFn, provider: str) -> Callable[[httpx.Request], httpx.Response]:
    """One mutated body (and status) per endpoint of ``provider``, served for every call to it."""
    bodies: dict[str, bytes] = {}
    statuses: dict[str, int] = {}
    locations: dict[str, bytes] = {}
    for name, template in TEMPLATES[provider].items():
        bodies[name] = json.dumps(mutate(template, draw(CHANGES))).encode()
        statuses[name] = draw(STATUS)
        locations[name] = draw(LOCATIONS).encode("utf-8")

    calls = [0]

    def answer(request: httpx.Request) -> httpx.Response:
        calls[0] += 1
        name = endpoint(provider, request)
        # a page served for ever with a huge ``total`` would page on up to MAX_PAGES: bound the example
        status = statuses.get(name, 404) if calls[0] <= MAX_CALLS else 404
        headers: dict[str, bytes] = {b"Content-Type": b"application/json"}  # type: ignore[dict-item]
        if status in (301, 302, 307):
            headers[b"Location"] = locations[name]  # type: ignore[index]
        if status == 429:
            headers[b"Retry-After"] = b"0"  # type: ignore[index]
        return httpx.Response(status, content=bodies.get(name, b"{}"), headers=headers)

    return answer


HYPOTHESIS = settings(max_examples=100, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("provider_name", VENDORS)
def test_valid_answers_with_arbitrary_fields_raise_only_our_errors(provider_name: str) -> None:
    listed: list[int] = []

    @HYPOTHESIS
    @given(answer=vendor_answers(provider_name))
    def check(answer: Callable[[httpx.Request], httpx.Response]) -> None:
        listed.append(exercise(provider_name, answer))

    check()
    # some listings must survive their mutations, or the record parsers were never reached
    assert any(listed)


@pytest.mark.parametrize("provider_name", VENDORS)
def test_the_unmodified_templates_list_and_resolve(provider_name: str) -> None:
    """The templates are valid answers: without mutations every provider lists a recording."""
    def answer(request: httpx.Request) -> httpx.Response:  # noqa: ARG001 - one answer per endpoint
        return httpx.Response(200, json=TEMPLATES[provider_name].get(endpoint(provider_name, request), {}))

    assert exercise(provider_name, answer) == 1


@pytest.mark.parametrize("provider_name", VENDORS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(body=JSON)
def test_any_json_value_raises_only_our_errors(provider_name: str, body: Any) -> None:
    """Plain arbitrary JSON (not vendor-shaped) on every call, scalars and arrays included."""
    content = json.dumps(body).encode()  # NaN/Infinity included: Python's json reads them back
    served = [0]

    def answer(_request: httpx.Request) -> httpx.Response:
        served[0] += 1
        return httpx.Response(200 if served[0] <= MAX_CALLS else 404, content=content)

    exercise(provider_name, answer)


ID_FIELDS = {"convirza": "call_id", "convoso": "recording_id", "envoy": "call_id", "salesloft": "id", "siro": "id"}
TRICKY_IDS = ["../../etc/passwd", "a/b", "..", ".", "", "\x00", "\u202eevil", "e\u0301", "\uff0f", "%2F..",
              "\ud800", "\udfff", "x" * 5000, 0, -1, 2**70, 1.5, True, None, [], {}]


def _with_id(value: Any, field: str, new_id: Any) -> Any:
    if isinstance(value, dict):
        return {k: (new_id if k == field else _with_id(v, field, new_id)) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_id(item, field, new_id) for item in value]
    return value


@pytest.mark.parametrize("provider_name", VENDORS)
@pytest.mark.parametrize("new_id", TRICKY_IDS, ids=repr)
def test_tricky_ids_raise_only_our_errors(provider_name: str, new_id: Any) -> None:
    """Every valid answer with its recording id replaced: list, resolve and re-read by that id."""
    field = ID_FIELDS[provider_name]
    bodies = {name: json.dumps(_with_id(template, field, new_id)).encode()
              for name, template in TEMPLATES[provider_name].items()}

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=bodies.get(endpoint(provider_name, request), b"{}"))

    exercise(provider_name, answer)
