"""Siro provider against a MockTransport: the public pages' shapes, the two credentials and their
origins, the minted OAuth token's life (renewal, one re-mint on 401, never shown), readiness."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from providers._siro_token import RENEW_MARGIN, TOKEN_LIFETIME
from providers.base import Readiness, Window
from providers.siro import DEFAULT_GATEWAY, SiroProvider
from tests._provider_mock import TOKEN, assert_clean, assert_no_query, build, make_account, raw_reply, reply, utc
from worker.errors import AuthError, BadVendorData, Deleted, NoRecording, NotReady, PermanentError
from worker.redact import mask_secrets

__all__ = ["build"]

BASE = "https://functions.siro.ai/api-externalApi"
GATEWAY = "https://api.siro.ai"
SECRET = "client-SECRET-4c1d9e77aa"
APP = "app-7f3"
USER = "uid-admin-1"
WINDOW = Window(utc(2024, 1, 15), utc(2024, 1, 16))
LIST = "/api-externalApi/v1/core/recordings"
MINT = f"/api-externalApi/v1/core/oauth/apps/{APP}/access-token"
SIGNED = "https://storage.googleapis.com/siro-prod/r1.m4a?X-Goog-Expires=900&X-Goog-Signature=abc"

#: "Get recordings" (docs.siro.ai/api-references/get-recordings): the response example, verbatim
PAGE_EXAMPLE: dict[str, Any] = {
    "data": [{
        "id": "<string>", "organizationId": "<string>", "userId": "<string>", "title": "<string>",
        "durationInMilliseconds": 123, "latitude": 123, "longitude": 123, "createdAt": "<string>",
        "updatedAt": "<string>", "links": {"web": {"self": "<string>"}}, "rootDataPurgedAt": "<string>",
        "isProcessingDone": True, "isEntityExtractionDone": True, "isSummaryDone": True,
    }],
    "cursor": "<string>",
}
#: "Create a new OAuth access token for a given OAuth app": the response example, verbatim
MINT_EXAMPLE = {"accessTokenId": "<string>", "accessToken": "<string>"}


def item(rid: str = "r1", created: str = "2024-01-15T10:30:00.000Z", **extra: Any) -> dict[str, Any]:
    """A list item with the example's keys, filled with plausible values."""
    values: dict[str, Any] = {
        "id": rid, "organizationId": "org1", "userId": "u9", "title": "Visit at 12 Elm St",
        "durationInMilliseconds": 90500, "latitude": 39.7, "longitude": -104.9, "createdAt": created,
        "updatedAt": "2024-01-15T11:00:00.000Z", "links": {"web": {"self": f"https://app.siro.ai/r/{rid}"}},
        "rootDataPurgedAt": None, "isProcessingDone": True, "isEntityExtractionDone": True, "isSummaryDone": False,
    }
    values.update(extra)
    return values


def listing(items: list[Any], cursor: Any = None) -> dict[str, Any]:
    return {"data": items, "cursor": cursor}


def account(**extra: Any) -> Any:
    values: dict[str, Any] = {"media_api_url": GATEWAY, "oauth_client_id": APP,
                              "oauth_client_secret_env": "ACME_SIRO_SECRET", "oauth_user_id": USER,
                              "oauth_client_secret": SecretStr(SECRET)}
    values.update(extra)
    return make_account("siro", BASE, **values)


class Vendor:
    """Siro's two APIs behind one MockTransport; ``sign`` decides each signedUrl answer."""

    def __init__(self, items: list[Any] | None = None, sign: Callable[[int, str], httpx.Response] | None = None,
                 one: dict[str, Any] | None = None) -> None:
        self.items = items if items is not None else [item()]
        self.sign = sign or (lambda _n, _token: reply({"data": {"signedUrl": SIGNED,
                                                               "expiresAt": "2024-01-15T12:15:00Z"}}))
        self.one = one if one is not None else item()
        self.minted: list[str] = []
        self.signed = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host, path = request.url.host, request.url.path
        if host == "functions.siro.ai" and path == LIST:
            return reply(listing(self.items))
        if host == "functions.siro.ai" and path == MINT and request.method == "POST":
            self.minted.append(f"oat-{len(self.minted) + 1}-SECRETTOKEN")
            return reply({"accessTokenId": f"id{len(self.minted)}", "accessToken": self.minted[-1]})
        if host == "functions.siro.ai" and path.startswith(f"{LIST}/"):
            return reply(self.one)
        if host == "api.siro.ai" and path.endswith("/signedUrl") and request.method == "POST":
            self.signed += 1
            return self.sign(self.signed, request.headers.get("x-siro-auth-token", ""))
        return reply({"message": "not found"}, 404)


def ready(h: Any) -> Any:
    return next(r for r in h.provider.list_recordings(WINDOW) if r.readiness is Readiness.READY)


# -- the public pages' examples --------------------------------------------------------------------------

def test_the_get_recordings_example_parses(build: Any) -> None:
    pages = {None: PAGE_EXAMPLE, "<string>": listing([])}
    h = build(SiroProvider, account(), lambda r: reply(pages[r.url.params.get("cursor")]))
    [found] = h.provider.list_recordings(Window(datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC)))
    # the placeholder "<string>" is no time: that one recording is parked, the listing goes on
    assert found.recording_id == "<string>" and found.readiness is Readiness.INVALID
    assert "createdAt" in (found.problem or "")
    assert len(h.requests) == 2 and h.params(1)["cursor"] == "<string>"
    filled = json.loads(json.dumps(PAGE_EXAMPLE).replace('"<string>"', '"2024-01-15T10:30:00Z"'))
    filled["cursor"] = None
    h = build(SiroProvider, account(), lambda r: reply(filled))
    [purged] = h.provider.list_recordings(WINDOW)
    assert purged.readiness is Readiness.DELETED and purged.vendor_duration_seconds == 0.123
    assert purged.started_at == purged.listed_at == utc(2024, 1, 15, 10, 30)


def test_the_access_token_example_is_used(build: Any) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == MINT:
            return reply(MINT_EXAMPLE)
        if request.url.path == LIST:
            return reply(listing([item()]))
        seen.append(request.headers["x-siro-auth-token"])
        return reply({"data": {"signedUrl": SIGNED}})

    h = build(SiroProvider, account(), handler)
    assert h.provider.resolve_media(ready(h)).url == SIGNED
    assert seen == ["<string>"]


# -- listing --------------------------------------------------------------------------------------------

def test_list_params_cursor_and_org_token(build: Any) -> None:
    pages = {None: listing([item("a")], "c2"), "c2": listing([item("b")], None)}
    h = build(SiroProvider, account(), lambda r: reply(pages[r.url.params.get("cursor")]))
    assert [r.recording_id for r in h.provider.list_recordings(WINDOW)] == ["a", "b"]
    assert h.paths() == [LIST] * 2 and {r.url.host for r in h.requests} == {"functions.siro.ai"}
    assert h.params(0) == {"pageSize": "100", "updatedAt:gte": "2024-01-15T00:00:00Z"}
    assert h.params(1) == {"pageSize": "100", "updatedAt:gte": "2024-01-15T00:00:00Z", "cursor": "c2"}
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in h.requests)
    assert all("x-siro-auth-token" not in r.headers for r in h.requests)


def test_empty_page_stops_and_the_window_is_ours(build: Any) -> None:
    items = [item("early", "2024-01-14T23:59:59Z"), item("since", "2024-01-15T00:00:00Z"),
             item("until", "2024-01-16T00:00:00Z"), item("since")]
    pages = {None: listing(items, "next"), "next": listing([], "again")}
    h = build(SiroProvider, account(), lambda r: reply(pages[r.url.params.get("cursor")]))
    assert [r.recording_id for r in h.provider.list_recordings(WINDOW)] == ["since"]
    assert len(h.requests) == 2


def test_readiness(build: Any) -> None:
    old = "2024-01-15T01:00:00Z"
    items = [item("ok"), item("busy", isProcessingDone=False), item("purged", rootDataPurgedAt="2024-02-01T00:00:00Z"),
             item("odd", isProcessingDone="queued"), item("blank", isProcessingDone=None),
             item("gone", deleted=True), item("gone2", deletedPermanently="true"),
             # the detailed record's fields, where the list's are absent
             {"id": "d-ok", "dateCreated": old, "processingStatus": "complete"},
             {"id": "d-busy", "dateCreated": old, "processingStatus": "in-progress"},
             {"id": "d-err", "dateCreated": old, "processingStatus": "error"},
             {"id": "d-new", "dateCreated": old, "processingStatus": "transcoding"}]
    h = build(SiroProvider, account(), lambda r: reply(listing(items)))
    found = {r.recording_id: r for r in h.provider.list_recordings(WINDOW)}
    assert found["ok"].readiness is Readiness.READY and found["ok"].vendor_duration_seconds == 90.5
    assert found["ok"].started_at == found["ok"].listed_at == datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    assert found["ok"].unknown_status is None and not found["ok"].is_video
    assert found["busy"].readiness is Readiness.NOT_READY and found["busy"].unknown_status is None
    for rid in ("purged", "gone", "gone2"):
        assert found[rid].readiness is Readiness.DELETED
    assert (found["odd"].readiness, found["odd"].unknown_status) == (Readiness.NOT_READY, "isProcessingDone=queued")
    assert found["blank"].readiness is Readiness.NOT_READY and found["blank"].unknown_status is None  # null: not yet
    assert found["d-ok"].readiness is Readiness.READY and found["d-busy"].readiness is Readiness.NOT_READY
    assert found["d-err"].readiness is Readiness.NO_RECORDING  # older than no_recording_after (24 h)
    assert (found["d-new"].readiness, found["d-new"].unknown_status) == (Readiness.NOT_READY,
                                                                         "processingStatus=transcoding")
    for rec in found.values():
        assert_no_query(rec.source)


def test_processing_error_is_final_only_when_old(build: Any) -> None:
    recent = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    h = build(SiroProvider, account(), lambda r: reply(listing([{"id": "e", "createdAt": recent,
                                                                   "processingStatus": "error"}])))
    [rec] = h.provider.list_recordings(Window(utc(2024, 1, 1), datetime.now(UTC)))
    assert rec.readiness is Readiness.NOT_READY


def test_one_bad_item_is_invalid_and_the_listing_goes_on(build: Any) -> None:
    items = [item("bad-time", created="Tuesday"), item("bad-len", durationInMilliseconds=[1]),
             item("bad-flag", deleted="maybe"), item("fine")]
    h = build(SiroProvider, account(), lambda r: reply(listing(items)))
    found = {r.recording_id: r for r in h.provider.list_recordings(WINDOW)}
    assert found["fine"].readiness is Readiness.READY
    for rid, field in (("bad-time", "createdAt"), ("bad-len", "durationInMilliseconds"), ("bad-flag", "deleted")):
        assert found[rid].readiness is Readiness.INVALID and field in (found[rid].problem or "")
    # an INVALID record is listed inside the window (its own time when readable): the watermark passes it
    assert found["bad-time"].listed_at == WINDOW.since
    assert found["bad-len"].listed_at == utc(2024, 1, 15, 10, 30)


@pytest.mark.parametrize(("body", "field"), [
    (listing([{"createdAt": "2024-01-15T10:00:00Z"}]), "id"),
    (listing(["r1"]), "siro recording"),
    ({"items": []}, "data"),
    ({"data": {"id": "x"}}, "data"),
    ([item()], "siro recordings response"),
])
def test_an_unusable_page_stops_the_account(build: Any, body: Any, field: str) -> None:
    h = build(SiroProvider, account(), lambda r: reply(body))
    with pytest.raises(BadVendorData) as info:
        list(h.provider.list_recordings(WINDOW))
    assert field in str(info.value)
    assert_clean(info.value)


# -- media: the OAuth token and the gateway --------------------------------------------------------------

def test_media_mints_a_token_and_asks_the_gateway(build: Any) -> None:
    vendor = Vendor()
    h = build(SiroProvider, account(), vendor)
    rec = ready(h)
    link = h.provider.resolve_media(rec)
    assert link.url == SIGNED and link.redacted and not link.is_video and dict(link.headers) == {}
    assert link.expires_at == utc(2024, 1, 15, 12, 15)
    mint, sign = h.requests[1], h.requests[2]
    assert (mint.method, mint.url.host, mint.url.path) == ("POST", "functions.siro.ai", MINT)
    assert mint.headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(mint.content) == {"clientSecret": SECRET, "userId": USER, "scope": "read"}
    assert (sign.method, str(sign.url)) == ("POST", f"{GATEWAY}/v1/core/recordings/r1/signedUrl")
    assert sign.content == b"" and sign.headers["x-siro-auth-token"] == vendor.minted[0]
    assert "Authorization" not in sign.headers  # the organisation token never leaves its origin
    h.provider.resolve_media(rec, refresh=True)
    assert vendor.minted == ["oat-1-SECRETTOKEN"] and vendor.signed == 2  # one token, reused
    assert h.client.calls == len(h.requests) == 4  # the gateway's calls count for the account


def test_the_gateway_defaults_to_api_siro_ai(build: Any) -> None:
    h = build(SiroProvider, account(media_api_url=None), Vendor())
    assert h.provider.gateway.base_url == DEFAULT_GATEWAY + "/"
    assert h.provider.media_hosts() == ["storage.googleapis.com"]


def test_the_token_is_renewed_before_it_expires(build: Any) -> None:
    vendor = Vendor()
    h = build(SiroProvider, account(), vendor)
    now = [5000.0]
    h.provider.tokens.clock = lambda: now[0]
    rec = ready(h)
    h.provider.resolve_media(rec)
    now[0] += TOKEN_LIFETIME - RENEW_MARGIN - 1
    h.provider.resolve_media(rec)
    assert len(vendor.minted) == 1
    now[0] += 1  # 15.5 h after minting: renewed before the documented 16 h
    h.provider.resolve_media(rec)
    assert len(vendor.minted) == 2 and h.provider.tokens.minted == 2


def test_threads_share_one_token(build: Any) -> None:
    vendor = Vendor()
    h = build(SiroProvider, account(), vendor)
    rec = ready(h)
    start = threading.Barrier(8)
    links: list[str] = []

    def download() -> None:
        start.wait()
        links.append(h.provider.resolve_media(rec).url)

    workers = [threading.Thread(target=download) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert links == [SIGNED] * 8 and vendor.signed == 8
    assert len(vendor.minted) == 1  # the others waited for the first mint and reused its token


def test_a_401_mints_once_more_and_retries_once(build: Any) -> None:
    def sign(_n: int, token: str) -> httpx.Response:
        if token == "oat-1-SECRETTOKEN":  # revoked (or expired early) at the vendor
            return reply({"error": "Unauthorized"}, 401)
        return reply({"data": {"signedUrl": SIGNED}})

    vendor = Vendor(sign=sign)
    h = build(SiroProvider, account(), vendor)
    assert h.provider.resolve_media(ready(h)).url == SIGNED
    assert len(vendor.minted) == 2 and vendor.signed == 2
    always = Vendor(sign=lambda _n, _t: reply({"error": "Unauthorized"}, 401))
    h = build(SiroProvider, account(), always)
    with pytest.raises(AuthError) as info:
        h.provider.resolve_media(ready(h))
    assert len(always.minted) == 2 and always.signed == 2  # never a loop
    assert USER in str(info.value)
    for token in always.minted:
        assert token not in str(info.value) + repr(info.value)


def test_the_token_never_shows(build: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    answers = iter([reply({"m": "x"}, 500), reply({"message": "oat-1-SECRETTOKEN"}, 403)])
    vendor = Vendor(sign=lambda _n, _t: next(answers))
    h = build(SiroProvider, account(), vendor)
    rec = ready(h)
    with pytest.raises(PermanentError) as info:
        h.provider.resolve_media(rec)
    assert USER in str(info.value) and "403" in str(info.value)
    token = vendor.minted[0]
    assert mask_secrets(f"x {token} y") == "x *** y"  # registered: masked wherever it might slip
    texts = [str(info.value), repr(info.value), caplog.text, repr(h.provider.tokens), repr(h.provider),
             repr(rec), json.dumps(dict(rec.source))]
    for text in texts:
        assert token not in text and SECRET not in text and TOKEN not in text


def test_a_refused_mint_stops_the_account_without_the_secret(build: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == MINT:
            return reply({"message": f"bad secret {SECRET}"}, 401)
        return reply(listing([item()]))

    h = build(SiroProvider, account(), handler)
    with pytest.raises(AuthError) as info:
        h.provider.resolve_media(ready(h))
    text = str(info.value) + repr(info.value)
    assert "oauth_client_secret_env" in text and APP in text and SECRET not in text and TOKEN not in text
    missing = build(SiroProvider, account(), lambda r: reply({"accessTokenId": "x"} if r.url.path == MINT
                                                             else listing([item()])))
    with pytest.raises(AuthError, match="accessToken"):
        missing.provider.resolve_media(ready(missing))
    # a token no header can carry (found by the parser fuzz: U+202E) is the vendor's bad answer, named
    unusable = build(SiroProvider, account(), lambda r: reply({"accessTokenId": "x", "accessToken": "\u202eab c"}
                                                              if r.url.path == MINT else listing([item()])))
    with pytest.raises(AuthError, match="non-ASCII"):
        unusable.provider.resolve_media(ready(unusable))


@pytest.mark.parametrize(("one", "error", "words"), [
    (item(rootDataPurgedAt="2024-02-01T00:00:00Z"), Deleted, "purged"),
    (item(isProcessingDone=False), NotReady, "processing"),
    (item(), NoRecording, "no redacted audio"),
    (item(created=(datetime.now(UTC) - timedelta(hours=2)).isoformat()), NotReady, "yet"),
])
def test_a_404_from_the_gateway_asks_the_external_api_why(build: Any, one: dict[str, Any], error: type[Exception],
                                                           words: str) -> None:
    vendor = Vendor(sign=lambda _n, _t: reply({"message": "not found"}, 404), one=one)
    h = build(SiroProvider, account(), vendor)
    with pytest.raises(error) as info:
        h.provider.resolve_media(ready(h))
    assert words in str(info.value)
    assert h.requests[-1].url.path == f"{LIST}/r1" and h.requests[-1].url.host == "functions.siro.ai"


@pytest.mark.parametrize("body", [
    {"data": {"url": SIGNED}}, {"signedUrl": SIGNED}, {"data": SIGNED}, {"data": {"downloadUrl": SIGNED}},
])
def test_the_signed_url_is_read_tolerantly(build: Any, body: Any) -> None:
    h = build(SiroProvider, account(), Vendor(sign=lambda _n, _t: reply(body)))
    assert h.provider.resolve_media(ready(h)).url == SIGNED


@pytest.mark.parametrize("answer", [
    reply({"data": {}}), reply({"data": {"signedUrl": "gs://bucket/r1.m4a"}}), reply([SIGNED]),
    reply({"data": {"signedUrl": "https://[::1/r1.m4a"}}),  # urlsplit refuses it: parked, no traceback
    reply({"message": "bad id"}, 400),
])
def test_a_bad_signed_url_answer_parks_only_that_recording(build: Any, answer: httpx.Response) -> None:
    h = build(SiroProvider, account(), Vendor(sign=lambda _n, _t: answer))
    with pytest.raises(PermanentError) as info:
        h.provider.resolve_media(ready(h))
    assert not isinstance(info.value, AuthError | BadVendorData)


# -- one recording ---------------------------------------------------------------------------------------

def test_get_recording_bare_or_wrapped_and_404(build: Any) -> None:
    h = build(SiroProvider, account(), lambda r: reply(item("a/b")))
    assert h.provider.get_recording("a/b").recording_id == "a/b"
    assert h.requests[0].url.raw_path.decode() == f"{LIST}/a%2Fb"
    assert h.requests[0].url.host == "functions.siro.ai"
    wrapped = build(SiroProvider, account(), lambda r: reply({"data": item("w")}))
    assert wrapped.provider.get_recording("w").readiness is Readiness.READY
    h404 = build(SiroProvider, account(), lambda r: reply({"message": "not found"}, 404))
    with pytest.raises(NoRecording):
        h404.provider.get_recording("x")
    empty = build(SiroProvider, account(), lambda r: reply({"data": None}))
    with pytest.raises(BadVendorData):
        empty.provider.get_recording("x")


def test_errors_never_show_the_org_token(build: Any) -> None:
    h = build(SiroProvider, account(), lambda r: reply({"message": TOKEN}, 401))
    with pytest.raises(AuthError) as info:
        list(h.provider.list_recordings(WINDOW))
    assert_clean(info.value)
    h = build(SiroProvider, account(), lambda r: raw_reply(b"<html>" + TOKEN.encode()))
    with pytest.raises(BadVendorData) as bad:
        list(h.provider.list_recordings(WINDOW))
    assert_clean(bad.value)
    assert SiroProvider.default_rate_limit == 15.0
