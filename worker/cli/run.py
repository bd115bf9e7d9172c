"""``recarchive run``: discover and archive in this process, once or every ``discover_every``."""

from __future__ import annotations

import logging
import sys
import time
from datetime import datetime
from typing import NoReturn

import click
from rich.console import Console

from config import Settings
from config.settings import AccountSettings
from storage import Storage
from worker.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    UNTIL_HELP,
    complete_accounts,
    config_option,
    emit_json,
    guarded,
    load,
    pick_accounts,
    timestamp,
    until_timestamp,
)
from worker.cli._output import human_duration, print_table, schema, stdout_console
from worker.cli._render import PassProgress, print_summary
from worker.cli._session import session
from worker.daemon.gauges import account_health, textfile_path, write_textfile
from worker.pipeline.dryrun import dry_run_pass
from worker.pipeline.passes import PassSummary, run_pass
from worker.redact import mask_secrets

__all__ = ["run"]

log = logging.getLogger(__name__)


@click.command()
@config_option
@click.option("--once", is_flag=True, help="One pass, then exit.")
@click.option("--account", "accounts", shell_complete=complete_accounts,
              multiple=True, help="Only this account (repeatable).")
@click.option("--since", callback=timestamp, help="Override the window start (ISO 8601; naive = UTC).")
@click.option("--until", callback=until_timestamp, help=UNTIL_HELP)
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Recordings archived at once.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.option("--dry-run", is_flag=True, help="List what one pass would archive; fetch no media, write nothing.")
@click.option("--metrics-file", type=click.Path(dir_okay=False), default=None,
              help="After each pass, write the accounts' gauges to this file for node_exporter's textfile "
                   "collector (default: $RECARCHIVE_METRICS_TEXTFILE; none when unset).")
@click.option("-v", "--verbose", count=True, help="One log line per recording (-vv for debug).")
@guarded
def run(config_file: str | None, once: bool, accounts: tuple[str, ...], since: datetime | None,
        until: datetime | None, concurrency: int, as_json: bool, dry_run: bool, metrics_file: str | None,
        verbose: int) -> None:
    """Discover new recordings for each account and archive them, with no broker needed."""
    # only the chosen accounts' vendors are contacted, so only their token variables are read
    settings = load(config_file, verbose=verbose, tokens_for=set(accounts) if accounts else None)
    chosen = pick_accounts(settings, accounts)
    if dry_run:
        _dry_run(settings, chosen, since, until, as_json)
    interval = settings.schedule.discover_every.total_seconds()
    with session(settings, concurrency=concurrency) as ctx:
        while True:
            with PassProgress(enabled=None if not as_json else False) as progress:
                summary = run_pass(ctx, chosen, since=since, until=until, concurrency=concurrency, report=progress)
            _export_metrics(metrics_file, ctx.storage, chosen)
            if as_json:
                emit_json({"schema": schema("pass"), **summary.as_dict()})
            else:
                print_summary(summary, stdout_console())
            if once:
                sys.exit(EXIT_FAILED if summary.failed else EXIT_OK)
            time.sleep(interval)


def _export_metrics(option: str | None, storage: Storage, accounts: list[AccountSettings]) -> None:
    """The accounts' gauges for node_exporter's textfile collector, read back from the state the pass
    just wrote; a failed export is logged, never a failed pass."""
    path = textfile_path(option)
    if path is None:
        return
    try:
        write_textfile(path, health=[account_health(storage, a.name, a.provider) for a in accounts])
    except OSError as exc:
        log.error("metrics textfile %s not written: %s", path, exc.strerror or exc)


def _dry_run(settings: Settings, chosen: list[AccountSettings], since: datetime | None, until: datetime | None,
             as_json: bool) -> NoReturn:
    """One pass's listing and triage, nothing fetched or written (``worker.pipeline.dryrun``); exit 1
    only when an account could not be listed."""
    with session(settings, concurrency=1, check_media=False, write=False) as ctx:
        summary = dry_run_pass(ctx, chosen, since=since, until=until)
    failed = any(a.error for a in summary.accounts)
    if as_json:
        emit_json({**summary.as_dict(), "schema": schema("dry-run"), "dry_run": True, "ok": not failed})
    else:
        _print_dry_run(summary, stdout_console())
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


def _print_dry_run(summary: PassSummary, console: Console) -> None:
    columns = ("account", "provider", "since", "until", "found", "would archive", "would park", "archived",
               "not ready", "parked earlier", "no rec.", "deleted", "status")
    rows = []
    for acct in summary.accounts:
        data = acct.as_dict(with_results=False)
        window = data["window"] or {}
        rows.append((acct.account, acct.provider, window.get("since") or "-", window.get("until") or "-",
                     str(data["found"]), str(data["would_archive"]), str(data["would_park"]), str(data["unchanged"]),
                     str(data["not_ready"]), str(data["parked_earlier"]), str(data["no_recording"]),
                     str(data["deleted"]), "ok" if not acct.error else f"FAILED: {mask_secrets(acct.error)}"))
    print_table(console, f"recarchive run --dry-run — nothing fetched or written ({human_duration(summary.seconds)})",
                columns, rows, right=columns[4:-1])
    for acct in summary.accounts:
        for result in acct.results:
            where = f" -> {result.keys[0]}" if result.keys else ""
            why = f" {result.reason}: {mask_secrets(result.message or '')}" if result.reason else \
                f" ({result.message})" if result.message else ""
            console.out(f"{str(result.outcome).replace('_', ' ')} {acct.account}/{result.recording_id}{where}{why}",
                        highlight=False)
        if acct.results_dropped:
            console.out(f"... and {acct.results_dropped} more for {acct.account} (see --json counts)", highlight=False)
