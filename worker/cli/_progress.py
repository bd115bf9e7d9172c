"""A one-line progress ticker on stderr for the long audits (verify, status, show, export).

Shown only on a terminal and never with ``--json``: piped or scripted output stays plain lines. The
totals are unknown by design — the archive is listed as it is checked, never counted first (that
would be a second full listing) or held in memory.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

__all__ = ["Ticker"]


class Ticker:
    """``with Ticker(enabled) as tick: tick("checked 10 recordings")``; a no-op when disabled."""

    def __init__(self, enabled: bool, description: str = "") -> None:
        self.console = Console(stderr=True)
        self.enabled = enabled and self.console.is_terminal
        self._description = description
        self._progress: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> Ticker:
        if self.enabled:
            self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                      console=self.console, transient=True)
            self._progress.start()
            self._task = self._progress.add_task(self._description)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __call__(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=text)
