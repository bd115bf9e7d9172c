"""One conformance suite for every storage backend (local folder, S3 on a real moto server).

Backend-specific behaviour (Object Lock, SSE, local sidecars and recorded retention) follows the
shared suite.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from config.settings import StorageSettings
from storage import open_storage
from storage.base import Retention, WriteLock
from storage.local import LocalStorage
from storage.metadata import s3_user_metadata
from storage.s3 import S3Storage
from tests.fixtures._ports import free_port
from tests.fixtures.s3 import S3Bucket, make_s3_client, make_s3_storage
from worker.errors import DiskError, Interrupted, ObjectExists, RetryableError, StorageError, StorageUnavailable

MiB = 1024 * 1024
PART = 5 * MiB  # the S3 store under test uses the smallest legal part: more parts per test byte


class GenStream:
    """A non-seekable stream of deterministic pseudo-random bytes, produced as it is read.

    It records the largest single ``read()`` request, and calls ``on_read(total_read)`` before each
    read, so tests can watch what the backend holds without timing anything.
    """

    def __init__(self, size: int, *, seed: int = 7, fail_after: int | None = None, on_read=None) -> None:
        self.size = size
        self.rng = random.Random(seed)
        self.sha256 = hashlib.sha256()
        self.sent = 0
        self.buffer = b""
        self.max_request = 0
        self.reads = 0
        self.fail_after = fail_after
        self.on_read = on_read

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        self.max_request = max(self.max_request, size if size >= 0 else float("inf"))
        if self.on_read is not None:
            self.on_read(self.sent)
        if self.fail_after is not None and self.sent >= self.fail_after:
            raise Interrupted("vendor cut the body", received=self.sent)
        if not self.buffer and self.sent < self.size:
            # uneven piece sizes: a pipe returns less than asked, the backend must keep reading
            piece = min(self.size - self.sent, self.rng.choice((1000, 65536, 300_001)))
            self.buffer = self.rng.randbytes(piece)
        take = self.buffer[: size if size >= 0 else None]
        self.buffer = self.buffer[len(take):]
        self.sent += len(take)
        self.sha256.update(take)
        return take


def metadata_for(recording_id: str = "rec-1") -> dict[str, str]:
    return s3_user_metadata(sha256="0" * 64, provider="convirza", account="acme", recording_id=recording_id)


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        backend = LocalStorage.from_settings(StorageSettings(url=str(tmp_path / "archive")))
    else:
        bucket = request.getfixturevalue("s3_bucket")
        backend = make_s3_storage(bucket, part_size=PART)
    try:
        yield backend
    finally:
        backend.close()


def digest(chunks) -> str:
    sha = hashlib.sha256()
    for chunk in chunks:
        sha.update(chunk)
    return sha.hexdigest()


# ---------------------------------------------------------------------------- conformance


def test_put_stream_round_trips_a_large_non_seekable_stream(store):
    stream = GenStream(20 * MiB + 12345)
    info = store.put_stream("p/a/2026/02/14/1/original.wav", stream, content_type="audio/wav",
                            metadata=metadata_for())
    assert info.size == 20 * MiB + 12345
    assert stream.sent == stream.size
    assert digest(store.iter_bytes("p/a/2026/02/14/1/original.wav", chunk_size=MiB)) == stream.sha256.hexdigest()
    head = store.head("p/a/2026/02/14/1/original.wav")
    assert head is not None and head.size == stream.size
    assert stream.max_request <= 8 * MiB  # never "read it all"


def test_put_stream_reads_in_bounded_requests(store):
    stream = GenStream(11 * MiB)
    store.put_stream("k/bounded.bin", stream, content_type="application/octet-stream", metadata={})
    assert 0 < stream.max_request <= PART
    assert stream.reads > 3


def test_never_overwrites_and_keeps_the_original(store, tmp_path):
    key = "p/a/2026/02/14/1/original.mp3"
    store.put_bytes(key, b"first bytes", content_type="audio/mpeg", metadata=metadata_for())
    stream = GenStream(3 * MiB)
    with pytest.raises(ObjectExists):
        store.put_stream(key, stream, content_type="audio/mpeg", metadata=metadata_for())
    assert stream.reads == 0  # refused before a byte of the download was consumed
    with pytest.raises(ObjectExists):
        store.put_bytes(key, b"second", content_type="audio/mpeg")
    local = tmp_path / "other.mp3"
    local.write_bytes(b"third")
    with pytest.raises(ObjectExists):
        store.put_file(key, local, content_type="audio/mpeg", metadata={})
    assert store.read_bytes(key) == b"first bytes"


def test_a_writer_that_wins_the_race_mid_upload_is_not_overwritten(store):
    """Another worker commits the key while our stream is still being read: we must lose."""
    key = "race/original.wav"

    def other_writer(sent: int) -> None:
        if sent >= PART and store.head(key) is None:
            store.put_bytes(key, b"the winner", content_type="audio/wav")

    with pytest.raises(ObjectExists):
        store.put_stream(key, GenStream(PART + MiB, on_read=other_writer), content_type="audio/wav",
                         metadata={})
    assert store.read_bytes(key) == b"the winner"


def test_put_bytes_overwrite_is_for_state(store):
    key = "_state/acme/watermark.json"
    store.put_bytes(key, b'{"v": 1}', content_type="application/json")
    store.put_bytes(key, b'{"v": 2}', content_type="application/json", overwrite=True)
    assert store.read_bytes(key) == b'{"v": 2}'


def test_head_reports_size_content_type_and_user_metadata(store):
    key = "p/a/2026/02/14/x%2Fy/original.m4a"
    store.put_stream(key, GenStream(1000), content_type="audio/mp4", metadata=metadata_for("x/y"))
    info = store.head(key)
    assert info is not None
    assert (info.key, info.size, info.content_type) == (key, 1000, "audio/mp4")
    assert dict(info.metadata) == metadata_for("x/y")
    assert info.last_modified is not None
    assert store.head("p/a/2026/02/14/x%2Fy/missing.wav") is None
    assert store.head("nowhere/at/all.wav") is None


def test_put_file_stores_a_local_file(store, tmp_path):
    source = tmp_path / "render.mp3"
    data = random.Random(3).randbytes(PART + 4321)  # more than one part on S3
    source.write_bytes(data)
    info = store.put_file("p/r/rendition.mp3", source, content_type="audio/mpeg", metadata={"sha256": "x"})
    assert info.size == len(data)
    assert store.read_bytes("p/r/rendition.mp3") == data


def test_list_gives_relative_keys_in_order_for_a_prefix(store):
    keys = ["a/b/2.wav", "a/b/10.wav", "a/b.json", "a/bc/x", "a0/z", "b/y", "_state/acme/w.json"]
    for key in keys:
        store.put_bytes(key, key.encode(), content_type="text/plain")
    assert [i.key for i in store.list()] == sorted(keys)
    assert [i.key for i in store.list("a/")] == ["a/b.json", "a/b/10.wav", "a/b/2.wav", "a/bc/x"]
    assert [i.key for i in store.list("a/b/")] == ["a/b/10.wav", "a/b/2.wav"]
    assert [i.key for i in store.list("a/b")] == ["a/b.json", "a/b/10.wav", "a/b/2.wav", "a/bc/x"]
    assert [(i.key, i.size) for i in store.list("b/")] == [("b/y", 3)]
    assert list(store.list("nothing/")) == []


def test_iter_bytes_and_read_bytes_of_a_missing_object(store):
    store.put_bytes("x/small.txt", b"0123456789", content_type="text/plain")
    assert list(store.iter_bytes("x/small.txt", chunk_size=4)) == [b"0123", b"4567", b"89"]
    with pytest.raises(FileNotFoundError):
        store.iter_bytes("x/absent.txt")
    with pytest.raises(FileNotFoundError):
        store.read_bytes("x/absent.txt")


def test_delete_removes_and_tolerates_absent(store):
    store.put_bytes("d/original.wav", b"partial attempt", content_type="audio/wav")
    store.delete("d/original.wav")
    assert store.head("d/original.wav") is None
    assert list(store.list("d/")) == []
    store.delete("d/original.wav")
    store.put_bytes("d/original.wav", b"retry", content_type="audio/wav")  # the key is free again
    assert store.read_bytes("d/original.wav") == b"retry"


def test_a_failing_stream_leaves_nothing_behind(store):
    with pytest.raises(Interrupted):  # the stream's own error passes through untranslated
        store.put_stream("f/original.wav", GenStream(12 * MiB, fail_after=PART + MiB),
                         content_type="audio/wav", metadata={})
    assert store.head("f/original.wav") is None
    assert list(store.list()) == []


@pytest.mark.parametrize("key", ["../escape.wav", "/etc/passwd", "a/../../b", "a/./b", "a//b", "a\x00b",
                                 "a\\..\\b", "", "a/.hidden", "a/"])
def test_keys_that_could_escape_or_collide_are_refused(store, key):
    with pytest.raises(StorageError):
        store.put_bytes(key, b"x", content_type="text/plain")
    with pytest.raises(StorageError):
        store.head(key)


def test_check_passes_on_a_usable_store(store):
    store.check()
    assert list(store.list()) == []  # the probe is gone


def test_open_storage_picks_the_backend(tmp_path, s3_env):
    local = open_storage(StorageSettings(url=str(tmp_path / "l")))
    remote = open_storage(StorageSettings(url="s3://bucket/p", endpoint_url="http://127.0.0.1:9"))
    assert isinstance(local, LocalStorage) and local.root.is_dir()
    assert isinstance(remote, S3Storage) and remote.url == "s3://bucket/p"
    remote.close()


# ---------------------------------------------------------------------------- S3 only


def test_s3_objects_carry_user_metadata_under_the_prefix(s3_bucket: S3Bucket):
    store = make_s3_storage(s3_bucket, prefix="/recordings/")
    store.put_stream("convirza/acme/original.wav", GenStream(2000), content_type="audio/wav",
                     metadata=metadata_for("987654"))
    assert store.full_key("convirza/acme/original.wav") == "recordings/convirza/acme/original.wav"
    raw = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key="recordings/convirza/acme/original.wav")
    assert raw["Metadata"] == {"sha256": "0" * 64, "provider": "convirza", "account": "acme",
                               "recording-id": "987654"}
    assert raw["ContentType"] == "audio/wav"
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key="recordings-old/stray", Body=b"x")
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key="elsewhere", Body=b"x")
    assert [i.key for i in store.list()] == ["convirza/acme/original.wav"]
    store.close()


@pytest.mark.parametrize("size", [1000, 2 * PART + 1])
def test_s3_sse_and_storage_class_are_applied(s3_bucket: S3Bucket, size):
    store = make_s3_storage(s3_bucket, sse="AES256", storage_class="STANDARD_IA", part_size=PART)
    store.put_stream("enc/original.wav", GenStream(size), content_type="audio/wav", metadata={})
    store.put_bytes("enc/metadata.json", b"{}", content_type="application/json")
    for key in ("recordings/enc/original.wav", "recordings/enc/metadata.json"):
        raw = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key=key)
        assert raw["ServerSideEncryption"] == "AES256"
        assert raw["StorageClass"] == "STANDARD_IA"
    store.close()


def test_s3_bounded_memory_parts_in_flight(s3_bucket: S3Bucket):
    """Bytes read from the stream but not yet acknowledged by the server stay under
    part_size * (concurrency + 1), whatever the stream's length."""
    client = make_s3_client(s3_bucket.endpoint_url)
    done = {"parts": 0}
    lock = threading.Lock()

    def part_done(**_kwargs) -> None:
        with lock:
            done["parts"] += 1

    client.meta.events.register("after-call.s3.UploadPart", part_done)
    store = S3Storage(client, s3_bucket.name, "rec", None, part_size=PART, max_concurrency=2)
    worst = {"outstanding": 0}

    def watch(sent: int) -> None:
        with lock:
            worst["outstanding"] = max(worst["outstanding"], sent - done["parts"] * PART)

    stream = GenStream(8 * PART + 17, on_read=watch)
    store.put_stream("big/original.wav", stream, content_type="audio/wav", metadata={})
    assert done["parts"] == 9
    assert stream.max_request <= PART
    assert worst["outstanding"] <= PART * (2 + 1)
    assert digest(store.iter_bytes("big/original.wav")) == stream.sha256.hexdigest()
    store.close()


def test_s3_failed_multipart_upload_is_aborted(s3_bucket: S3Bucket):
    store = make_s3_storage(s3_bucket, part_size=PART)
    with pytest.raises(Interrupted):
        store.put_stream("f/original.wav", GenStream(4 * PART, fail_after=2 * PART), content_type="audio/wav",
                         metadata={})
    assert s3_bucket.client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads", []) == []
    store.close()


def test_s3_object_lock_retention_is_applied_and_read_back(s3_lock_bucket: S3Bucket):
    store = make_s3_storage(s3_lock_bucket)
    store.check(need_object_lock=True)
    key = "p/a/1/original.wav"
    store.put_bytes(key, b"recording", content_type="audio/wav", metadata=metadata_for())
    until = datetime.now(UTC) + timedelta(days=30, microseconds=1)
    store.set_retention(key, Retention("COMPLIANCE", until))
    info = store.head(key)
    assert info is not None and info.retention is not None
    assert info.retention.mode == "COMPLIANCE"
    assert info.retention.retain_until >= until.replace(microsecond=0)
    # a re-run asking for less is a no-op, not an error
    store.set_retention(key, Retention("GOVERNANCE", until - timedelta(days=1)))

    full = store.full_key(key)
    version = s3_lock_bucket.client.head_object(Bucket=s3_lock_bucket.name, Key=full)["VersionId"]
    with pytest.raises(ClientError) as refused:
        s3_lock_bucket.client.delete_object(Bucket=s3_lock_bucket.name, Key=full, VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    store.delete(key)  # only a delete marker: the locked version stays
    kept = s3_lock_bucket.client.get_object(Bucket=s3_lock_bucket.name, Key=full, VersionId=version)
    assert kept["Body"].read() == b"recording"
    store.close()


def test_s3_legal_hold_on_and_off(s3_lock_bucket: S3Bucket):
    store = make_s3_storage(s3_lock_bucket)
    store.put_bytes("h/original.wav", b"held", content_type="audio/wav")
    store.set_legal_hold("h/original.wav", True)
    assert store.head("h/original.wav").legal_hold is True
    store.set_legal_hold("h/original.wav", False)
    assert store.head("h/original.wav").legal_hold is False
    store.close()


def test_s3_retention_on_a_bucket_without_object_lock_fails(s3_bucket: S3Bucket):
    store = make_s3_storage(s3_bucket)
    store.put_bytes("r/original.wav", b"x", content_type="audio/wav")
    with pytest.raises(StorageError):
        store.set_retention("r/original.wav", Retention("COMPLIANCE", datetime.now(UTC) + timedelta(days=1)))
    with pytest.raises(StorageError):
        store.set_legal_hold("r/original.wav", True)
    store.close()


def test_s3_check_needs_object_lock_when_asked(s3_bucket: S3Bucket):
    store = make_s3_storage(s3_bucket)
    store.check()
    with pytest.raises(StorageUnavailable, match=f"bucket {s3_bucket.name} has no Object Lock"):
        store.check(need_object_lock=True)
    store.close()


def test_s3_check_reports_a_missing_bucket(s3_bucket: S3Bucket):
    store = make_s3_storage(S3Bucket("no-such-bucket-here", s3_bucket.endpoint_url, None))
    with pytest.raises(StorageUnavailable, match="no-such-bucket-here"):
        store.check()
    with pytest.raises(StorageUnavailable):
        store.put_bytes("x/y.json", b"{}", content_type="application/json")
    store.close()


def test_s3_unreachable_endpoint_is_storage_unavailable(s3_env):
    port = free_port()  # nothing listens there any more
    settings = StorageSettings(url="s3://archive/recordings", endpoint_url=f"http://127.0.0.1:{port}",
                               region="us-east-1")
    store = S3Storage.from_settings(settings, connect_timeout=1, read_timeout=1, max_attempts=1)
    with pytest.raises(StorageUnavailable, match=f"127.0.0.1:{port}") as failure:
        store.check()
    assert "testing" not in str(failure.value)  # no credential in the message
    with pytest.raises(StorageUnavailable):
        store.head("a/b.wav")
    with pytest.raises(StorageUnavailable):
        store.put_stream("a/b.wav", GenStream(10), content_type="audio/wav", metadata={})
    store.close()


def test_s3_url_parsing(s3_bucket: S3Bucket):
    for url, prefix in [("s3://b-1", ""), ("s3://b-1/", ""), ("s3://b-1/rec", "rec"), ("s3://b-1//x//y/", "x/y")]:
        store = S3Storage.from_settings(StorageSettings(url=url, endpoint_url=s3_bucket.endpoint_url))
        assert (store.bucket, store.prefix) == ("b-1", prefix)
        assert store.full_key("k") == (f"{prefix}/k" if prefix else "k")
        store.close()


# ---------------------------------------------------------------------------- local only


@pytest.fixture
def local(tmp_path) -> LocalStorage:
    return LocalStorage.from_settings(StorageSettings(url=(tmp_path / "archive").as_uri()))


def test_local_urls_and_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert LocalStorage.from_settings(StorageSettings(url="rel/dir")).root == tmp_path / "rel" / "dir"
    assert LocalStorage.from_settings(StorageSettings(url="file://rel2/d")).root == tmp_path / "rel2" / "d"
    absolute = LocalStorage.from_settings(StorageSettings(url=(tmp_path / "abs dir").as_uri()))
    assert absolute.root == tmp_path / "abs dir" and absolute.root.is_dir()
    assert absolute.url.startswith("file:///")
    assert absolute.full_key("a/b.wav") == "a/b.wav"


def test_local_side_files_live_outside_the_recording_folders_and_are_never_listed(local):
    local.put_bytes("a/original.wav", b"x", content_type="audio/wav", metadata={"sha256": "s"})
    assert sorted(os.listdir(local.root / "a")) == ["original.wav"]  # CONTRACT §3: the objects alone
    assert (local.root / ".recarchive" / "meta" / "a" / "original.wav.json").is_file()
    (local.root / "a" / ".original.wav.abc.part").write_bytes(b"crashed writer")
    (local.root / ".recarchive" / "tmp" / "original.wav.abc.part").write_bytes(b"crashed writer")
    assert [i.key for i in local.list()] == ["a/original.wav"]
    with pytest.raises(StorageError):
        local.put_bytes(".recarchive/meta/x.json", b"{}", content_type="application/json")


def test_local_reads_a_side_file_of_an_older_version_and_moves_it(local):
    local.put_bytes("a/original.wav", b"x", content_type="audio/wav", metadata={"sha256": "s"})
    new = local.root / ".recarchive" / "meta" / "a" / "original.wav.json"
    old = local.root / "a" / ".original.wav.meta.json"
    new.rename(old)  # the layout before 0.2: hidden, beside the object
    assert local.head("a/original.wav").metadata == {"sha256": "s"}
    local.set_legal_hold("a/original.wav", True)
    assert not old.exists() and new.is_file()
    assert local.head("a/original.wav").legal_hold is True


def test_local_refuses_a_symlink_out_of_the_root(local, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (local.root / "link").symlink_to(outside)
    with pytest.raises(StorageError):
        local.put_bytes("link/x.wav", b"x", content_type="audio/wav")
    assert list(outside.iterdir()) == []


def test_local_retention_is_recorded_and_honoured(local):
    key = "p/original.wav"
    local.put_bytes(key, b"keep me", content_type="audio/wav")
    until = datetime.now(UTC) + timedelta(days=7)
    local.set_retention(key, Retention("COMPLIANCE", until))
    info = local.head(key)
    assert info.retention == Retention("COMPLIANCE", until.replace(microsecond=0) + timedelta(seconds=1))
    assert not os.stat(local.root / key).st_mode & 0o222
    with pytest.raises(StorageError):
        local.delete(key)
    with pytest.raises(StorageError):
        local.put_bytes(key, b"replace", content_type="audio/wav", overwrite=True)
    with pytest.raises(StorageError):  # compliance cannot be weakened to governance
        local.set_retention(key, Retention("GOVERNANCE", until + timedelta(days=2)))
    local.set_retention(key, Retention("COMPLIANCE", until - timedelta(days=1)))  # covered: a no-op
    local.set_retention(key, Retention("COMPLIANCE", until + timedelta(days=1)))  # extending is fine
    assert local.head(key).retention.retain_until > until + timedelta(hours=23)
    assert local.read_bytes(key) == b"keep me"


def test_local_running_retention_cannot_be_shortened(local):
    key = "p/gov.wav"
    local.put_bytes(key, b"x", content_type="audio/wav")
    until = datetime.now(UTC) + timedelta(days=7)
    local.set_retention(key, Retention("GOVERNANCE", until))
    with pytest.raises(StorageError, match="cannot be shortened"):
        local.set_retention(key, Retention("COMPLIANCE", until - timedelta(days=1)))
    local.set_retention(key, Retention("COMPLIANCE", until + timedelta(days=1)))  # strengthening is fine
    assert local.head(key).retention.mode == "COMPLIANCE"


def test_local_only_one_of_many_concurrent_writers_wins(local):
    """moto checks If-None-Match without a lock, so this race is proven on the local backend; on S3
    the condition is atomic in the store itself (the mid-upload race test covers our side)."""
    key = "race/metadata.json"
    outcomes: list[str] = []

    def write(n: int) -> None:
        try:
            local.put_bytes(key, f"writer {n}".encode(), content_type="application/json")
            outcomes.append(f"won {n}")
        except ObjectExists:
            outcomes.append("lost")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if o.startswith("won")]
    assert len(winners) == 1 and outcomes.count("lost") == 7
    assert local.read_bytes(key) == f"writer {winners[0].split()[1]}".encode()


def test_local_expired_retention_and_legal_hold(local):
    key = "p/old.wav"
    local.put_bytes(key, b"old", content_type="audio/wav")
    local.set_retention(key, Retention("GOVERNANCE", datetime.now(UTC) - timedelta(days=1)))
    local.set_legal_hold(key, True)
    assert local.head(key).legal_hold is True
    with pytest.raises(StorageError):
        local.delete(key)
    local.set_legal_hold(key, False)
    local.delete(key)
    assert local.head(key) is None
    assert not (local.root / "p").exists()  # empty folders of a failed attempt are removed
    with pytest.raises(StorageError):
        local.set_legal_hold("p/never.wav", True)


def test_local_check_fails_on_an_unusable_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"not a folder")
    with pytest.raises(StorageUnavailable):
        LocalStorage(blocker / "archive").check(need_object_lock=True)
    with pytest.raises(StorageUnavailable):
        LocalStorage.from_settings(StorageSettings(url=str(blocker / "archive")))


# ----------------------------------------------------------------- lock at write, conditional writes

LOCK = WriteLock(Retention("COMPLIANCE", datetime.now(UTC) + timedelta(days=2)), legal_hold=True)


@pytest.mark.parametrize("how", ["bytes", "file", "multipart"])
def test_s3_a_locked_write_is_locked_when_the_call_returns(s3_lock_bucket: S3Bucket, tmp_path, how):
    """Mode, retain-until and legal hold travel in the request that creates the object; where a store
    drops them (moto forgets those of CreateMultipartUpload) they are applied before the call returns."""
    store = make_s3_storage(s3_lock_bucket, part_size=PART, single_put_max=PART)
    key = f"p/a/2026/02/14/{how}/original.wav"
    if how == "bytes":
        store.put_bytes(key, b"RIFF....", content_type="audio/wav", metadata=metadata_for(), lock=LOCK)
    elif how == "file":
        source = tmp_path / "small.wav"
        source.write_bytes(b"R" * 1000)
        store.put_file(key, source, content_type="audio/wav", metadata=metadata_for(), lock=LOCK)
    else:
        store.put_stream(key, GenStream(PART + 1000), content_type="audio/wav", metadata=metadata_for(), lock=LOCK)
    info = store.head(key)
    assert info is not None and info.legal_hold is True
    assert info.retention is not None and info.retention.mode == "COMPLIANCE"
    assert info.retention.retain_until >= LOCK.retention.retain_until - timedelta(seconds=1)
    with pytest.raises(ClientError):  # the store itself refuses to remove the locked version
        version = s3_lock_bucket.client.head_object(Bucket=s3_lock_bucket.name, Key=f"recordings/{key}")["VersionId"]
        s3_lock_bucket.client.delete_object(Bucket=s3_lock_bucket.name, Key=f"recordings/{key}", VersionId=version)


def test_s3_a_locked_put_sends_the_lock_in_the_put_itself(s3_lock_bucket: S3Bucket):
    """No second request is needed for a PutObject: the lock headers are on the write (read from the
    wire through the recording proxy)."""
    from tests.faults.s3proxy import S3FaultProxy

    with S3FaultProxy(s3_lock_bucket.endpoint_url, record=True) as proxy:
        store = make_s3_storage(S3Bucket(s3_lock_bucket.name, proxy.url, s3_lock_bucket.client))
        store.put_bytes("p/a/2026/02/14/1/metadata.json", b"{}", content_type="application/json", lock=LOCK)
        puts = [raw for raw in proxy.received if raw.startswith(b"PUT ")]
    assert len(puts) == 1
    head = puts[0].split(b"\r\n\r\n", 1)[0].lower()
    for header in (b"x-amz-object-lock-mode: compliance", b"x-amz-object-lock-retain-until-date:",
                   b"x-amz-object-lock-legal-hold: on", b"if-none-match: *"):
        assert header in head


def test_s3_check_refuses_a_store_that_ignores_conditional_writes(s3_bucket: S3Bucket):
    from tests.faults.s3proxy import S3FaultProxy

    with S3FaultProxy(s3_bucket.endpoint_url, drop_headers=("If-None-Match",)) as proxy:
        store = make_s3_storage(S3Bucket(s3_bucket.name, proxy.url, s3_bucket.client))
        with pytest.raises(StorageUnavailable) as caught:
            store.check()
        message = str(caught.value)
        assert "ignores conditional writes" in message and proxy.url in message and "\n" not in message
    make_s3_storage(s3_bucket).check()  # the same bucket, straight: fine


def test_s3_check_under_default_retention_proves_conditional_writes_and_leaves_one_probe_each(
        s3_lock_bucket: S3Bucket):
    s3_lock_bucket.client.put_object_lock_configuration(
        Bucket=s3_lock_bucket.name,
        ObjectLockConfiguration={"ObjectLockEnabled": "Enabled",
                                 "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    store = make_s3_storage(s3_lock_bucket)
    store.check(need_object_lock=True)
    store.check(need_object_lock=True)  # meets the probe already there: that refusal is the proof
    versions = s3_lock_bucket.client.list_object_versions(Bucket=s3_lock_bucket.name).get("Versions", [])
    # one object per probe for good (moto checks no digest, so both digest probes were accepted once)
    assert sorted(v["Key"] for v in versions) == ["recordings/_state/_checks/checksum-sha256",
                                                  "recordings/_state/_checks/conditional-write",
                                                  "recordings/_state/_checks/content-md5"]


def test_s3_check_removes_its_probe_when_it_can(s3_lock_bucket: S3Bucket):
    make_s3_storage(s3_lock_bucket).check()
    listing = s3_lock_bucket.client.list_object_versions(Bucket=s3_lock_bucket.name)
    assert not listing.get("Versions") and not listing.get("DeleteMarkers")


def test_local_a_locked_write_records_the_lock_and_drops_the_write_bits(local):
    local.put_bytes("p/a/1/original.wav", b"x", content_type="audio/wav", lock=LOCK)
    info = local.head("p/a/1/original.wav")
    assert info.legal_hold is True and info.retention.mode == "COMPLIANCE"
    assert not os.stat(local.root / "p/a/1/original.wav").st_mode & 0o222
    with pytest.raises(StorageError):
        local.delete("p/a/1/original.wav")


def test_local_a_full_disk_is_a_retryable_disk_error(local, tmp_path):
    """Any OSError of a write (here: the folder is a file) is DiskError, retryable, never a traceback."""
    (local.root / "p").write_bytes(b"not a folder")
    with pytest.raises(DiskError) as caught:
        local.put_bytes("p/a/original.wav", b"x", content_type="audio/wav")
    assert isinstance(caught.value, RetryableError)


# ----------------------------------------------------------------- placement: never replace, never delete


def test_placement_reuses_the_same_bytes_locks_them_and_reports_other_bytes(store, tmp_path):
    from storage.placement import OtherBytes, Placed, place_file, verified

    key = "p/a/2026/02/14/9/original.wav"
    ours = tmp_path / "ours.wav"
    ours.write_bytes(b"RIFF-ours")
    sha = hashlib.sha256(b"RIFF-ours").hexdigest()
    meta = {**metadata_for("9"), "sha256": sha}
    # an attempt that died before its commit left the same bytes, unlocked (an older version)
    store.put_bytes(key, b"RIFF-ours", content_type="audio/wav", metadata=meta)
    lock = WriteLock(Retention("GOVERNANCE", datetime.now(UTC) + timedelta(days=1))) if store.enforces_retention \
        else LOCK
    if store.enforces_retention and not _has_object_lock(store):
        lock = None
    placed = place_file(store, key, ours, sha256=sha, size=9, content_type="audio/wav", metadata=meta, lock=lock)
    assert placed is Placed.PRESENT
    if lock is not None:
        assert store.head(key).retention is not None  # the leftover is locked now
    theirs = tmp_path / "theirs.wav"
    theirs.write_bytes(b"RIFF-other")
    with pytest.raises(OtherBytes) as caught:
        place_file(store, key, theirs, sha256=hashlib.sha256(b"RIFF-other").hexdigest(), size=10,
                   content_type="audio/wav", metadata=meta, lock=None)
    assert caught.value.existing.metadata["sha256"] == sha
    assert b"".join(store.iter_bytes(key)) == b"RIFF-ours"  # nothing replaced, nothing deleted
    info, digest = verified(store, key)
    assert digest == sha and info.size == 9


def _has_object_lock(store) -> bool:
    try:
        store.check(need_object_lock=True)
    except StorageUnavailable:
        return False
    return True


def test_placement_refuses_to_adopt_bytes_that_do_not_match_their_own_metadata(local, tmp_path):
    from storage.placement import verified

    key = "p/a/2026/02/14/9/rendition.mp3"
    local.put_bytes(key, b"ID3-real", content_type="audio/mpeg", metadata={"sha256": "0" * 64})
    with pytest.raises(StorageError, match="do not match"):
        verified(local, key)


def test_small_writes_do_not_wait_for_100_continue_and_large_ones_do(s3_bucket, tmp_path):
    """A few hundred bytes of metadata.json go with their headers (no extra round trip to the store);
    a large original still waits for the store's 100 Continue, so a refused write sends no body."""
    backend = make_s3_storage(s3_bucket)
    sent: dict[str, str | None] = {}

    def capture(request, **_):
        sent[request.url.rsplit("/", 1)[-1]] = request.headers.get("Expect")

    backend._client.meta.events.register("before-send.s3.PutObject", capture)
    try:
        backend.put_bytes("small.json", b"{}", content_type="application/json")
        large = tmp_path / "large.bin"
        large.write_bytes(b"\0" * (2 * 1024 * 1024))
        backend.put_file("large.bin", large, content_type="application/octet-stream", metadata=metadata_for())
        with pytest.raises(ObjectExists):
            backend.put_file("large.bin", large, content_type="application/octet-stream", metadata=metadata_for())
    finally:
        backend.close()
    assert sent["small.json"] is None
    assert sent["large.bin"] in ("100-continue", b"100-continue")
