"""``recarchive run``: discover and archive in this process, once or every ``discover_every``."""

from __future__ import annotations

import sys
import time
from datetime import datetime

import click
from rich.console import Console

from worker.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    UNTIL_HELP,
    config_option,
    emit_json,
    guarded,
    load,
    pick_accounts,
    timestamp,
    until_timestamp,
)
from worker.cli._render import PassProgress, print_summary
from worker.cli._session import session
from worker.pipeline.passes import run_pass

__all__ = ["run"]


@click.command()
@config_option
@click.option("--once", is_flag=True, help="One pass, then exit.")
@click.option("--account", "accounts", multiple=True, help="Only this account (repeatable).")
@click.option("--since", callback=timestamp, help="Override the window start (ISO 8601; naive = UTC).")
@click.option("--until", callback=until_timestamp, help=UNTIL_HELP)
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Recordings archived at once.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@guarded
def run(config_file: str | None, once: bool, accounts: tuple[str, ...], since: datetime | None,
        until: datetime | None, concurrency: int, as_json: bool, verbose: int) -> None:
    """Discover new recordings for each account and archive them, with no broker needed."""
    settings = load(config_file, verbose=verbose)
    chosen = pick_accounts(settings, accounts)
    interval = settings.schedule.discover_every.total_seconds()
    with session(settings, concurrency=concurrency) as ctx:
        while True:
            with PassProgress(enabled=None if not as_json else False) as progress:
                summary = run_pass(ctx, chosen, since=since, until=until, concurrency=concurrency, report=progress)
            if as_json:
                emit_json(summary.as_dict())
            else:
                print_summary(summary, Console(width=None if sys.stdout.isatty() else 132))
            if once:
                sys.exit(EXIT_FAILED if summary.failed else EXIT_OK)
            time.sleep(interval)
