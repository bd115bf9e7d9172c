"""Tamper-evident daily manifests and their hash chain (issue 7, item 5).

Days are closed here with ``now`` moved forward, as the end of a pass would a day later.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from config.settings import RetentionSettings
from tests._compliance import documents, invoke, json_out, make_config, s3_storage_table, settings_of
from tests.fixtures.s3 import make_s3_storage
from worker.compliance.manifests import close_days
from worker.compliance.verify import verify_archive

ACCOUNT = "c-convirza"


def _archive(tmp_path: Path, sim: Any, bucket: Any, count: int = 3) -> tuple[Path, Any, list[Any]]:
    recs = sim.add("convirza", count, kind="wav", seconds=1.0)
    config = make_config(tmp_path, sim, s3_storage_table(bucket), transcode={"rendition": "mp3"})
    result = invoke(config, sim, "run", "--once")
    assert result.exit_code == 0, result.output
    return config, make_s3_storage(bucket, "arch"), recs


def _manifest(storage: Any, day: datetime) -> bytes:
    return bytes(storage.read_bytes(f"_manifests/{ACCOUNT}/{day:%Y-%m-%d}.jsonl"))


def _verify(config: Path, sim: Any, storage: Any, now: datetime) -> Any:
    settings = settings_of(config, sim)
    return verify_archive(storage, settings, list(settings.accounts), manifests=True, now=now)


def test_closed_days_form_a_hash_chain_and_verify(tmp_path: Path, sim: Any, s3_bucket: Any) -> None:
    config, storage, recs = _archive(tmp_path, sim, s3_bucket)
    pending = [i.key for i in storage.list(f"_manifests/{ACCOUNT}/pending/")]
    assert len(pending) == 3  # one entry per archived recording, written by the pipeline's hook
    assert json_out(invoke(config, sim, "verify", "--manifests", "--json"))["ok"] is True

    today = datetime.now(UTC)
    later = today + timedelta(days=3)
    written = close_days(storage, ACCOUNT, now=later)
    days = [today + timedelta(days=n) for n in range(3)]
    assert written == [f"_manifests/{ACCOUNT}/{d:%Y-%m-%d}.jsonl" for d in days]
    assert close_days(storage, ACCOUNT, now=later) == []  # idempotent: a closed day is never rewritten
    assert not list(storage.list(f"_manifests/{ACCOUNT}/pending/"))

    first = _manifest(storage, days[0]).decode().splitlines()
    header, lines = json.loads(first[0]), [json.loads(x) for x in first[1:]]
    assert header["prev_sha256"] is None and header["objects"] == 9 and header["recordings"] == 3
    assert [x["key"] for x in lines] == sorted(x["key"] for x in lines)
    docs = documents(storage)
    for rec in recs:
        meta_key, doc = docs[rec.id]
        by_key = {x["key"]: x for x in lines}
        original = by_key[doc["objects"][0]["key"]]
        assert (original["sha256"], original["size"]) == (rec.sha256, rec.size)
        assert original["archived_at"] == doc["archived_at"]
        meta_line = by_key[storage.full_key(meta_key)]
        assert meta_line["sha256"] == hashlib.sha256(storage.read_bytes(meta_key)).hexdigest()
    for previous, day in zip(days, days[1:], strict=False):
        link = json.loads(_manifest(storage, day).decode().splitlines()[0])
        assert link["prev"] == f"{previous:%Y-%m-%d}.jsonl"
        assert link["prev_sha256"] == hashlib.sha256(_manifest(storage, previous)).hexdigest()
        assert link["objects"] == 0  # nothing archived that day: an empty manifest still keeps the chain

    report = _verify(config, sim, storage, later)
    assert report.ok and report.warnings == []
    assert report.manifests[ACCOUNT]["manifests"] == 3
    assert invoke(config, sim, "verify", "--manifests").exit_code == 0
    storage.close()


def test_one_edited_manifest_line_fails_verification(tmp_path: Path, sim: Any, s3_bucket: Any) -> None:
    config, storage, _recs = _archive(tmp_path, sim, s3_bucket, count=2)
    today = datetime.now(UTC)
    close_days(storage, ACCOUNT, now=today + timedelta(days=2))
    key = storage.full_key(f"_manifests/{ACCOUNT}/{today:%Y-%m-%d}.jsonl")
    original = _manifest(storage, today)
    lines = original.decode().splitlines()
    edited = json.loads(lines[2])
    edited["archived_at"] = "2020-01-01T00:00:00Z"  # hashes untouched: only the chain can tell
    lines[2] = json.dumps(edited, sort_keys=True, separators=(",", ":"))
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key=key, Body=("\n".join(lines) + "\n").encode())

    result = invoke(config, sim, "verify", "--manifests", "--json")
    assert result.exit_code == 1
    failures = json_out(result)["failures"]
    next_key = storage.full_key(f"_manifests/{ACCOUNT}/{today + timedelta(days=1):%Y-%m-%d}.jsonl")
    assert [f["key"] for f in failures] == [next_key]
    assert f"{today:%Y-%m-%d}.jsonl" in failures[0]["problem"] and "chain broken" in failures[0]["problem"]
    assert invoke(config, sim, "verify", "--json").exit_code == 0  # without --manifests: objects unchanged

    # a line whose hash was edited is also named by the object it describes
    edited = json.loads(lines[3])
    edited["sha256"] = "0" * 64
    lines[3] = json.dumps(edited, sort_keys=True, separators=(",", ":"))
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key=key, Body=("\n".join(lines) + "\n").encode())
    failures = json_out(invoke(config, sim, "verify", "--manifests", "--json"))["failures"]
    assert {f["key"] for f in failures} == {next_key, edited["key"]}
    storage.close()


def test_a_recording_deleted_whole_is_named_by_its_manifest(tmp_path: Path, sim: Any, s3_bucket: Any) -> None:
    config, storage, recs = _archive(tmp_path, sim, s3_bucket, count=2)
    today = datetime.now(UTC)
    close_days(storage, ACCOUNT, now=today + timedelta(days=1, hours=2))
    meta_key, doc = documents(storage)[recs[0].id]
    gone = [o["key"] for o in doc["objects"]] + [storage.full_key(meta_key)]
    for key in gone:
        s3_bucket.client.delete_object(Bucket=s3_bucket.name, Key=key)
    assert invoke(config, sim, "verify", "--json").exit_code == 0  # nothing left that says it existed
    result = invoke(config, sim, "verify", "--manifests", "--json")
    assert result.exit_code == 1
    failures = json_out(result)["failures"]
    assert sorted(f["key"] for f in failures) == sorted(gone)
    assert all("listed in manifest" in f["problem"] for f in failures)
    storage.close()


def test_missing_entry_and_late_entry(tmp_path: Path, sim: Any, s3_bucket: Any) -> None:
    config, storage, recs = _archive(tmp_path, sim, s3_bucket, count=2)
    today = datetime.now(UTC)
    # a process killed between the commit and its hook leaves no entry: verify names the recording
    entry = next(iter(storage.list(f"_manifests/{ACCOUNT}/pending/")))
    lost = json.loads(storage.read_bytes(entry.key))
    storage.delete(entry.key)
    result = invoke(config, sim, "verify", "--manifests", "--json")
    assert result.exit_code == 1
    assert sorted(f["key"] for f in json_out(result)["failures"]) == sorted(x["key"] for x in lost["lines"])
    assert all(f["problem"] == "not in any manifest" for f in json_out(result)["failures"])
    # the entry arrives after its day was closed: it goes into the next day closed, never a rewrite
    close_days(storage, ACCOUNT, now=today + timedelta(days=2))
    first = _manifest(storage, today)
    storage.put_bytes(entry.key, json.dumps(lost).encode(), content_type="application/json")
    report = _verify(config, sim, storage, today + timedelta(days=2))
    assert report.ok, report.failures
    assert report.manifests[ACCOUNT]["pending_entries"] == len(lost["lines"])
    assert close_days(storage, ACCOUNT, now=today + timedelta(days=3)) == [
        f"_manifests/{ACCOUNT}/{today + timedelta(days=2):%Y-%m-%d}.jsonl"]
    assert _manifest(storage, today) == first
    third = json.loads(_manifest(storage, today + timedelta(days=2)).decode().splitlines()[0])
    assert third["recordings"] == 1
    report = _verify(config, sim, storage, today + timedelta(days=3))
    assert report.ok and report.manifests[ACCOUNT]["pending_entries"] == 0
    assert len(recs) == 2
    storage.close()


def test_concurrent_closers_build_one_chain(tmp_path: Path, sim: Any, s3_bucket: Any) -> None:
    config, storage, _recs = _archive(tmp_path, sim, s3_bucket, count=3)
    later = datetime.now(UTC) + timedelta(days=4)
    start = threading.Barrier(4)
    written: list[list[str]] = []
    errors: list[BaseException] = []

    def closer() -> None:
        try:
            start.wait()
            written.append(close_days(make_s3_storage(s3_bucket, "arch"), ACCOUNT, now=later))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=closer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    all_written = [key for keys in written for key in keys]
    assert len(all_written) == len(set(all_written)) == 4  # each day written once, by whichever closer won
    report = _verify(config, sim, storage, later)
    assert report.ok and report.warnings == [], report.failures
    assert report.manifests[ACCOUNT]["pending_entries"] == 0
    storage.close()


def test_closed_manifests_are_retained_when_retention_is_configured(tmp_path: Path, sim: Any,
                                                                     s3_lock_bucket: Any) -> None:
    sim.add("convirza", 1, kind="wav", seconds=1.0)
    config = make_config(tmp_path, sim, s3_storage_table(s3_lock_bucket),
                         retention={"mode": "GOVERNANCE", "days": 1})
    assert invoke(config, sim, "run", "--once").exit_code == 0
    storage = make_s3_storage(s3_lock_bucket, "arch")
    today = datetime.now(UTC)
    close_days(storage, ACCOUNT, now=today + timedelta(days=1, hours=2),
               retention=RetentionSettings(mode="GOVERNANCE", days=1))
    head = s3_lock_bucket.client.head_object(Bucket=s3_lock_bucket.name,
                                             Key=storage.full_key(f"_manifests/{ACCOUNT}/{today:%Y-%m-%d}.jsonl"))
    assert head["ObjectLockMode"] == "GOVERNANCE"
    storage.close()


def test_an_intent_whose_commit_never_happened_is_dropped_and_entries_list_what_is_committed(
        tmp_path: Path, sim: Any, s3_bucket: Any) -> None:
    """Entries are written before the commit (an intent); a day closes with the metadata.json as
    stored: an intent of a writer that died before its commit lists nothing, and an entry whose
    lines differ from the commit (another worker won it) lists the commit."""
    from worker.compliance.manifests import write_entry

    config, storage, recs = _archive(tmp_path, sim, s3_bucket, count=1)
    docs = documents(storage)
    meta_key, document = next(iter(docs.values()))
    # a writer that died between its intent and its commit: the folder it names holds no metadata.json
    ghost = {**document, "recording_id": "never-committed"}
    ghost_key = write_entry(storage, ACCOUNT, ghost, b"{}")
    # an entry whose lines are stale (the racing loser's): the committed metadata.json wins
    pending = [i.key for i in storage.list(f"_manifests/{ACCOUNT}/pending/") if i.key != ghost_key]
    entry = json.loads(storage.read_bytes(pending[0]))
    for line in entry["lines"]:
        line["sha256"] = "0" * 64
    storage.put_bytes(pending[0], json.dumps(entry).encode(), content_type="application/json", overwrite=True)
    later = datetime.now(UTC) + timedelta(days=2)
    close_days(storage, ACCOUNT, now=later)
    assert not list(storage.list(f"_manifests/{ACCOUNT}/pending/"))
    text = _manifest(storage, datetime.now(UTC)).decode()
    assert "never-committed" not in text and "0" * 64 not in text
    assert json.loads(text.splitlines()[0])["recordings"] == 1
    assert _verify(config, sim, storage, later).ok
