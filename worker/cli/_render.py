"""Showing a pass to a person: a rich progress bar on a terminal, a table per account at the end.

Library code never prints; it reports events through a callback, and this module turns them into
output (s3transfer's subscribers). Nothing shown here carries a token or a signed-URL query.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from worker.cli._output import human_duration, print_table, stdout_console
from worker.pipeline.archive import Outcome
from worker.pipeline.passes import AccountSummary, PassSummary
from worker.redact import mask_secrets

__all__ = ["PassProgress", "human_bytes", "print_summary"]


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(size) < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


class PassProgress:
    """A progress bar per pass on stderr when it is a terminal; silent otherwise."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.console = Console(stderr=True)
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._progress: Progress | None = None
        self._task: Any = None
        self._total = 0

    def __enter__(self) -> PassProgress:
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[bytes]}"), TimeElapsedColumn(), console=self.console, transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("archiving", total=0, bytes="")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, event: str, payload: Any) -> None:
        if self._progress is None:
            return
        if event == "started":  # the listing streams: the total grows as recordings are handed out
            self._total += 1
            self._progress.update(self._task, total=self._total)
        elif event == "finished":
            acct, _result = payload
            self._progress.update(self._task, advance=1, bytes=human_bytes(acct.bytes))
        elif event == "account_failed":
            self.console.print(f"[red]account {payload.account}: {mask_secrets(payload.error or '')}")


def print_summary(summary: PassSummary, console: Console | None = None, *, title: str = "recarchive pass") -> None:
    """A table per pass (tab-separated lines off a terminal, see ``_output``), then each parked
    recording on a line of its own."""
    console = console or stdout_console()
    columns = ("account", "provider", "found", "archived", "unchanged", "not ready", "no rec.",
               "skipped", "parked", "bytes", "status")
    print_table(console, f"{title} — {human_duration(summary.seconds)}", columns,
                [_row(acct) for acct in summary.accounts],
                right=[c for c in columns if c not in ("account", "provider", "status")])
    for acct in summary.accounts:
        for notice in acct.notices:
            console.print(f"  {acct.account}: {mask_secrets(notice)}", highlight=False)
        for value, count in sorted(acct.unknown_statuses.items()):
            console.print(f"  {acct.account}: unknown status {value!r} on {count} recording(s): held as not ready",
                          highlight=False)
        for result in acct.results:
            if result.outcome is Outcome.PARKED:
                console.out(f"parked {acct.account}/{result.recording_id}: {result.reason}: "
                            f"{mask_secrets(result.message or '')}", highlight=False)


def _row(acct: AccountSummary) -> list[str]:
    data = acct.as_dict(with_results=False)
    status = "ok" if not acct.failed else ("FAILED: " + mask_secrets(acct.error) if acct.error else "parked")
    return [acct.account, acct.provider, str(data["found"]), str(data["archived"]), str(data["unchanged"]),
            str(data["not_ready"]), str(data["no_recording"]), str(data["deleted"]), _parked(data),
            human_bytes(acct.bytes), status]


def _parked(data: dict[str, Any]) -> str:
    earlier = int(data.get("parked_earlier") or 0)
    return f"{data['parked']} (+{earlier} earlier)" if earlier else str(data["parked"])
