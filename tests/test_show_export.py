"""``recarchive show`` and ``export`` (issue 15, item 1): a recording found by account and id alone,
and handed over with its proof. Real simulator, real local storage, the real CLI; no token variable
is set when show/export run (they are auditing commands)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from storage.local import LocalStorage
from tests._compliance import documents, invoke, make_config
from worker.cli import cli
from worker.compliance.index import index_folders, write_index
from worker.compliance.manifests import close_days


def _archive(tmp_path: Path, sim: Any, count: int = 3, **account: Any) -> tuple[Path, LocalStorage, list[Any]]:
    recs = sim.add("convirza", count, kind="wav", seconds=1.0)
    config = make_config(tmp_path, sim, {"url": f"file://{tmp_path / 'archive'}"}, transcode={"rendition": "mp3"})
    result = invoke(config, sim, "run", "--once")
    assert result.exit_code == 0, result.output
    if account:
        text = config.read_text()
        for key, value in account.items():
            text = "\n".join(f'{key} = "{value}"' if line.startswith(f"{key} =") else line
                             for line in text.splitlines()) + "\n"
        config.write_text(text)
    return config, LocalStorage(tmp_path / "archive"), recs


def _audit(config: Path, *args: str) -> Result:
    """The CLI with no token variable in the environment at all."""
    return CliRunner().invoke(cli, [args[0], "--config", str(config), *args[1:]], env={}, catch_exceptions=False)


def _rehash(folder: Path) -> dict[str, str]:
    listed = {}
    for line in (folder / "MANIFEST.sha256").read_text().splitlines():
        sha, name = line.split("  ", 1)
        listed[name] = sha
    actual = {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
              for p in folder.rglob("*") if p.is_file() and p.name != "MANIFEST.sha256"}
    assert listed == actual
    return listed


def _drop_index(storage: LocalStorage) -> None:
    """As an archive written before the id index existed."""
    for info in list(storage.list("_index/")):
        storage.delete(info.key)


def test_show_finds_a_recording_by_id_alone_then_by_the_index(tmp_path: Path, sim: Any) -> None:
    config, storage, recs = _archive(tmp_path, sim)
    meta_key, doc = documents(storage)[recs[1].id]
    assert index_folders(storage, "convirza", "c-convirza", recs[1].id) == [meta_key[: -len("metadata.json")]]
    _drop_index(storage)

    shown = _audit(config, "show", "--account", "c-convirza", "--id", recs[1].id, "--json")
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    assert document["schema"] == "recarchive.show/1" and document["archived"] is True
    assert document["found_by"] == "day folders"  # no index entry: one look per day folder
    [folder] = document["folders"]
    [revision] = folder["revisions"]
    roles = {o["role"]: o for o in revision["objects"]}
    assert set(roles) == {"original", "rendition", "metadata"}
    for entry in doc["objects"]:
        shown_obj = roles[entry["role"]]
        assert (shown_obj["key"], shown_obj["size"], shown_obj["sha256"]) == (entry["key"], entry["size"],
                                                                              entry["sha256"])
        assert shown_obj["stored_size"] == entry["size"]
    body = storage.read_bytes(meta_key)
    assert roles["metadata"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert revision["manifest"]["state"] == "pending"  # archived today: the day is not closed yet
    assert {line["key"] for line in revision["manifest"]["lines"]} == {o["key"] for o in revision["objects"]}
    assert document["problems"] == []

    write_index(storage, doc)
    assert index_folders(storage, "convirza", "c-convirza", recs[1].id) == [meta_key[: -len("metadata.json")]]
    again = json.loads(_audit(config, "show", "--account", "c-convirza", "--id", recs[1].id, "--json").stdout)
    assert again["found_by"] == "index" and again["folders"] == document["folders"]

    text = _audit(config, "show", "--account", "c-convirza", "--id", recs[1].id)
    assert text.exit_code == 0
    assert roles["original"]["key"] in text.stdout and roles["original"]["sha256"] in text.stdout


def test_show_of_an_id_never_archived_exits_1(tmp_path: Path, sim: Any) -> None:
    config, _storage, _recs = _archive(tmp_path, sim, count=1)
    result = _audit(config, "show", "--account", "c-convirza", "--id", "no-such-call", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["archived"] is False
    text = _audit(config, "show", "--account", "c-convirza", "--id", "no-such-call")
    assert text.exit_code == 1 and "not archived" in text.stdout


def test_show_falls_back_to_the_manifests_outside_the_configured_days(tmp_path: Path, sim: Any) -> None:
    later = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT00:00:00Z")
    config, storage, recs = _archive(tmp_path, sim, count=2, start=later)
    _drop_index(storage)
    result = _audit(config, "show", "--account", "c-convirza", "--id", recs[0].id, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["found_by"] == "manifests"


def test_export_writes_what_manifest_sha256_lists_and_the_chain(tmp_path: Path, sim: Any) -> None:
    config, storage, recs = _archive(tmp_path, sim)
    close_days(storage, "c-convirza", now=datetime.now(UTC) + timedelta(days=3))  # today's day is closed
    out = tmp_path / "handover"
    result = _audit(config, "export", "--account", "c-convirza", "--id", recs[0].id, "--id", recs[2].id,
                    "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["schema"] == "recarchive.export/1" and summary["ok"] is True and summary["problems"] == []
    written = _rehash(out)
    docs = documents(storage)
    for rid in (recs[0].id, recs[2].id):
        meta_key, doc = docs[rid]
        assert meta_key in written
        assert (out / meta_key).read_bytes() == storage.read_bytes(meta_key)
        for entry in doc["objects"]:
            rel = entry["key"].split("/archive/", 1)[-1] if "/archive/" in entry["key"] else entry["key"]
            assert written[rel] == entry["sha256"]
    assert recs[1].id not in "".join(written)
    manifests = [name for name in written if name.startswith("_manifests/c-convirza/") and name.endswith(".jsonl")]
    assert "_manifests/c-convirza/chain.jsonl" in manifests
    chain = [json.loads(line) for line in (out / "_manifests/c-convirza/chain.jsonl").read_text().splitlines()]
    archived_day = docs[recs[0].id][1]["archived_at"][:10]  # the manifest day is the archiving day
    assert len(chain) >= 2 and chain[0]["manifest"] == f"{archived_day}.jsonl"
    for earlier, later in zip(chain, chain[1:], strict=False):
        assert later["prev"] == earlier["manifest"] and later["prev_sha256"] == earlier["sha256"]
    day_file = f"_manifests/c-convirza/{chain[0]['manifest']}"
    assert hashlib.sha256((out / day_file).read_bytes()).hexdigest() == chain[0]["sha256"]
    assert summary["chain"]["head"] == chain[-1]["manifest"]
    export_doc = json.loads((out / "export.json").read_text())
    assert [r["recording_id"] for r in export_doc["recordings"]] == [recs[0].id, recs[2].id]
    [revision] = export_doc["recordings"][0]["revisions"]
    assert revision["manifest_state"] == "closed" and revision["manifest"].endswith(chain[0]["manifest"])
    day_lines = (out / day_file).read_text().splitlines()[1:]
    assert {json.dumps(line, sort_keys=True, separators=(",", ":")) for line in revision["manifest_lines"]} <= \
        set(day_lines)
    assert {line["key"] for line in revision["manifest_lines"]} == \
        {o["key"] for o in docs[recs[0].id][1]["objects"]} | {docs[recs[0].id][0]}


def test_export_names_an_altered_object_and_a_rewritten_manifest(tmp_path: Path, sim: Any) -> None:
    config, storage, recs = _archive(tmp_path, sim, count=2)
    close_days(storage, "c-convirza", now=datetime.now(UTC) + timedelta(days=3))
    _meta_key, doc = documents(storage)[recs[0].id]
    original = next(o for o in doc["objects"] if o["role"] == "original")
    path = tmp_path / "archive" / original["key"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    day = tmp_path / "archive" / "_manifests" / "c-convirza" / f"{doc['archived_at'][:10]}.jsonl"
    day.chmod(0o644)
    day.write_bytes(day.read_bytes() + b"\n")

    out = tmp_path / "handover"
    result = _audit(config, "export", "--account", "c-convirza", "--id", recs[0].id, "--out", str(out), "--json")
    assert result.exit_code == 1
    problems = json.loads(result.stdout)["problems"]
    altered = [p for p in problems if p["key"] == original["key"]]
    assert altered and altered[0]["problem"] == "altered"
    assert altered[0]["expected"].startswith(original["sha256"])
    assert any(p["problem"] == "manifest chain broken" for p in problems)
    _rehash(out)  # MANIFEST.sha256 lists exactly what was written, altered bytes included

    refused = _audit(config, "export", "--account", "c-convirza", "--id", recs[0].id, "--out", str(out))
    assert refused.exit_code == 2 and "not an empty folder" in refused.output


def test_export_of_an_id_never_archived_exits_1(tmp_path: Path, sim: Any) -> None:
    config, _storage, recs = _archive(tmp_path, sim, count=1)
    out = tmp_path / "handover"
    result = _audit(config, "export", "--account", "c-convirza", "--id", recs[0].id, "--id", "nope",
                    "--out", str(out), "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert [p["key"] for p in summary["problems"]] == ["nope"]
    _rehash(out)


def test_an_auditor_config_with_no_account_shows_and_exports_what_storage_holds(tmp_path: Path, sim: Any) -> None:
    _config, storage, recs = _archive(tmp_path, sim, count=2)
    auditor = tmp_path / "auditor.toml"
    auditor.write_text(f'[storage]\nurl = "file://{tmp_path / "archive"}"\n')
    shown = _audit(auditor, "show", "--account", "c-convirza", "--id", recs[0].id, "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["provider"] == "convirza"
    assert json.loads(shown.stdout)["found_by"] == "index"
    _drop_index(storage)  # no index and no configured start: the manifests find it
    again = json.loads(_audit(auditor, "show", "--account", "c-convirza", "--id", recs[1].id, "--json").stdout)
    assert again["archived"] is True and again["found_by"] == "manifests"
    out = tmp_path / "handover"
    exported = _audit(auditor, "export", "--account", "c-convirza", "--id", recs[1].id, "--out", str(out))
    assert exported.exit_code == 0, exported.output
    assert any(name.endswith("/original.wav") for name in _rehash(out))
    unknown = _audit(auditor, "show", "--account", "nobody", "--id", recs[0].id)
    assert unknown.exit_code == 2 and "no account named 'nobody'" in unknown.output


def test_a_stored_hash_that_disagrees_is_named_by_show_and_export(tmp_path: Path, sim: Any, s3_bucket: Any) -> None:
    """The ``sha256`` user metadata S3 keeps beside each object is compared too (metadata.json's own
    included): a store whose record of an object's hash was rewritten is a problem, exit 1."""
    from tests._compliance import s3_storage_table
    from tests.fixtures.s3 import make_s3_storage

    recs = sim.add("convirza", 1, kind="wav", seconds=1.0)
    config = make_config(tmp_path, sim, s3_storage_table(s3_bucket))
    assert invoke(config, sim, "run", "--once").exit_code == 0
    storage = make_s3_storage(s3_bucket, "arch")
    meta_key, doc = documents(storage)[recs[0].id]
    original = next(o for o in doc["objects"] if o["role"] == "original")
    fine = _audit(config, "show", "--account", "c-convirza", "--id", recs[0].id, "--json")
    assert fine.exit_code == 0 and json.loads(fine.stdout)["problems"] == []
    head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key=original["key"])
    s3_bucket.client.copy_object(Bucket=s3_bucket.name, Key=original["key"], MetadataDirective="REPLACE",
                                 CopySource={"Bucket": s3_bucket.name, "Key": original["key"]},
                                 Metadata={**head["Metadata"], "sha256": "0" * 64}, ContentType="audio/wav")

    shown = _audit(config, "show", "--account", "c-convirza", "--id", recs[0].id, "--json")
    assert shown.exit_code == 1
    assert json.loads(shown.stdout)["problems"] == [{"key": original["key"], "expected": original["sha256"],
                                                     "found": "0" * 64,
                                                     "problem": "sha256 user metadata differs from metadata.json"}]
    exported = _audit(config, "export", "--account", "c-convirza", "--id", recs[0].id, "--out",
                      str(tmp_path / "out"), "--json")
    assert exported.exit_code == 1
    assert [(p["key"], p["found"]) for p in json.loads(exported.stdout)["problems"]] == [(original["key"], "0" * 64)]
    assert meta_key.endswith("metadata.json")
    storage.close()


def test_show_and_export_carry_every_revision(tmp_path: Path, sim: Any) -> None:
    config, storage, recs = _archive(tmp_path, sim, count=1)
    sim.replace_media("convirza", recs[0].id)
    assert invoke(config, sim, "rearchive", "--account", "c-convirza", "--id", recs[0].id).exit_code == 0
    shown = json.loads(_audit(config, "show", "--account", "c-convirza", "--id", recs[0].id, "--json").stdout)
    [folder] = shown["folders"]
    assert [r["revision"] for r in folder["revisions"]] == [1, 2]
    second = folder["revisions"][1]
    assert second["metadata_key"].endswith(f"/{recs[0].id}/r2/metadata.json")
    assert second["supersedes"] == folder["revisions"][0]["metadata_key"]
    originals = {r["revision"]: next(o for o in r["objects"] if o["role"] == "original")
                 for r in folder["revisions"]}
    assert originals[1]["sha256"] != originals[2]["sha256"]

    out = tmp_path / "handover"
    result = _audit(config, "export", "--account", "c-convirza", "--id", recs[0].id, "--out", str(out))
    assert result.exit_code == 0, result.output
    written = _rehash(out)
    assert written[originals[1]["key"]] == originals[1]["sha256"]
    assert written[originals[2]["key"]] == originals[2]["sha256"]
