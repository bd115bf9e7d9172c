"""Vendor ids cannot escape the key layout (CONTRACT §3): ``../``, slashes, NUL, over-long and
unicode-tricky ids either land, percent-encoded, in their own folder under
``{provider}/{account}/{YYYY}/{MM}/{DD}/`` or are parked as ``bad_recording_id``; never elsewhere.

Checked three ways: ``sanitize_id`` / ``recording_prefix`` directly, a hypothesis property over
arbitrary text ids written through ``LocalStorage``, and the whole pipeline archiving a vendor whose
listing carries such ids (a Siro-shaped API over ``httpx.MockTransport``: the simulator mints its own
ids) into a local folder whose every file is then accounted for.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_to_bytes, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config import settings_from_mapping
from providers.simulator import make_media
from storage.keys import MAX_ID_LENGTH, metadata_key, recording_prefix, sanitize_id
from storage.local import LocalStorage
from worker.compliance.session import open_context
from worker.errors import PermanentError, StorageError
from worker.pipeline.archive import Outcome
from worker.pipeline.context import RetryPolicy
from worker.pipeline.passes import run_pass
from worker.pipeline.state import StateStore

START = datetime(2026, 2, 14, 18, 20, 12, tzinfo=UTC)
DAY_FOLDER = "siro/acme-siro/2026/02/14"

TRICKY = {
    "../../../../etc/passwd": "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "a/b/c": "a%2Fb%2Fc",
    "/abs": "%2Fabs",
    "..\\..\\windows": "..%5C..%5Cwindows",
    "x\x00y": "x%00y",
    "\u202eevil.wav": "%E2%80%AEevil.wav",  # right-to-left override
    "e\u0301": "e%CC%81",  # combining acute accent
    "\uff0fetc": "%EF%BC%8Fetc",  # full-width solidus
    "\u2215etc": "%E2%88%95etc",  # division slash
    "%2e%2e%2fetc": "%252e%252e%252fetc",  # an encoded "../" stays text: its % is encoded too
    "..%2F..": "..%252F..",
    ".hidden": ".hidden",
    "...x": "...x",
    "a b?c#d": "a%20b%3Fc%23d",
    "\ud800": "%ED%A0%80",  # a lone surrogate (JSON can carry one)
    "normal-ID_1.2": "normal-ID_1.2",
}
REFUSED = ["", ".", "..", "...", "....", "A" * (MAX_ID_LENGTH + 1), "\u00e9" * 40]


@pytest.mark.parametrize(("raw", "encoded"), sorted(TRICKY.items()))
def test_sanitize_id_percent_encodes_everything_outside_the_safe_set(raw: str, encoded: str) -> None:
    assert sanitize_id(raw) == encoded
    prefix = recording_prefix("siro", "acme-siro", START, raw)
    assert prefix == f"{DAY_FOLDER}/{encoded}/"
    assert unquote_to_bytes(encoded) == raw.encode("utf-8", "surrogatepass")  # reversible: no collisions


@pytest.mark.parametrize("raw", REFUSED)
def test_ids_that_cannot_name_a_folder_are_refused(raw: str) -> None:
    with pytest.raises(PermanentError) as caught:
        recording_prefix("siro", "acme-siro", START, raw)
    assert caught.value.reason == "bad_recording_id"


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/abs/x", "a\\b", "a\x00b", "a//b", "a/./b", "a/", "."])
def test_local_storage_refuses_keys_that_leave_their_folder(tmp_path: Path, key: str) -> None:
    root = tmp_path / "archive"
    store = LocalStorage(root, fsync=False)
    root.mkdir()
    with pytest.raises(StorageError):
        store.put_bytes(key, b"x", content_type="text/plain")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9._%-]+$")


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStorage]:
    root = tmp_path_factory.mktemp("ids") / "archive"
    root.mkdir()
    yield LocalStorage(root, fsync=False)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.text(max_size=80))
def test_any_text_id_stays_in_its_own_folder(scratch: LocalStorage, raw: str) -> None:
    try:
        prefix = recording_prefix("siro", "acme-siro", START, raw)
    except PermanentError as exc:
        assert exc.reason == "bad_recording_id"
        return
    segment = prefix.removeprefix(f"{DAY_FOLDER}/").removesuffix("/")
    assert prefix == f"{DAY_FOLDER}/{segment}/"
    assert SAFE_SEGMENT.match(segment) and segment not in (".", "..") and set(segment) != {"."}
    assert unquote_to_bytes(segment) == raw.encode("utf-8", "surrogatepass")
    key = metadata_key(prefix)
    scratch.put_bytes(key, b"{}", content_type="application/json", overwrite=True)
    written = (scratch.root / key).resolve()
    assert written.is_file()
    assert written.parent.parent == (scratch.root / DAY_FOLDER).resolve()
    assert written.parent.name == segment


# -- the pipeline with such ids -----------------------------------------------------------------------

LONE_SURROGATE = "\ud800"
ARCHIVABLE = {raw: encoded for raw, encoded in TRICKY.items() if raw != LONE_SURROGATE}
PIPELINE_IDS = [*ARCHIVABLE, "..", ".", "A" * (MAX_ID_LENGTH + 5)]
API = "https://siro.vendor.test/"
GATEWAY = "https://gateway.siro.vendor.test"


def reply(document: Any) -> httpx.Response:
    """JSON as vendors send it: ASCII with escapes, so a lone surrogate id travels as ``\\ud800``."""
    return httpx.Response(200, content=json.dumps(document).encode(), headers={"Content-Type": "application/json"})


def siro_vendor(ids: list[str]) -> httpx.MockTransport:
    """A Siro-shaped vendor listing ``ids``: its external API, its gateway signing each recording's
    audio (a URL under the API host's /media/audio/{n}.wav, an allowed host that needs no DNS here)
    and the WAVs there."""
    media = {str(n): make_media("wav", 0.5, f"id-{n}") for n in range(len(ids))}

    def record(n: int) -> dict[str, Any]:
        return {"id": ids[n], "createdAt": "2026-02-14T18:20:12.000Z", "isProcessingDone": True,
                "rootDataPurgedAt": None, "durationInMilliseconds": 500}

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode().split("?", 1)[0]
        if path == "/v1/core/recordings":
            return reply({"data": [record(n) for n in range(len(ids))], "cursor": None})
        if path.endswith("/access-token"):
            return reply({"accessTokenId": "t1", "accessToken": "oat-ids-0123456789"})
        if path.startswith("/v1/core/recordings/"):
            wanted = unquote(path.removeprefix("/v1/core/recordings/").removesuffix("/signedUrl"),
                             errors="surrogatepass")
            for n, rid in enumerate(ids):
                if rid == wanted and path.endswith("/signedUrl"):
                    return reply({"data": {"signedUrl": f"{API}media/audio/{n}.wav?X-Goog-Signature=x"}})
                if rid == wanted:
                    return reply(record(n))
            return httpx.Response(404, json={"error": "Not Found"})
        if path.startswith("/media/audio/"):
            name = path.removeprefix("/media/audio/").removesuffix(".wav")
            if name in media:
                return httpx.Response(200, content=media[name], headers={"Content-Type": "audio/wav"})
        return httpx.Response(404, json={"error": "Not Found"})

    return httpx.MockTransport(handler)


def run_with_ids(tmp_path: Path, ids: list[str]) -> Any:
    config = settings_from_mapping({
        "storage": {"url": str(tmp_path / "archive"), "work_dir": str(tmp_path / "work")},
        "accounts": [{"name": "acme-siro", "provider": "siro", "base_url": API, "token_env": "SIRO_TOKEN",
                      "media_api_url": GATEWAY, "oauth_client_id": "app1", "oauth_client_secret_env": "SIRO_SECRET",
                      "oauth_user_id": "u1", "start": "2026-02-01T00:00:00Z"}],
    }, {"SIRO_TOKEN": "tok-ids-0123456789", "SIRO_SECRET": "sec-ids-0123456789"})
    ctx = open_context(config, retry=RetryPolicy(backoff_base=0.01, backoff_max=0.02))
    ctx.http.close()
    ctx.http = httpx.Client(transport=siro_vendor(ids))
    handle = ctx.handle(config.accounts[0])  # the media host is checked by its (public) address
    handle.policy = dataclasses.replace(handle.policy, resolver=lambda _host: ["93.184.216.34"])
    try:
        return run_pass(ctx, config.accounts, concurrency=2,
                        since=datetime(2026, 2, 1, tzinfo=UTC), until=datetime(2026, 3, 1, tzinfo=UTC))
    finally:
        ctx.close()


def test_pipeline_keeps_every_tricky_id_inside_its_folder(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    summary = run_with_ids(tmp_path, PIPELINE_IDS)
    account = summary.accounts[0]
    assert account.error is None, account.error
    by_id = {r.recording_id: r for r in account.results}
    assert sorted(by_id) == sorted(PIPELINE_IDS)
    for raw, encoded in ARCHIVABLE.items():
        assert by_id[raw].outcome is Outcome.ARCHIVED, (raw, by_id[raw].message)
        folder = root / DAY_FOLDER / encoded
        document = json.loads((folder / "metadata.json").read_text())
        assert document["recording_id"] == raw
        assert {urlsplit(o["key"]).path.rsplit("/", 1)[-1] for o in document["objects"]} == {"original.wav"}
    for raw in ("..", ".", "A" * (MAX_ID_LENGTH + 5)):
        assert by_id[raw].outcome is Outcome.PARKED and by_id[raw].reason == "bad_recording_id"
    # every file written is a recording object in its own folder, or state/manifests: nothing elsewhere
    recordings = root / DAY_FOLDER
    expected_folders = {recordings / encoded for encoded in ARCHIVABLE.values()}
    for path in tmp_path.rglob("*"):
        if not path.is_file() or path.name.startswith("."):
            continue
        relative = path.relative_to(root)  # raises if anything landed outside the archive root
        if relative.parts[0] in ("_state", "_manifests", "_index", ".recarchive"):  # our own trees, inside the root
            continue
        assert path.parent in expected_folders, relative
    parked = {record.recording_id: record.reason for record in StateStore(LocalStorage(root)).parked("acme-siro")}
    assert parked == dict.fromkeys(("..", ".", "A" * (MAX_ID_LENGTH + 5)), "bad_recording_id")


def test_an_unpaired_surrogate_id_stops_the_account_and_writes_nothing(tmp_path: Path) -> None:
    """``"\\ud800"`` is valid JSON but no text: it could not be written as UTF-8 into a key, a
    metadata.json or a URL, so the page is malformed (``bad_vendor_data``), not a crash."""
    summary = run_with_ids(tmp_path, ["fine-1", LONE_SURROGATE])
    account = summary.accounts[0]
    assert account.error_reason == "bad_vendor_data"
    assert "surrogate" in (account.error or "")
    assert not list((tmp_path / "archive").glob("siro/**/metadata.json"))
