"""The work dir: where a recording is spooled while it is checked, and cleaned up whatever happens.

A download first checks that the disk can hold it (the vendor's announced size plus a margin), so a
large recording fails with a clear message instead of a half-written file.

"Whatever happens" includes a process killed outright (SIGKILL, the OOM killer, a lost container):
its ``finally`` never runs. So each spool file's name carries its host (hostname and PID namespace)
and process id (``rec-{host}-{pid}-…``), and a new ``WorkDir`` removes the files of processes of this
host that no longer exist; without that, every crash would leave recordings' worth of disk behind for
good. Files of live processes, and of other hosts or containers sharing the folder, are never touched.

Who else can touch a spool: nobody but this user. The work dir is created 0700; an existing one must
belong to this user (else ``ConfigError`` naming it: another user could read recordings or swap files
there) and have no group/other access (an existing dir of ours with wider access is narrowed to 0700,
with a warning). The default is ``$TMPDIR/recarchive-work-<uid>``, so users of one machine never share
it. Spool files are created 0600 with ``O_EXCL``.

"What is uploaded is the bytes that were hashed": ``temp_file`` keeps the spool's descriptor open
from creation, and ``upload_source`` (called right before the original is stored) checks that the
name still points at that very file (same inode, one link, ours, the size that was hashed) and hands
the uploader ``/proc/self/fd/N``: a path that reopens *the file we hold*, whatever has happened to
its name since. What this does not cover: a process running as this same user (or root) rewriting
the file's bytes in place; that user can read the vendor tokens anyway.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from worker.errors import ChecksumMismatch, ConfigError, InsufficientSpace

__all__ = ["InsufficientSpace", "WorkDir"]

log = logging.getLogger(__name__)

#: free space kept beyond the announced size, for renditions and the filesystem's own needs
SPACE_MARGIN = 64 * 1024 * 1024



class WorkDir:
    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        root = Path(path) if path else Path(tempfile.gettempdir()) / f"recarchive-work-{_uid()}"
        _secure_dir(root)
        self.path = root
        self._host = _host_tag()
        self._held: dict[Path, int] = {}
        self.sweep()

    def sweep(self) -> int:
        """Remove the spool files left by processes of this host that are gone; returns how many."""
        if os.name != "posix":  # os.kill(pid, 0) probes a process only on POSIX
            return 0
        removed = 0
        for path in self.path.glob(f"rec-{self._host}-*"):
            pid = path.name.split("-")[2]
            if not pid.isdigit() or _alive(int(pid)):
                continue
            with contextlib.suppress(OSError):  # gone already, or not ours to remove
                path.unlink()
                removed += 1
        if removed:
            log.info("work dir %s: removed %d spool files left by processes that died", self.path, removed)
        return removed

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.path).free

    def ensure_space(self, needed: int | None, *, what: str = "recording") -> None:
        if needed is None or needed <= 0:
            return
        free = self.free_bytes()
        if needed + SPACE_MARGIN > free:
            raise InsufficientSpace(
                f"work dir {self.path} has {free // 2**20} MiB free; the {what} needs "
                f"{needed // 2**20} MiB plus {SPACE_MARGIN // 2**20} MiB margin"
            )

    @contextlib.contextmanager
    def temp_file(self, suffix: str = ".part", *, expected_size: int | None = None) -> Iterator[Path]:
        """A fresh file path, removed on exit whether the body succeeded or raised."""
        self.ensure_space(expected_size)
        fd, name = tempfile.mkstemp(prefix=f"rec-{self._host}-{os.getpid()}-", suffix=suffix, dir=self.path)
        path = Path(name)
        self._held[path] = fd  # held until the end: upload_source reopens this very file
        try:
            yield path
        finally:
            self._held.pop(path, None)
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def upload_source(self, path: Path, size: int) -> Path:
        """The path to upload the spool ``path`` from, once it is checked to be the file ``temp_file``
        created (same inode, one link, ours, not readable by others) holding the ``size`` bytes that
        were hashed; ``ChecksumMismatch`` if it is not. On Linux the answer is ``/proc/self/fd/N`` of
        the descriptor held since creation, so the uploader opens the checked file even if its name
        were replaced after this check."""
        fd = self._held.get(path)
        try:
            now = os.lstat(path)
            held = os.fstat(fd) if fd is not None else now
        except OSError as exc:
            raise ChecksumMismatch(f"spool file {path.name} is gone before its upload ({exc.strerror})") from None
        problems = []
        if not stat.S_ISREG(now.st_mode):
            problems.append("not a regular file")
        if (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
            problems.append("replaced by another file")
        if now.st_nlink != 1:
            problems.append(f"{now.st_nlink} links")
        if os.name == "posix" and (now.st_uid != os.geteuid() or now.st_mode & 0o077):
            problems.append("owner or mode changed")
        if held.st_size != size:
            problems.append(f"{held.st_size} bytes, {size} were hashed")
        if problems:
            raise ChecksumMismatch(f"spool file {path.name} changed since its bytes were hashed "
                                   f"({', '.join(problems)}); not uploaded")
        proc = Path(f"/proc/self/fd/{fd}")
        return proc if fd is not None and proc.exists() else path


def _uid() -> int | str:
    return os.geteuid() if hasattr(os, "geteuid") else os.environ.get("USERNAME", "user")


def _secure_dir(root: Path) -> None:
    """Create ``root`` 0700, or check an existing one: a directory of ours without group/other access
    (narrowed to 0700 when ours and wider). ``ConfigError`` naming the path otherwise."""
    try:
        root.mkdir(mode=0o700, parents=True)
        log.debug("work dir %s created (0700)", root)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"work dir {root} cannot be created: {exc.strerror}") from None
    try:
        info = os.stat(root)
    except OSError as exc:
        raise ConfigError(f"work dir {root} cannot be read: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"work dir {root} is not a directory")
    if os.name != "posix":
        return
    if info.st_uid != os.geteuid():
        raise ConfigError(f"work dir {root} belongs to uid {info.st_uid}, not to this user (uid {os.geteuid()}): "
                          f"recordings spooled there could be read or swapped; set storage.work_dir to a "
                          f"directory of this user")
    if info.st_mode & 0o077:
        os.chmod(root, 0o700)
        log.warning("work dir %s allowed group/other access (mode %03o); narrowed to 0700",
                    root, stat.S_IMODE(info.st_mode))


def _host_tag() -> str:
    """Who may judge a pid: this hostname in this PID namespace (containers may share a hostname)."""
    ident = socket.gethostname()
    with contextlib.suppress(OSError):
        ident += os.readlink("/proc/self/ns/pid")
    return hashlib.sha256(ident.encode()).hexdigest()[:8]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True
