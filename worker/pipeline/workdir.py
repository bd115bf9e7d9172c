"""The work dir: where a recording is spooled while it is checked, and cleaned up whatever happens.

A download first checks that the disk can hold it (the vendor's announced size plus a margin), so a
large recording fails with a clear message instead of a half-written file.

"Whatever happens" includes a process killed outright (SIGKILL, the OOM killer, a lost container):
its ``finally`` never runs. So each spool file's name carries its host (hostname and PID namespace)
and process id (``rec-{host}-{pid}-…``), and a new ``WorkDir`` removes the files of processes of this
host that no longer exist; without that, every crash would leave recordings' worth of disk behind for
good. Files of live processes, and of other hosts or containers sharing the folder, are never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from worker.errors import InsufficientSpace

__all__ = ["InsufficientSpace", "WorkDir"]

log = logging.getLogger(__name__)

#: free space kept beyond the announced size, for renditions and the filesystem's own needs
SPACE_MARGIN = 64 * 1024 * 1024



class WorkDir:
    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        root = Path(path) if path else Path(tempfile.gettempdir()) / "recarchive-work"
        root.mkdir(parents=True, exist_ok=True)
        self.path = root
        self._host = _host_tag()
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
        os.close(fd)
        path = Path(name)
        try:
            yield path
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


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
