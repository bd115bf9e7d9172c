"""``recarchive verify``: fixity of every archived object against its metadata.json (issue 7, item 3).

A NON-locked bucket, so the test itself can alter and delete objects directly with boto3.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tests._compliance import documents, invoke, json_out, make_config, relative, s3_storage_table
from tests.fixtures.s3 import make_s3_storage


def _archive(tmp_path: Path, sim: Any, bucket: Any, count: int = 3, **tables: Any) -> tuple[Path, Any, list[Any]]:
    recs = sim.add("convirza", count, kind="wav", seconds=2.0)
    config = make_config(tmp_path, sim, s3_storage_table(bucket), **tables)
    result = invoke(config, sim, "run", "--once")
    assert result.exit_code == 0, result.output
    return config, make_s3_storage(bucket, "arch"), recs


def test_fresh_archive_verifies_then_one_changed_byte_is_named(tmp_path: Path, sim: Any, s3_bucket: Any) -> None:
    config, storage, recs = _archive(tmp_path, sim, s3_bucket, transcode={"rendition": "mp3"})
    fresh = invoke(config, sim, "verify", "--json")
    assert fresh.exit_code == 0, fresh.output
    report = json_out(fresh)
    assert report["ok"] is True
    assert report["recordings"] == 3
    assert report["objects"] == 9  # original, rendition, metadata.json
    assert report["failures"] == [] and report["warnings"] == []

    key = documents(storage)[recs[1].id][1]["objects"][0]["key"]
    client, bucket = s3_bucket.client, s3_bucket.name
    body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0x01  # one bit of one byte, same size
    client.put_object(Bucket=bucket, Key=key, Body=bytes(body))

    altered = invoke(config, sim, "verify", "--json")
    assert altered.exit_code == 1
    failures = json_out(altered)["failures"]
    assert [f["key"] for f in failures] == [key]
    assert "SHA-256" in failures[0]["problem"]
    assert json_out(altered)["schema"] == "recarchive.verify/1"
    # the values compared, as fields for scripts: what metadata.json says, and what is stored
    stored = next(o for o in documents(storage)[recs[1].id][1]["objects"] if o["key"] == key)
    assert failures[0]["expected"] == f"sha256:{stored['sha256']}"
    assert failures[0]["found"] == f"sha256:{hashlib.sha256(bytes(body)).hexdigest()}"
    text = invoke(config, sim, "verify")
    assert text.exit_code == 1
    assert key in text.stdout and "FAILED" in text.stdout
    storage.close()


def test_deleted_object_is_named_missing(tmp_path: Path, sim: Any, s3_bucket: Any) -> None:
    config, storage, recs = _archive(tmp_path, sim, s3_bucket, transcode={"rendition": "mp3"})
    rendition = documents(storage)[recs[0].id][1]["objects"][1]
    assert rendition["role"] == "rendition"
    s3_bucket.client.delete_object(Bucket=s3_bucket.name, Key=rendition["key"])
    result = invoke(config, sim, "verify", "--json", "--account", "c-convirza")
    assert result.exit_code == 1
    assert json_out(result)["failures"] == [
        {"account": "c-convirza", "key": rendition["key"], "problem": "missing",
         "expected": f"{rendition['size']} bytes", "found": None}]
    storage.close()


def test_orphans_are_warnings_and_a_truncated_object_is_a_size_failure(tmp_path: Path, sim: Any,
                                                                        s3_bucket: Any) -> None:
    config, storage, recs = _archive(tmp_path, sim, s3_bucket, count=2)
    meta_key, doc = documents(storage)[recs[0].id]
    folder = meta_key.rsplit("/", 1)[0]
    storage.put_bytes(f"{folder}/stray.bin", b"left over", content_type="application/octet-stream")
    day = folder.rsplit("/", 1)[0]
    storage.put_bytes(f"{day}/interrupted-1/original.wav", b"RIFF....", content_type="audio/wav")
    ok = invoke(config, sim, "verify", "--json")
    assert ok.exit_code == 0, ok.output
    problems = {w["key"]: w["problem"] for w in json_out(ok)["warnings"]}
    assert set(problems) == {storage.full_key(f"{folder}/stray.bin"),
                             storage.full_key(f"{day}/interrupted-1/original.wav")}
    assert "orphan" in problems[storage.full_key(f"{folder}/stray.bin")]

    original = doc["objects"][0]["key"]
    body = s3_bucket.client.get_object(Bucket=s3_bucket.name, Key=original)["Body"].read()
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key=original, Body=body[:-10])
    bad = invoke(config, sim, "verify", "--json")
    assert bad.exit_code == 1
    assert [(f["key"], "bytes" in f["problem"]) for f in json_out(bad)["failures"]] == [(original, True)]
    storage.close()


def test_window_checks_only_its_days(tmp_path: Path, sim: Any, s3_bucket: Any) -> None:
    from datetime import UTC, datetime, timedelta

    base = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
    early = sim.add("convirza", 1, kind="wav", seconds=1.0, started_at=base + timedelta(hours=1))[0]
    late = sim.add("convirza", 1, kind="wav", seconds=1.0, started_at=base + timedelta(days=1, hours=1))[0]
    config = make_config(tmp_path, sim, s3_storage_table(s3_bucket))
    assert invoke(config, sim, "run", "--once").exit_code == 0
    storage = make_s3_storage(s3_bucket, "arch")
    s3_bucket.client.delete_object(Bucket=s3_bucket.name, Key=documents(storage)[late.id][1]["objects"][0]["key"])
    day1 = base.strftime("%Y-%m-%d")
    # a bare --until date covers its whole day (CONTRACT §1): day1 alone
    only_early = invoke(config, sim, "verify", "--since", day1, "--until", day1, "--json")
    assert only_early.exit_code == 0, only_early.output
    assert json_out(only_early)["recordings"] == 1
    everything = invoke(config, sim, "verify", "--json")
    assert everything.exit_code == 1
    assert json_out(everything)["recordings"] == 2
    assert early.id != late.id
    storage.close()


def test_deep_decodes_and_compares_the_duration(tmp_path: Path, sim: Any, s3_bucket: Any) -> None:
    config, storage, recs = _archive(tmp_path, sim, s3_bucket, count=2, transcode={"rendition": "mp3"})
    deep = invoke(config, sim, "verify", "--deep", "--json")
    assert deep.exit_code == 0, deep.output
    assert json_out(deep)["deep"] is True
    # the archived probe said 2 s; claim 60 s in metadata.json: the decode no longer agrees
    meta_key, doc = documents(storage)[recs[0].id]
    doc["media"]["duration_seconds"] = 60.0
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key=storage.full_key(meta_key),
                                Body=json.dumps(doc).encode())
    plain = invoke(config, sim, "verify", "--json")
    assert plain.exit_code == 0  # sizes and hashes of the media are unchanged
    mismatch = invoke(config, sim, "verify", "--deep", "--json")
    assert mismatch.exit_code == 1
    failures = json_out(mismatch)["failures"]
    assert {f["key"] for f in failures} == {o["key"] for o in doc["objects"]}
    assert all("archived as 60.00 s" in f["problem"] for f in failures)
    assert relative(storage, doc["objects"][0]["key"]).startswith("convirza/c-convirza/")
    storage.close()


def test_local_archive_verifies_and_a_removed_retention_is_named(tmp_path: Path, sim: Any) -> None:
    rec = sim.add("convirza", 1, kind="wav", seconds=1.0)[0]
    root = tmp_path / "archive"
    config = make_config(tmp_path, sim, {"url": f"file://{root}"},
                         retention={"mode": "COMPLIANCE", "days": 1})
    assert invoke(config, sim, "run", "--once").exit_code == 0
    assert invoke(config, sim, "verify", "--manifests").exit_code == 0
    from storage.local import LocalStorage

    storage = LocalStorage(root)
    key = documents(storage)[rec.id][1]["objects"][0]["key"]
    sidecar = root / ".recarchive" / "meta" / f"{key}.json"  # the local backend's side file
    side = json.loads(sidecar.read_text())
    del side["retention"]  # what someone with a shell on the host can do: local storage is not WORM
    sidecar.write_text(json.dumps(side))
    result = invoke(config, sim, "verify", "--json")
    assert result.exit_code == 1
    failures = json_out(result)["failures"]
    assert [f["key"] for f in failures] == [key]
    assert "no Object Lock retention" in failures[0]["problem"]
