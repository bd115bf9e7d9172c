"""The work dir: where a recording is spooled while it is checked, and cleaned up whatever happens.

A download first checks that the disk can hold it (the vendor's announced size plus a margin), so a
large recording fails with a clear message instead of a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from worker.errors import StorageError

__all__ = ["InsufficientSpace", "WorkDir"]

#: free space kept beyond the announced size, for renditions and the filesystem's own needs
SPACE_MARGIN = 64 * 1024 * 1024


class InsufficientSpace(StorageError):
    reason = "insufficient_space"


class WorkDir:
    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        root = Path(path) if path else Path(tempfile.gettempdir()) / "recarchive-work"
        root.mkdir(parents=True, exist_ok=True)
        self.path = root

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
        fd, name = tempfile.mkstemp(prefix="rec-", suffix=suffix, dir=self.path)
        os.close(fd)
        path = Path(name)
        try:
            yield path
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
