"""Retention, legal hold, SSE and storage class on every archived object (issue 7, items 1 and 2).

Against a real S3 server (moto in server mode) with an Object Lock bucket, through the real CLI.
"""

from __future__ import annotations

import hashlib
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from storage.base import Retention
from storage.local import LocalStorage
from tests._compliance import documents, invoke, json_out, make_config, relative, s3_storage_table, settings_of
from tests.fixtures.s3 import make_s3_storage
from worker.compliance.session import open_context
from worker.errors import StorageError
from worker.pipeline.context import RetryPolicy
from worker.pipeline.passes import run_pass

RETENTION = {"mode": "COMPLIANCE", "days": 3, "legal_hold": True}


def _all_objects(storage: Any, doc: dict[str, Any], meta_key: str) -> list[str]:
    """Full keys of every object of a recording: original, rendition, metadata.json."""
    return [o["key"] for o in doc["objects"]] + [storage.full_key(meta_key)]


def test_every_object_is_locked_held_encrypted_and_classed(tmp_path: Path, sim: Any, s3_lock_bucket: Any) -> None:
    recs = sim.add("convirza", 2, kind="wav", seconds=2.0)
    config = make_config(tmp_path, sim, s3_storage_table(s3_lock_bucket, sse="AES256", storage_class="STANDARD_IA"),
                         retention=RETENTION, transcode={"rendition": "mp3"})
    result = invoke(config, sim, "run", "--once", "--json")
    assert result.exit_code == 0, result.output
    storage = make_s3_storage(s3_lock_bucket, "arch")
    docs = documents(storage)
    assert sorted(docs) == sorted(r.id for r in recs)
    client = s3_lock_bucket.client
    before = datetime.now(UTC)
    for meta_key, doc in docs.values():
        keys = _all_objects(storage, doc, meta_key)
        assert [o["role"] for o in doc["objects"]] == ["original", "rendition"]
        assert doc["retention"]["mode"] == "COMPLIANCE"
        for key in keys:
            head = client.head_object(Bucket=s3_lock_bucket.name, Key=key)
            assert head["ObjectLockMode"] == "COMPLIANCE", key
            assert head["ObjectLockRetainUntilDate"] > before + timedelta(days=2, hours=23), key
            assert head["ObjectLockLegalHoldStatus"] == "ON", key
            assert head["ServerSideEncryption"] == "AES256", key
            assert head["StorageClass"] == "STANDARD_IA", key
    # the state and manifest objects go through the same writer: encrypted and classed too
    state = client.head_object(Bucket=s3_lock_bucket.name, Key="arch/_state/c-convirza/last_pass.json")
    assert state["ServerSideEncryption"] == "AES256"
    assert state["StorageClass"] == "STANDARD_IA"
    storage.close()


def test_locked_object_cannot_be_deleted_or_silently_overwritten(tmp_path: Path, sim: Any,
                                                                  s3_lock_bucket: Any) -> None:
    rec = sim.add("convirza", 1, kind="wav", seconds=2.0)[0]
    config = make_config(tmp_path, sim, s3_storage_table(s3_lock_bucket), retention=RETENTION)
    assert invoke(config, sim, "run", "--once").exit_code == 0
    storage = make_s3_storage(s3_lock_bucket, "arch")
    meta_key, doc = documents(storage)[rec.id]
    key = doc["objects"][0]["key"]
    client, bucket = s3_lock_bucket.client, s3_lock_bucket.name
    version = client.head_object(Bucket=bucket, Key=key)["VersionId"]

    with pytest.raises(ClientError) as refused:
        client.delete_object(Bucket=bucket, Key=key, VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError):
        client.delete_object(Bucket=bucket, Key=key, VersionId=version, BypassGovernanceRetention=True)

    # a plain PUT over the key only adds a version: the archived version is still there, byte for byte
    client.put_object(Bucket=bucket, Key=key, Body=b"tampered")
    original = client.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()
    assert hashlib.sha256(original).hexdigest() == rec.sha256 == doc["objects"][0]["sha256"]
    versions = client.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]
    assert len(versions) == 2
    # and verify names the overwritten key (the current version is no longer the archived bytes)
    check = invoke(config, sim, "verify", "--json")
    assert check.exit_code == 1
    failures = json_out(check)["failures"]
    assert {f["key"] for f in failures} == {key}
    problems = " | ".join(f["problem"] for f in failures)
    assert "altered" in problems and "no Object Lock retention" in problems  # the new version is not locked
    storage.close()


def test_hold_off_lifts_only_the_hold_and_on_puts_it_back(tmp_path: Path, sim: Any, s3_lock_bucket: Any) -> None:
    recs = sim.add("convirza", 3, kind="wav", seconds=1.0)
    config = make_config(tmp_path, sim, s3_storage_table(s3_lock_bucket), retention=RETENTION,
                         transcode={"rendition": "mp3"})
    assert invoke(config, sim, "run", "--once").exit_code == 0
    storage = make_s3_storage(s3_lock_bucket, "arch")
    docs = documents(storage)
    client, bucket = s3_lock_bucket.client, s3_lock_bucket.name
    target, other = recs[0].id, recs[1].id

    lifted = invoke(config, sim, "hold", "--account", "c-convirza", "--id", target, "--off", "--json")
    assert lifted.exit_code == 0, lifted.output
    summary = json_out(lifted)
    target_keys = _all_objects(storage, docs[target][1], docs[target][0])
    assert summary["legal_hold"] == "off"
    assert sorted(summary["recordings"][0]["objects"]) == sorted(target_keys)
    for key in target_keys:
        head = client.head_object(Bucket=bucket, Key=key)
        assert head["ObjectLockLegalHoldStatus"] == "OFF", key
        assert head["ObjectLockMode"] == "COMPLIANCE", key  # retention stays
    for key in _all_objects(storage, docs[other][1], docs[other][0]):
        assert client.head_object(Bucket=bucket, Key=key)["ObjectLockLegalHoldStatus"] == "ON"  # untouched

    put = invoke(config, sim, "hold", "--account", "c-convirza", "--id", target, "--on")
    assert put.exit_code == 0, put.output
    assert all(client.head_object(Bucket=bucket, Key=k)["ObjectLockLegalHoldStatus"] == "ON" for k in target_keys)

    unknown = invoke(config, sim, "hold", "--account", "c-convirza", "--id", other, "--id", "no-such-call",
                     "--off", "--json")
    assert unknown.exit_code == 1
    assert json_out(unknown)["not_found"] == ["no-such-call"]
    storage.close()


def test_hold_by_window_covers_revisions_and_nothing_else(tmp_path: Path, sim: Any, s3_lock_bucket: Any) -> None:
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    inside = sim.add("convirza", 2, kind="wav", seconds=1.0, started_at=day + timedelta(hours=3))
    outside = sim.add("convirza", 1, kind="wav", seconds=1.0, started_at=day + timedelta(hours=9))[0]
    config = make_config(tmp_path, sim, s3_storage_table(s3_lock_bucket),
                         retention={"mode": "GOVERNANCE", "days": 1})
    assert invoke(config, sim, "run", "--once").exit_code == 0
    sim.replace_media("convirza", inside[0].id)
    assert invoke(config, sim, "rearchive", "--account", "c-convirza", "--id", inside[0].id).exit_code == 0
    storage = make_s3_storage(s3_lock_bucket, "arch")
    folder = relative(storage, documents(storage)[inside[0].id][1]["objects"][0]["key"]).rsplit("/", 1)[0]
    # an orphan left by an interrupted attempt must not be held
    storage.put_bytes(f"{folder}/r9/original.wav", b"orphan", content_type="audio/wav")

    since = (day + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    until = (day + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%SZ")
    held = invoke(config, sim, "hold", "--account", "c-convirza", "--since", since, "--until", until, "--on", "--json")
    assert held.exit_code == 0, held.output
    summary = json_out(held)
    assert sorted(r["recording_id"] for r in summary["recordings"]) == sorted(r.id for r in inside)
    revised = next(r for r in summary["recordings"] if r["recording_id"] == inside[0].id)
    assert len(revised["objects"]) == 4  # original + metadata.json, and the same for revision r2
    assert any("/r2/" in key for key in revised["objects"])
    client, bucket = s3_lock_bucket.client, s3_lock_bucket.name
    for key in revised["objects"]:
        assert client.head_object(Bucket=bucket, Key=key)["ObjectLockLegalHoldStatus"] == "ON"
    orphan = client.head_object(Bucket=bucket, Key=storage.full_key(f"{folder}/r9/original.wav"))
    assert orphan.get("ObjectLockLegalHoldStatus") != "ON"
    out_meta = documents(storage)[outside.id][1]["objects"][0]["key"]
    assert client.head_object(Bucket=bucket, Key=out_meta).get("ObjectLockLegalHoldStatus") != "ON"
    storage.close()


def test_retention_on_a_bucket_without_object_lock_is_exit_3(tmp_path: Path, sim: Any, s3_bucket: Any) -> None:
    sim.add("convirza", 1, kind="wav", seconds=1.0)
    config = make_config(tmp_path, sim, s3_storage_table(s3_bucket), retention=RETENTION)
    result = invoke(config, sim, "run", "--once")
    assert result.exit_code == 3
    assert "Object Lock" in result.stderr
    assert not list(s3_bucket.client.list_objects_v2(Bucket=s3_bucket.name).get("Contents", []))
    # a legal hold needs Object Lock too, with or without [retention]
    plain = make_config(tmp_path, sim, s3_storage_table(s3_bucket))
    assert invoke(plain, sim, "hold", "--account", "c-convirza", "--id", "1", "--on").exit_code == 3


def test_retention_applied_after_a_multipart_upload(tmp_path: Path, sim: Any, s3_lock_bucket: Any) -> None:
    # 8 kHz 16-bit mono WAV: 340 s is about 5.4 MB, more than one 5 MiB part
    rec = sim.add("convirza", 1, kind="wav", seconds=340.0)[0]
    config = make_config(tmp_path, sim, s3_storage_table(s3_lock_bucket), retention=RETENTION)
    settings = settings_of(config, sim)
    storage = make_s3_storage(s3_lock_bucket, "arch", part_size=5 * 1024 * 1024, single_put_max=5 * 1024 * 1024)
    ctx = open_context(settings, storage=storage, retry=RetryPolicy(backoff_base=0.01, backoff_max=0.05))
    try:
        summary = run_pass(ctx, list(settings.accounts), concurrency=1)
    finally:
        ctx.close()
    assert summary.accounts[0].error is None and not summary.failed
    storage = make_s3_storage(s3_lock_bucket, "arch")
    meta_key, doc = documents(storage)[rec.id]
    head = s3_lock_bucket.client.head_object(Bucket=s3_lock_bucket.name, Key=doc["objects"][0]["key"])
    assert head["ContentLength"] == rec.size > 5 * 1024 * 1024
    assert head["ETag"].strip('"').endswith("-2")  # a two-part upload
    assert head["ObjectLockMode"] == "COMPLIANCE" and head["ObjectLockLegalHoldStatus"] == "ON"
    info = storage.head(relative(storage, doc["objects"][0]["key"]))
    assert info is not None and info.retention is not None and info.legal_hold is True
    storage.close()


def test_local_storage_records_retention_and_makes_files_read_only(tmp_path: Path, sim: Any) -> None:
    rec = sim.add("convirza", 1, kind="wav", seconds=1.0)[0]
    root = tmp_path / "archive"
    config = make_config(tmp_path, sim, {"url": f"file://{root}"}, retention=RETENTION,
                         transcode={"rendition": "mp3"})
    assert invoke(config, sim, "run", "--once").exit_code == 0
    storage = LocalStorage(root)
    meta_key, doc = documents(storage)[rec.id]
    for key in [o["key"] for o in doc["objects"]] + [meta_key]:
        info = storage.head(key)
        assert info is not None and info.retention is not None, key
        assert info.retention.mode == "COMPLIANCE" and info.legal_hold is True
        mode = (root / key).stat().st_mode
        assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), key
    with pytest.raises(StorageError):
        storage.delete(meta_key)
    with pytest.raises(StorageError):
        storage.put_bytes(meta_key, b"{}", content_type="application/json", overwrite=True)
    # a weaker, shorter retention request changes nothing
    kept = storage.head(meta_key).retention  # type: ignore[union-attr]
    storage.set_retention(meta_key, Retention("GOVERNANCE", datetime.now(UTC) + timedelta(days=1)))
    assert storage.head(meta_key).retention == kept  # type: ignore[union-attr]
    assert invoke(config, sim, "hold", "--account", "c-convirza", "--id", rec.id, "--off").exit_code == 0
    assert storage.head(meta_key).legal_hold is False  # type: ignore[union-attr]
    assert storage.head(meta_key).retention is not None  # type: ignore[union-attr]


def test_a_commit_whose_retention_step_failed_is_locked_on_the_next_pass(sim, s3_lock_bucket, tmp_path) -> None:
    """A crash between metadata.json and retention leaves an unlocked commit; the next pass locks it."""
    from tests._compliance import invoke, make_config, s3_storage_table

    rec = sim.add("convirza", 1, kind="wav", seconds=1.0)[0]
    unlocked = make_config(tmp_path, sim, s3_storage_table(s3_lock_bucket))
    assert invoke(unlocked, sim, "run", "--once").exit_code == 0
    client = s3_lock_bucket.client
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_lock_bucket.name)["Contents"]
            if f"/{rec.id}/" in o["Key"] and "/_index/" not in o["Key"]]  # the recording's objects
    assert keys and all("ObjectLockMode" not in client.head_object(Bucket=s3_lock_bucket.name, Key=k) for k in keys)
    locked = make_config(tmp_path, sim, s3_storage_table(s3_lock_bucket),
                         retention={"mode": "GOVERNANCE", "days": 1})
    since = (rec.started_at.replace(microsecond=0)).strftime("%Y-%m-%dT%H:%M:%SZ")
    unlocked_verify = invoke(locked, sim, "verify")
    assert unlocked_verify.exit_code == 1 and "no Object Lock retention" in unlocked_verify.output
    assert invoke(locked, sim, "run", "--once", "--since", since).exit_code == 0
    for key in keys:
        assert client.head_object(Bucket=s3_lock_bucket.name, Key=key)["ObjectLockMode"] == "GOVERNANCE"
    assert invoke(locked, sim, "verify").exit_code == 0
