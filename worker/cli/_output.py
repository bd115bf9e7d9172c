"""Output people and scripts can both use: never truncated, plain off a terminal, readable durations.

- ``stdout_console()``: on a terminal, colour and the terminal's width; rich never breaks a line it
  prints (``soft_wrap``), so a key or a SHA-256 is never cut in two by an inserted newline.
- ``print_table``: on a terminal a rich table whose cells fold (an id or a hash wraps onto the next
  line whole, never ``…``); piped or redirected, plain tab-separated lines with a header line, one
  row per line, so ``grep``, ``cut -f`` and ``awk -F'\\t'`` see every value complete.
- ``human_duration``: ``42 s``, ``3 m 2 s``, ``1 h 04 m``, ``2 d 03 h``.
- ``schema(name)``: the ``"schema"`` value every ``--json`` document starts with
  (``recarchive.status/1``); its number changes only when a field changes meaning or goes away.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["human_duration", "print_table", "schema", "stdout_console"]

def schema(name: str, version: int = 1) -> str:
    return f"recarchive.{name}/{version}"


def stdout_console() -> Console:
    return Console(soft_wrap=True, highlight=False)


def human_duration(seconds: float) -> str:
    """A duration as an operator reads it: two units at most, the second zero-padded past minutes."""
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f} s" if seconds % 1 else f"{int(seconds)} s"
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours:02d} h"
    if hours:
        return f"{hours} h {minutes:02d} m"
    if minutes:
        return f"{minutes} m {secs} s"
    return f"{secs} s"


def print_table(console: Console, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *,
                right: Sequence[str] = ()) -> None:
    """``rows`` under ``columns``: a folding rich table on a terminal, tab-separated lines otherwise."""
    if not console.is_terminal:
        # written as is: rich would expand the tabs into spaces
        lines = [title, "\t".join(columns)]
        lines += ["\t".join(cell.replace("\t", " ").replace("\n", " ") for cell in row) for row in rows]
        console.file.write("".join(line + "\n" for line in lines))
        console.file.flush()
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left", overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)

