"""Which digest an upload carries, by what the store checks (``storage._s3digest``).

moto checks neither ``x-amz-checksum-sha256`` nor ``Content-MD5``; the S3 fault proxy in front of it
plays a store that checks one or both (answering ``BadDigest`` as AWS does), one that refuses the
checksum headers, and a link that flips a byte of an upload on the way.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config import settings_from_mapping
from storage.s3 import S3Storage
from tests._e2e import FAST, metadata_docs, stored_original
from tests.faults.s3proxy import S3FaultProxy
from tests.fixtures.s3 import REGION, S3Bucket, make_s3_storage
from worker.compliance.session import open_context
from worker.errors import UploadCorrupted
from worker.pipeline.archive import Outcome, archive_recording
from worker.pipeline.passes import run_pass

SIZE = 200_000


def _headers_sent(storage: S3Storage) -> dict[str, dict[str, Any]]:
    sent: dict[str, dict[str, Any]] = {}

    def capture(request: Any, **_: Any) -> None:
        sent[request.url.rsplit("/", 1)[-1]] = {
            k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}

    storage._client.meta.events.register("before-send.s3.PutObject", capture)
    return sent


def _file(tmp_path: Path, name: str = "original.wav") -> tuple[Path, str]:
    path = tmp_path / name
    path.write_bytes(hashlib.sha256(name.encode()).digest() * (SIZE // 32))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def proxied(s3_bucket: S3Bucket, request: pytest.FixtureRequest) -> Iterator[tuple[S3Storage, S3FaultProxy]]:
    options: dict[str, Any] = getattr(request, "param", {})
    with S3FaultProxy(s3_bucket.endpoint_url, **options) as proxy:
        storage = make_s3_storage(S3Bucket(s3_bucket.name, proxy.url, s3_bucket.client), max_attempts=1)
        try:
            yield storage, proxy
        finally:
            storage.close()


def test_a_store_that_checks_nothing_gets_the_sha256_checksum_and_no_md5_is_computed(
        s3_bucket: S3Bucket, tmp_path: Path) -> None:
    storage = make_s3_storage(s3_bucket)
    storage.check()
    assert storage.upload_digest == "none"  # moto: a wrong digest of either kind is accepted
    assert [o.key for o in storage.list("_state/")] == []  # the probes removed their own objects
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key="recordings/_state/_checks/checksum-sha256", Body=b"x")
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key="recordings/_state/_checks/content-md5", Body=b"x")
    storage.check()
    assert storage.upload_digest == "none"  # probes kept by retention are met (412): the same answer
    sent = _headers_sent(storage)
    path, sha = _file(tmp_path)
    storage.put_file("a/original.wav", path, content_type="audio/wav", metadata={"sha256": sha}, sha256=sha)
    assert "content-md5" not in sent["original.wav"]
    assert sent["original.wav"]["x-amz-checksum-sha256"] == base64.b64encode(bytes.fromhex(sha)).decode()
    storage.close()


@pytest.mark.parametrize("proxied", [{"verify_digests": ("sha256", "md5")}], indirect=True)
def test_a_store_that_checks_sha256_gets_the_downloaded_hash_and_refuses_other_bytes(
        proxied: tuple[S3Storage, S3FaultProxy], tmp_path: Path) -> None:
    storage, proxy = proxied
    storage.check()
    assert storage.upload_digest == "sha256"
    sent = _headers_sent(storage)
    path, sha = _file(tmp_path)
    storage.put_file("a/original.wav", path, content_type="audio/wav", metadata={"sha256": sha}, sha256=sha)
    assert "content-md5" not in sent["original.wav"]
    assert storage.head("a/original.wav") is not None
    wrong = hashlib.sha256(b"other bytes").hexdigest()  # the spool changed after it was hashed
    with pytest.raises(UploadCorrupted, match="BadDigest"):
        storage.put_file("b/original.wav", path, content_type="audio/wav", metadata={"sha256": wrong}, sha256=wrong)
    assert storage.head("b/original.wav") is None


@pytest.mark.parametrize("proxied", [{"verify_digests": ("md5",), "refuse_checksums": True}], indirect=True)
def test_a_store_that_checks_only_content_md5_gets_it_and_no_checksum_header(
        proxied: tuple[S3Storage, S3FaultProxy], tmp_path: Path) -> None:
    storage, proxy = proxied
    storage.check()
    assert storage.upload_digest == "md5"
    sent = _headers_sent(storage)
    path, sha = _file(tmp_path)
    storage.put_file("a/original.wav", path, content_type="audio/wav", metadata={"sha256": sha}, sha256=sha)
    assert not any(name.startswith("x-amz-checksum-") for name in sent["original.wav"])
    assert sent["original.wav"]["content-md5"] == base64.b64encode(
        hashlib.md5(path.read_bytes(), usedforsecurity=False).digest()).decode()
    with pytest.raises(UploadCorrupted):
        storage.put_file("b/original.wav", path, content_type="audio/wav", metadata={"sha256": sha},
                         content_md5=base64.b64encode(b"\0" * 16).decode())
    assert storage.head("b/original.wav") is None


@pytest.mark.parametrize("proxied", [{"refuse_checksums": True}], indirect=True)
def test_a_store_that_refuses_checksum_headers_and_checks_nothing_still_gets_content_md5(
        proxied: tuple[S3Storage, S3FaultProxy], tmp_path: Path) -> None:
    storage, _ = proxied
    storage.check()
    assert storage.upload_digest == "md5"  # the one form every store accepts
    path, sha = _file(tmp_path)
    storage.put_file("a/original.wav", path, content_type="audio/wav", metadata={"sha256": sha}, sha256=sha)
    assert storage.head("a/original.wav") is not None


@pytest.mark.parametrize("checks", [("sha256",), ("md5",)])
def test_bytes_corrupted_on_the_way_are_never_stored_and_a_rearchive_stores_them_exact(
        sim: Any, s3_bucket: S3Bucket, tmp_path: Path, checks: tuple[str, ...]) -> None:
    """A byte flipped between the spool and the store: the store refuses the upload, the recording
    is parked as ``upload_corrupted`` with nothing of it stored, the other one is archived, and a
    re-archive stores the exact bytes."""
    recs = sim.add("convirza", 2, kind="wav", seconds=20.0)
    with S3FaultProxy(s3_bucket.endpoint_url, verify_digests=checks, refuse_checksums=checks == ("md5",),
                      corrupt_puts=1) as proxy:
        settings = settings_from_mapping({
            "storage": {"url": f"s3://{s3_bucket.name}/recordings", "endpoint_url": proxy.url, "region": REGION,
                        "work_dir": str(tmp_path / "work")},
            "accounts": [sim.account("convirza", name="t-convirza")]}, sim.environ())
        storage = make_s3_storage(S3Bucket(s3_bucket.name, proxy.url, s3_bucket.client), max_attempts=1)
        storage.check()
        assert storage.upload_digest == checks[0]
        ctx = open_context(settings, storage=storage, retry=FAST)
        summary = run_pass(ctx, settings.accounts, concurrency=1)
        assert proxy.corrupt_puts == 0  # the one corruption happened
        counts = summary.accounts[0].counts
        assert (counts[Outcome.ARCHIVED], counts[Outcome.PARKED]) == (1, 1)
        parked = [json.loads(storage.read_bytes(i.key)) for i in storage.list("_state/t-convirza/parked/")]
        assert [p["reason"] for p in parked] == ["upload_corrupted"]
        corrupted = parked[0]["recording_id"]
        assert not [o.key for o in storage.list("convirza/") if f"/{corrupted}/" in o.key]
        account = settings.accounts[0]
        recording = ctx.handle(account).provider.get_recording(corrupted)
        assert archive_recording(ctx, account, recording, force=True).outcome is Outcome.ARCHIVED
        ctx.http.close()
        docs = metadata_docs(storage)
        assert sorted(docs) == sorted(r.id for r in recs)
        for rec in recs:
            assert hashlib.sha256(stored_original(storage, docs[rec.id])).hexdigest() == rec.sha256
