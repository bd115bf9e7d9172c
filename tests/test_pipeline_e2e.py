"""The spine end to end: simulator over real HTTP → pipeline → real S3 server (moto) or a local folder.

Each test states one guarantee of CONTRACT §4 and checks it from the outside: object listings,
bytes and hashes in storage, the simulator's own request log.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from config import Settings, settings_from_mapping
from storage import open_storage
from tests._e2e import listing, metadata_docs, one_pass, stored_original
from worker.pipeline.archive import Outcome


@dataclass
class Target:
    kind: str
    storage_config: dict[str, Any]
    describe: str


@pytest.fixture(params=["s3", "local"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    if request.param == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        yield Target("s3", {"url": f"s3://{bucket.name}/recordings", "endpoint_url": bucket.endpoint_url,
                            "region": "us-east-1", "work_dir": str(tmp_path / "work")}, bucket.name)
    else:
        yield Target("local", {"url": f"file://{tmp_path / 'archive'}", "work_dir": str(tmp_path / "work")},
                     str(tmp_path / "archive"))


def make_settings(sim: Any, target: Target, vendors: tuple[str, ...] = ("convirza",), **extra: Any) -> Settings:
    data: dict[str, Any] = {"storage": target.storage_config,
                            "accounts": [sim.account(v, name=f"t-{v}") for v in vendors]}
    data.update(extra)
    return settings_from_mapping(data, sim.environ())


def test_every_recording_archived_once_byte_exact_and_second_run_writes_nothing(sim: Any, target: Target) -> None:
    recs = sim.add("convirza", 4, kind="wav", seconds=2.0) + sim.add("convirza", 2, kind="mp3", seconds=3.0)
    settings = make_settings(sim, target)
    first, storage = one_pass(settings)
    acct = first.accounts[0]
    assert acct.error is None
    assert acct.counts[Outcome.ARCHIVED] == len(recs)
    docs = metadata_docs(storage)
    assert sorted(docs) == sorted(r.id for r in recs)
    for rec in recs:
        doc = docs[rec.id]
        original = doc["objects"][0]
        assert original["sha256"] == rec.sha256
        assert original["size"] == rec.size
        assert original["key"].endswith(f"/original.{rec.ext}")
        assert hashlib.sha256(stored_original(storage, doc)).hexdigest() == rec.sha256
        assert doc["schema"] == "recarchive.recording/1"
        assert doc["media"]["container"] == rec.ext
    before = listing(storage)
    second, storage = one_pass(settings)
    assert second.accounts[0].counts[Outcome.UNCHANGED] == len(recs)
    assert second.accounts[0].counts[Outcome.ARCHIVED] == 0
    assert listing(storage) == before


def test_mp3_url_with_wav_bytes_is_stored_as_wav(sim: Any, target: Target) -> None:
    rec = sim.add("convirza", 1, kind="wav", seconds=1.0)[0]
    summary, storage = one_pass(make_settings(sim, target))
    doc = metadata_docs(storage)[rec.id]
    assert doc["objects"][0]["key"].endswith("/original.wav")
    assert doc["objects"][0]["content_type"] == "audio/wav"


def test_expired_link_is_refreshed_from_the_vendor(sim: Any, target: Target) -> None:
    rec = sim.add("convirza", 1, kind="mp3", seconds=2.0)[0]
    sim.set_fault("convirza", rec.id, "expired", times=2)
    summary, storage = one_pass(make_settings(sim, target))
    assert summary.accounts[0].counts[Outcome.ARCHIVED] == 1
    assert metadata_docs(storage)[rec.id]["objects"][0]["sha256"] == rec.sha256
    # the call was re-requested in single-record mode for a fresh link
    api_paths = [r for r in sim.requests if r.kind == "api"]
    assert len(api_paths) >= 2


def test_429_waits_for_retry_after(sim: Any, target: Target) -> None:
    rec = sim.add("convirza", 1, kind="wav", seconds=1.0)[0]
    sim.set_fault("convirza", rec.id, "rate_limit", times=2, retry_after=1)
    summary, storage = one_pass(make_settings(sim, target))
    assert summary.accounts[0].counts[Outcome.ARCHIVED] == 1
    media = [r for r in sim.requests if r.kind == "media"]
    assert [r.status for r in media][:3] == [429, 429, 200]
    assert media[2].time - media[1].time >= 0.9  # Retry-After: 1 was honoured


def test_cut_body_resumes_to_exact_bytes(sim: Any, target: Target) -> None:
    rec = sim.add("convirza", 1, kind="wav", seconds=20.0)[0]
    sim.set_fault("convirza", rec.id, "cut", times=2, at=rec.size // 3)
    summary, storage = one_pass(make_settings(sim, target))
    assert summary.accounts[0].counts[Outcome.ARCHIVED] == 1
    doc = metadata_docs(storage)[rec.id]
    assert doc["objects"][0]["sha256"] == rec.sha256
    assert hashlib.sha256(stored_original(storage, doc)).hexdigest() == rec.sha256
    statuses = [r.status for r in sim.requests if r.kind == "media"]
    assert 206 in statuses  # resumed with Range, not restarted


@pytest.mark.parametrize("fault", ["html200", "json200", "empty200"])
def test_error_body_is_never_stored_and_is_parked(sim: Any, target: Target, fault: str) -> None:
    good = sim.add("convirza", 2, kind="wav", seconds=1.0)
    poisoned = sim.add("convirza", 1, kind="wav", seconds=1.0)[0]
    sim.set_fault("convirza", poisoned.id, fault)
    summary, storage = one_pass(make_settings(sim, target))
    acct = summary.accounts[0]
    assert acct.counts[Outcome.ARCHIVED] == 2
    assert acct.counts[Outcome.PARKED] == 1
    assert summary.failed
    assert not [k for k in listing(storage) if f"/{poisoned.id}/" in k]
    assert sorted(metadata_docs(storage)) == sorted(r.id for r in good)
    parked = [json.loads(storage.read_bytes(o.key)) for o in storage.list("_state/t-convirza/parked/")]
    assert [p["recording_id"] for p in parked] == [poisoned.id]
    assert parked[0]["reason"] == "not_media"


def test_poisoned_recording_does_not_block_others_and_watermark_moves_past_it(sim: Any, target: Target) -> None:
    recs = sim.add("convirza", 5, kind="wav", seconds=1.0)
    sim.set_fault("convirza", recs[0].id, "error500")
    summary, storage = one_pass(make_settings(sim, target))
    acct = summary.accounts[0]
    assert acct.counts[Outcome.ARCHIVED] == 4
    assert acct.counts[Outcome.PARKED] == 1
    assert acct.watermark is not None and acct.watermark >= max(r.started_at for r in recs)


def test_no_token_or_signed_query_anywhere(sim: Any, target: Target, capfd: pytest.CaptureFixture[str],
                                           caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    recs = sim.add("convirza", 2, kind="mp3", seconds=1.0)
    sim.set_fault("convirza", recs[0].id, "expired", times=1)
    sim.set_fault("convirza", recs[1].id, "html200")
    settings = make_settings(sim, target)
    summary, storage = one_pass(settings)
    token = settings.accounts[0].token.get_secret_value()
    blobs = [b"".join(storage.iter_bytes(o.key)) for o in storage.list("")]
    texts = [json.dumps(summary.as_dict()), caplog.text, *capfd.readouterr()]
    for blob in blobs:
        assert token.encode() not in blob
        assert b"secret=" not in blob and b"expires=" not in blob
    for text in texts:
        assert token not in text
        assert "secret=" not in text


def test_not_ready_then_ready_on_a_later_pass(sim: Any, target: Target) -> None:
    recs = sim.add("envoy", 2, kind="m4a", seconds=1.0) + sim.add("envoy", 1, kind="m4a", seconds=1.0,
                                                                  state="not_ready")
    waiting = recs[-1]
    settings = make_settings(sim, target, vendors=("envoy",))
    first, storage = one_pass(settings)
    acct = first.accounts[0]
    assert acct.counts[Outcome.ARCHIVED] == 2 and acct.counts[Outcome.NOT_READY] == 1
    assert not first.failed
    assert acct.watermark is not None and acct.watermark <= waiting.created_at
    sim.set_state("envoy", waiting.id, "ready")
    second, storage = one_pass(settings)
    assert second.accounts[0].counts[Outcome.ARCHIVED] == 1
    assert metadata_docs(storage)[waiting.id]["objects"][0]["sha256"] == waiting.sha256


def test_storage_factory_matches_target(target: Target) -> None:
    from config.settings import StorageSettings

    store = open_storage(StorageSettings(**target.storage_config))
    store.check()
    assert (target.kind == "s3") == store.enforces_retention
