"""A local folder as storage: for the demo, tests and single-host installs. It is NOT WORM.

Objects are plain files under the root, at their key. Everything else lives in one hidden tree,
``{root}/.recarchive/``, so a recording folder holds exactly its objects (CONTRACT §3): each object's
content type, user metadata, recorded retention and legal hold in a side file
``.recarchive/meta/{key}.json``, and temporary files in ``.recarchive/tmp/``. Side files of older
versions (``.{name}.meta.json`` beside the object) are still read, and moved on their next update.

Writes are crash-safe: bytes go to a temporary file (same file system), are fsynced, then linked
into place with ``os.link``, which fails instead of replacing an existing file, so two writers racing
for one key cannot both win and a reader never sees a partial recording. The folder is fsynced after.

Retention is recorded, not enforced by the store (``enforces_retention = False``): a write with a
``WriteLock`` records it (and drops the write bits) before its call returns, ``set_retention`` does so
later, and this backend itself refuses to delete or overwrite an object whose recorded retention is
still running or which is on legal hold, like S3 Object Lock in compliance mode would. Anyone with a
shell on the host can still remove the file.

Every ``OSError`` of a write (a full disk, a read-only mount) is ``DiskError``: retryable.
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import unquote, urlsplit

from storage._keypath import check_key, check_prefix, covers, whole_seconds
from storage._localside import PRIVATE, SideFiles, retention_from, sync_dir
from storage.base import ObjectInfo, Retention, UploadDigest, WriteLock
from worker.errors import DiskError, ObjectExists, StorageError, StorageUnavailable

if TYPE_CHECKING:
    from config.settings import StorageSettings

__all__ = ["LocalStorage", "root_from_url"]

_CHUNK = 1024 * 1024


def root_from_url(url: str) -> Path:
    """The folder named by ``file:///abs``, ``file://localhost/abs``, ``file://relative/dir`` or a path."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        path = unquote(parts.path)
        if parts.netloc and parts.netloc != "localhost":
            path = parts.netloc + path  # "file://relative/dir": a relative path, as users mean it
        return Path(path or ".").expanduser().absolute()
    return Path(url).expanduser().absolute()


class LocalStorage:
    """Storage in a folder. All methods are thread-safe; sidecar updates are serialised per instance."""

    enforces_retention = False
    upload_digest: UploadDigest = "none"  # a local copy is not checked against a digest: none is computed for it

    def __init__(self, root: Path | str, *, fsync: bool = True) -> None:
        """``root`` is the folder holding the objects; it is created by ``from_settings``/``check``.

        ``fsync=False`` skips the flushes to disk (tests only: a crash may then lose recent writes).
        """
        self.root = Path(root).expanduser().absolute()
        self.url = self.root.as_uri()
        self._fsync = fsync
        self._lock = threading.Lock()
        self._side = SideFiles(self.root, fsync=fsync)

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> LocalStorage:
        store = cls(root_from_url(settings.url))
        try:
            store.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"cannot create storage folder {store.root}: {exc.strerror}") from exc
        return store

    # ----------------------------------------------------------------- paths

    def probe_upload_digest(self) -> UploadDigest:
        """A local copy is checked against no digest (``verify`` re-reads it)."""
        return self.upload_digest

    def full_key(self, key: str) -> str:
        """The key itself: the root folder plays the part of the bucket prefix."""
        check_key(key)
        return key

    def _path(self, key: str) -> Path:
        segments = check_key(key)
        if segments[0] == PRIVATE:
            raise StorageError(f"storage key {key!r}: {PRIVATE}/ is reserved for the backend")
        path = self.root.joinpath(*segments)
        # a symlinked folder inside the root must not lead a write outside it
        real_root = os.path.realpath(self.root)
        real_parent = os.path.realpath(path.parent)
        if real_parent != real_root and not real_parent.startswith(real_root + os.sep):
            raise StorageError(f"storage key {key!r} leads outside the storage folder")
        return path

    # ----------------------------------------------------------------- checks

    def check(self, *, need_object_lock: bool = False, write: bool = True) -> None:
        """The folder exists (or can be made) and takes a file. ``need_object_lock`` is accepted:
        a local folder only records retention, as the README says. ``write=False`` (auditing) only
        proves the folder exists and can be read: nothing is created."""
        if not write:
            if not self.root.is_dir() or not os.access(self.root, os.R_OK | os.X_OK):
                raise StorageUnavailable(f"storage folder {self.root} does not exist or cannot be read")
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = self._side.tmp_dir()
            probe = tmp / f"probe-{uuid.uuid4().hex}"
            target = probe.with_suffix(".linked")
            with open(probe, "xb") as handle:
                handle.write(b"probe")
            try:
                self._place("probe", target, probe, overwrite=False)
                self._place("probe", target, probe, overwrite=False)
            except ObjectExists:
                pass  # the second write of one name was refused: what every write relies on
            else:
                raise StorageUnavailable(f"storage folder {self.root} lets a second exclusive write replace "
                                         "a file (no working link/O_EXCL): racing workers could replace recordings")
            finally:
                probe.unlink(missing_ok=True)
                target.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"storage folder {self.root} is not writable: {exc.strerror}") from exc

    # ----------------------------------------------------------------- reads

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            info = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        side = self._read_sidecar(path)
        return ObjectInfo(
            key=key,
            size=info.st_size,
            content_type=side.get("content_type"),
            metadata=dict(side.get("metadata") or {}),
            retention=retention_from(side.get("retention")),
            legal_hold=side.get("legal_hold"),
            last_modified=datetime.fromtimestamp(info.st_mtime, UTC),
        )

    def read_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (IsADirectoryError, NotADirectoryError) as exc:
            raise FileNotFoundError(key) from exc
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc.strerror}") from exc

    def iter_bytes(self, key: str, chunk_size: int = _CHUNK) -> Iterator[bytes]:
        path = self._path(key)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - opened now so a missing object fails at the call; _chunks closes it
        except (IsADirectoryError, NotADirectoryError) as exc:
            raise FileNotFoundError(key) from exc
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc.strerror}") from exc
        return _chunks(handle, chunk_size)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, in byte order of their keys (as S3 lists them)."""
        check_prefix(prefix)
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root.joinpath(*base.split("/")) if base else self.root
        return self._walk(start, base + "/" if base else "", prefix)

    def _walk(self, folder: Path, rel: str, prefix: str) -> Iterator[ObjectInfo]:
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return
        # sorting a folder's "name/" against its files' "name" gives S3's order of the full keys
        named = [
            ((entry.name + "/" if entry.is_dir(follow_symlinks=False) else entry.name), entry)
            for entry in entries
            if (not entry.name.startswith(".") or entry.is_dir(follow_symlinks=False))
            and not (rel == "" and entry.name == PRIVATE)
        ]
        for name, entry in sorted(named, key=lambda item: item[0].encode("utf-8", "surrogateescape")):
            key = rel + name
            if name.endswith("/"):
                if key.startswith(prefix) or prefix.startswith(key):
                    yield from self._walk(Path(entry.path), key, prefix)
            elif key.startswith(prefix) and entry.is_file(follow_symlinks=False):
                info = entry.stat(follow_symlinks=False)
                yield ObjectInfo(
                    key=key, size=info.st_size, last_modified=datetime.fromtimestamp(info.st_mtime, UTC)
                )

    # ----------------------------------------------------------------- writes

    def put_stream(
        self, key: str, stream: BinaryIO, *, content_type: str, metadata: Mapping[str, str],
        lock: WriteLock | None = None,
    ) -> ObjectInfo:
        return self._write(key, _read_chunks(stream), content_type, metadata, overwrite=False, lock=lock)

    def put_file(self, key: str, path: Path, *, content_type: str, metadata: Mapping[str, str],
                 lock: WriteLock | None = None, content_md5: str | None = None,
                 sha256: str | None = None) -> ObjectInfo:
        del content_md5, sha256  # a local copy is not checked against them
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below; an unreadable spool is a disk error
        except OSError as exc:
            raise DiskError(f"cannot read {path.name} to store {key}: {exc.strerror}") from exc
        with handle:
            return self._write(key, _read_chunks(handle), content_type, metadata, overwrite=False, lock=lock)

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        overwrite: bool = False,
        lock: WriteLock | None = None,
    ) -> ObjectInfo:
        if overwrite and lock:
            raise StorageError(f"{key}: a locked object cannot be written as replaceable state")
        return self._write(key, iter((bytes(data),)), content_type, metadata or {}, overwrite=overwrite, lock=lock)

    def _write(
        self, key: str, chunks: Iterator[bytes], content_type: str, metadata: Mapping[str, str], *, overwrite: bool,
        lock: WriteLock | None = None,
    ) -> ObjectInfo:
        path = self._path(key)
        if not overwrite and path.exists():  # fail fast, before reading a long stream
            raise ObjectExists(f"{key} already exists")
        side: dict[str, Any] = {"content_type": content_type, "metadata": dict(metadata)}
        if lock and lock.retention is not None:
            until = whole_seconds(lock.retention.retain_until)
            side["retention"] = {"mode": lock.retention.mode, "retain_until": until.isoformat()}
        if lock and lock.legal_hold:
            side["legal_hold"] = True
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=self._side.tmp_dir(), prefix=f"{path.name}.", suffix=".part")
        except OSError as exc:
            raise DiskError(f"cannot write {key}: {exc.strerror}") from exc
        tmp = Path(tmp_name)
        size = 0
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                    size += len(chunk)
                handle.flush()
                if self._fsync:
                    os.fsync(handle.fileno())
            if lock and lock.retention is not None:
                tmp.chmod(stat.S_IMODE(tmp.stat().st_mode) & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
            with self._lock:
                self._place(key, path, tmp, overwrite=overwrite)
                self._write_sidecar(path, side)
            self._sync_dir(path.parent)
        except OSError as exc:
            raise DiskError(f"cannot write {key}: {exc.strerror}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        return ObjectInfo(
            key=key, size=size, content_type=content_type, metadata=dict(metadata),
            last_modified=datetime.now(UTC),
        )

    def _place(self, key: str, path: Path, tmp: Path, *, overwrite: bool) -> None:
        if overwrite:
            self._refuse_if_locked(key, path, "overwrite")
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)
        except FileExistsError as exc:
            raise ObjectExists(f"{key} already exists") from exc
        except OSError:
            # no hard links here (some network/FUSE file systems): claim the name exclusively, then fill it
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError as exc:
                raise ObjectExists(f"{key} already exists") from exc
            os.replace(tmp, path)

    def delete(self, key: str) -> None:
        """Remove an object and its sidecar; absent is fine. Refused (``StorageError``) while the
        object's recorded retention runs or it is on legal hold, as S3 compliance mode would."""
        path = self._path(key)
        with self._lock:
            self._refuse_if_locked(key, path, "delete")
            try:
                path.unlink(missing_ok=True)
                self._side.remove(path)
            except OSError as exc:
                raise StorageError(f"cannot delete {key}: {exc.strerror}") from exc
        folder = path.parent
        while folder != self.root:  # leave no empty folders behind a failed attempt
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent

    def set_retention(self, key: str, retention: Retention) -> None:
        """Record retention and drop the file's write bits. Never shortens or weakens a running one:
        a request the recorded retention already covers is a no-op, one that would cut it short
        is ``StorageError``."""
        path = self._path(key)
        wanted = Retention(retention.mode, whole_seconds(retention.retain_until))
        with self._lock:
            side = self._existing_sidecar(key, path)
            current = retention_from(side.get("retention"))
            if covers(current, wanted):
                return
            if current is not None and current.retain_until > datetime.now(UTC) and (
                current.retain_until > wanted.retain_until
                or (current.mode == "COMPLIANCE" and wanted.mode != "COMPLIANCE")
            ):
                raise StorageError(f"{key}: retention until {current.retain_until:%Y-%m-%d} cannot be shortened")
            side["retention"] = {"mode": wanted.mode, "retain_until": wanted.retain_until.isoformat()}
            try:
                self._write_sidecar(path, side)
                mode = path.stat().st_mode
                path.chmod(stat.S_IMODE(mode) & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
            except OSError as exc:
                raise DiskError(f"cannot set retention on {key}: {exc.strerror}") from exc

    def set_legal_hold(self, key: str, on: bool) -> None:
        path = self._path(key)
        with self._lock:
            side = self._existing_sidecar(key, path)
            side["legal_hold"] = bool(on)
            try:
                self._write_sidecar(path, side)
            except OSError as exc:
                raise DiskError(f"cannot set legal hold on {key}: {exc.strerror}") from exc

    def close(self) -> None:
        """Nothing to release: files are opened and closed per call."""

    # ----------------------------------------------------------------- sidecars

    def _refuse_if_locked(self, key: str, path: Path, action: str) -> None:
        if not path.exists():
            return
        side = self._read_sidecar(path)
        retention = retention_from(side.get("retention"))
        if side.get("legal_hold"):
            raise StorageError(f"cannot {action} {key}: it is on legal hold")
        if retention is not None and retention.retain_until > datetime.now(UTC):
            raise StorageError(f"cannot {action} {key}: retained until {retention.retain_until:%Y-%m-%d}")

    def _existing_sidecar(self, key: str, path: Path) -> dict[str, Any]:
        if not path.is_file():
            raise StorageError(f"no object at {key}")
        return self._read_sidecar(path)

    def _read_sidecar(self, path: Path) -> dict[str, Any]:
        return self._side.read(path)

    def _write_sidecar(self, path: Path, document: Mapping[str, Any]) -> None:
        self._side.write(path, document)

    def _sync_dir(self, folder: Path) -> None:
        if self._fsync:
            sync_dir(folder)


def _read_chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(_CHUNK):
        yield chunk


def _chunks(handle: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(chunk_size):
            yield chunk
