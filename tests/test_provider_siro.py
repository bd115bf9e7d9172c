"""Siro provider against a MockTransport: cursor listing, readiness, deletion, media path choice."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from providers.base import Readiness, Window
from providers.siro import SiroProvider
from tests._provider_mock import TOKEN, assert_clean, assert_no_query, build, make_account, raw_reply, reply, utc
from worker.errors import AuthError, BadVendorData, NoRecording, NotReady, PermanentError

__all__ = ["build"]

BASE = "https://api.siro.ai/siro"
MEDIA = "https://media.siro.ai/store"
WINDOW = Window(utc(2024, 1, 15), utc(2024, 1, 16))


def rec(rid: str = "r1", created: str = "2024-01-15T10:30:00Z", **extra: Any) -> dict[str, Any]:
    return {"id": rid, "dateCreated": created, "deleted": False, "deletedPermanently": False,
            "processingStatus": "complete", "processingStage": "done",
            "rawAudioPath": f"raw/{rid}.m4a", "processedAudioPath": f"processed/{rid}.mp3",
            "durationInMilliseconds": 90000, "audioDurationInMilliseconds": 89500, "isVideo": False,
            "images": [{"linkedImage": "https://app.companycam.com/a?token=zzz"}], **extra}


def listing(items: list[Any], cursor: Any = None) -> dict[str, Any]:
    return {"data": items, "cursor": cursor, "pageSize": len(items), "limit": 100}


def account(**extra: Any) -> Any:
    values: dict[str, Any] = {"media_base_url": MEDIA}
    values.update(extra)
    return make_account("siro", BASE, **values)


def served(one: dict[str, Any]) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/siro/v1/core/recordings":
            return reply(listing([one]))
        return reply({"data": one, "cursor": None, "pageSize": 1, "limit": 1})
    return handler


def test_list_params_and_cursor(build: Any) -> None:
    pages = {None: listing([rec("a")], "c2"), "c2": listing([rec("b")], None)}
    h = build(SiroProvider, account(), lambda r: reply(pages[r.url.params.get("cursor")]))
    assert [r.recording_id for r in h.provider.list_recordings(WINDOW)] == ["a", "b"]
    assert h.paths() == ["/siro/v1/core/recordings"] * 2
    assert h.params(0) == {"limit": "100", "dateCreatedFrom": "2024-01-15T00:00:00Z"}
    assert h.params(1) == {"limit": "100", "dateCreatedFrom": "2024-01-15T00:00:00Z", "cursor": "c2"}
    assert h.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_empty_page_stops_and_window_is_filtered(build: Any) -> None:
    items = [rec("early", "2024-01-14T23:59:59Z"), rec("since", "2024-01-15T00:00:00Z"),
             rec("until", "2024-01-16T00:00:00Z"), rec("since")]
    pages = {None: listing(items, "next"), "next": listing([], "again")}
    h = build(SiroProvider, account(), lambda r: reply(pages[r.url.params.get("cursor")]))
    assert [r.recording_id for r in h.provider.list_recordings(WINDOW)] == ["since"]
    assert len(h.requests) == 2


def test_readiness_and_fields(build: Any) -> None:
    items = [rec("ok"), rec("del", deleted=True), rec("gone", deletedPermanently="true"),
             rec("busy", processingStatus="in-progress"), rec("err", processingStatus="error"),
             rec("empty", rawAudioPath=None, processedAudioPath=""),
             rec("ms", audioDurationInMilliseconds=None, durationInMilliseconds="4000"),
             rec("signed", processedAudioPath="audio/signed/processed.m4a?AWSAccessKeyId=K&Expires=9&Signature=s1",
                 rawVideoPath="video/signed/raw.mp4?Expires=9&Signature=s2")]
    h = build(SiroProvider, account(), lambda r: reply(listing(items)))
    found = {r.recording_id: r for r in h.provider.list_recordings(WINDOW)}
    assert found["ok"].readiness is Readiness.READY
    assert found["ok"].started_at == found["ok"].listed_at == datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    assert found["ok"].vendor_duration_seconds == 89.5
    assert found["del"].readiness is Readiness.DELETED and found["gone"].readiness is Readiness.DELETED
    assert found["busy"].readiness is Readiness.NOT_READY and found["err"].readiness is Readiness.NOT_READY
    assert found["empty"].readiness is Readiness.NO_RECORDING
    assert found["ms"].vendor_duration_seconds == 4.0
    for item in found.values():
        assert_no_query(item.source)
        assert "Signature" not in str(item.source) and "Expires" not in str(item.source)
    assert found["signed"].source["processedAudioPath"] == "audio/signed/processed.m4a?***"


@pytest.mark.parametrize(("extra", "url", "video"), [
    ({"processedAudioPath": "audio/r1/p.m4a?Expires=9&Signature=s"}, f"{MEDIA}/audio/r1/p.m4a?Expires=9&Signature=s",
     False),
    ({}, f"{MEDIA}/processed/r1.mp3", False),
    ({"processedAudioPath": None}, f"{MEDIA}/raw/r1.m4a", False),
    ({"isVideo": True, "rawVideoPath": "video/r1.mp4"}, f"{MEDIA}/video/r1.mp4", True),
    ({"isVideo": True, "rawVideoPath": None}, f"{MEDIA}/processed/r1.mp3", False),
    ({"isVideo": False, "rawVideoPath": "video/r1.mp4"}, f"{MEDIA}/processed/r1.mp3", False),
    ({"processedAudioPath": "https://cdn.siro.ai/p/r1.mp3?sig=1"}, "https://cdn.siro.ai/p/r1.mp3?sig=1", False),
])
def test_resolve_chooses_the_path(build: Any, extra: dict[str, Any], url: str, video: bool) -> None:
    h = build(SiroProvider, account(), served(rec(**extra)))
    item = next(iter(h.provider.list_recordings(WINDOW)))
    link = h.provider.resolve_media(item)
    assert link.url == url and link.is_video is video and item.is_video is video
    assert dict(link.headers) == {}
    assert h.paths()[-1] == "/siro/v1/core/recordings/r1"  # a fresh read just before the download


def test_resolve_rereads_and_honours_deletion_and_processing(build: Any) -> None:
    state = rec()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/siro/v1/core/recordings":
            return reply(listing([rec()]))
        return reply({"data": state})

    h = build(SiroProvider, account(), handler)
    item = next(iter(h.provider.list_recordings(WINDOW)))
    state["processingStatus"] = "in-progress"
    with pytest.raises(NotReady):
        h.provider.resolve_media(item)
    state["deleted"] = True
    with pytest.raises(NoRecording) as info:
        h.provider.resolve_media(item)
    assert "deleted at vendor" in str(info.value)
    state.update(deleted=False, processingStatus="complete", rawAudioPath=None, processedAudioPath=None)
    with pytest.raises(NoRecording):
        h.provider.resolve_media(item)


def test_relative_path_without_media_base_is_permanent_naming_the_key(build: Any) -> None:
    h = build(SiroProvider, account(media_base_url=None), served(rec()))
    item = next(iter(h.provider.list_recordings(WINDOW)))
    with pytest.raises(PermanentError) as info:
        h.provider.resolve_media(item)
    assert "media_base_url" in str(info.value) and "processedAudioPath" in str(info.value)
    absolute = build(SiroProvider, account(media_base_url=None),
                     served(rec(processedAudioPath="https://cdn.siro.ai/x.mp3")))
    assert absolute.provider.resolve_media(item).url == "https://cdn.siro.ai/x.mp3"
    odd = build(SiroProvider, account(), served(rec(processedAudioPath="gs://bucket/x.mp3")))
    with pytest.raises(PermanentError):
        odd.provider.resolve_media(item)


def test_get_recording_and_404(build: Any) -> None:
    h = build(SiroProvider, account(), lambda r: reply({"data": rec("a/b")}))
    assert h.provider.get_recording("a/b").recording_id == "a/b"
    assert h.requests[0].url.raw_path.decode() == "/siro/v1/core/recordings/a%2Fb"
    h404 = build(SiroProvider, account(), lambda r: reply({"message": "not found"}, 404))
    with pytest.raises(NoRecording):
        h404.provider.get_recording("x")


@pytest.mark.parametrize(("body", "field"), [
    (listing([{"dateCreated": "2024-01-15T10:00:00Z"}]), "id"),
    (listing([rec(created="Tuesday")]), "dateCreated"),
    (listing([rec(deleted="maybe")]), "deleted"),
    (listing([rec(isVideo="sometimes")]), "isVideo"),
    (listing([rec(audioDurationInMilliseconds=[1])]), "audioDurationInMilliseconds"),
    ({"data": {"id": "x"}}, "data"),
    (listing(["r1"]), "siro recording"),
])
def test_malformed_answers(build: Any, body: Any, field: str) -> None:
    h = build(SiroProvider, account(), lambda r: reply(body))
    with pytest.raises(BadVendorData) as info:
        list(h.provider.list_recordings(WINDOW))
    assert field in str(info.value)
    assert_clean(info.value)


def test_errors_never_show_the_token(build: Any) -> None:
    h = build(SiroProvider, account(), lambda r: reply({"message": TOKEN}, 401))
    with pytest.raises(AuthError) as info:
        list(h.provider.list_recordings(WINDOW))
    assert_clean(info.value)
    h = build(SiroProvider, account(), lambda r: raw_reply(b"<html>" + TOKEN.encode()))
    with pytest.raises(BadVendorData) as bad:
        list(h.provider.list_recordings(WINDOW))
    assert_clean(bad.value)
    assert SiroProvider.default_rate_limit == 15.0 and h.provider.media_hosts() == []
