"""Running ffmpeg as a child process without ever letting a pipe fill up or a process linger.

Private to ``worker/media/inspect.py``: log pipes are drained by threads into sinks that keep bounded
state, and ``_Child.close`` always kills and reaps.
"""

from __future__ import annotations

import functools
import subprocess
import threading
from collections.abc import Callable
from typing import IO

from worker.errors import ConfigError

__all__ = ["STDERR_CAP", "Capped", "Child"]

STDERR_CAP = 1 << 20  # ffmpeg -i output kept for parsing (headers with huge tags are cut here)


class Child:
    """One ffmpeg process whose log pipes are drained by threads, so a full pipe never blocks it.

    Lines are handed to sinks as they arrive (read in bounded pieces: a line longer than 64 KiB is
    passed on cut, its continuation dropped). ``close`` always kills what is left and reaps it.
    """

    def __init__(
        self,
        cmd: list[str],
        *,
        stderr_sink: Callable[[str], None],
        stdout_sink: Callable[[str], None] | None = None,
    ) -> None:
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            raise ConfigError(f"cannot run ffmpeg ({cmd[0]}): {exc.strerror or exc}") from exc
        pipes: list[tuple[IO[bytes] | None, Callable[[str], None]]] = [(self.proc.stderr, stderr_sink)]
        if stdout_sink is not None:
            pipes.append((self.proc.stdout, stdout_sink))
        self._threads = [
            threading.Thread(target=_drain, args=(pipe, sink), daemon=True, name="ffmpeg-drain") for pipe, sink in pipes
        ]
        for thread in self._threads:
            thread.start()

    def wait(self, timeout: float | None) -> bool:
        """Wait for exit; on timeout kill it. Returns True when it had to be killed."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return True
        return False

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        self.kill()
        for thread in self._threads:
            thread.join()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def _drain(pipe: IO[bytes] | None, sink: Callable[[str], None]) -> None:
    if pipe is None:
        return
    continuation = False
    for chunk in iter(functools.partial(pipe.readline, 65536), b""):
        if not continuation:
            sink(chunk.decode("utf-8", "replace"))
        continuation = not chunk.endswith(b"\n")


class Capped:
    """Keeps the first ``cap`` characters of a stream of lines."""

    def __init__(self, cap: int = STDERR_CAP) -> None:
        self._parts: list[str] = []
        self._left = cap

    def __call__(self, line: str) -> None:
        if self._left > 0:
            self._parts.append(line[: self._left])
            self._left -= len(line)

    @property
    def text(self) -> str:
        return "".join(self._parts)
