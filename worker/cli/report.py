"""``recarchive report``: completeness per account and day — vendor listing vs archive, every gap."""

from __future__ import annotations

import sys
from datetime import timedelta

import click

from config.units import parse_day, parse_until
from worker.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    complete_accounts,
    config_option,
    emit_json,
    guarded,
    load,
    pick_accounts,
)
from worker.cli._output import print_table, schema, stdout_console
from worker.cli._progress import Ticker
from worker.cli._session import session
from worker.compliance.completeness import AccountReport, completeness_report
from worker.errors import ConfigError
from worker.redact import mask_secrets

__all__ = ["report"]

_COLUMNS = ("not_ready", "parked", "deleted_at_vendor", "no_recording", "missing")


def _day(_ctx: click.Context, _param: click.Parameter, value: str) -> object:
    try:
        return parse_day(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _last_day(_ctx: click.Context, _param: click.Parameter, value: str) -> object:
    """``--until`` by the rule every command shares (``parse_until``): the last day the window touches."""
    try:
        return (parse_until(value) - timedelta(microseconds=1)).date()
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@config_option
@click.option("--since", required=True, callback=_day, help="First day, inclusive (YYYY-MM-DD, UTC).")
@click.option("--until", required=True, callback=_last_day, help="Last day: a bare date (YYYY-MM-DD, UTC) is "
              "inclusive; a timestamp is exclusive, the report ends with the day it falls in.")
@click.option("--account", "accounts", shell_complete=complete_accounts,
              multiple=True,
              help="Only this account (repeatable); only its token variable is read.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report on stdout.")
@click.option("-v", "--verbose", count=True)
@guarded
def report(config_file: str | None, since: object, until: object, accounts: tuple[str, ...], as_json: bool,
           verbose: int) -> None:
    """Per account and day: recordings the vendor lists vs recordings archived, and the id and reason
    of every gap (not ready, parked, deleted at vendor, no recording, missing). Exit 1 on a missing or
    parked recording."""
    from datetime import date

    assert isinstance(since, date) and isinstance(until, date)
    if since > until:
        raise ConfigError("--since must not be after --until")
    settings = load(config_file, verbose=verbose, tokens_for=set(accounts) if accounts else None)
    chosen = pick_accounts(settings, accounts)
    with session(settings, concurrency=1, check_media=False) as ctx, \
            Ticker(enabled=not as_json, description="listing the vendors") as tick:
        reports = completeness_report(ctx, chosen, since, until, progress=tick)
    failed = any(r.failed for r in reports)
    if as_json:
        emit_json({"schema": schema("report"), "since": f"{since:%Y-%m-%d}", "until": f"{until:%Y-%m-%d}",
                   "ok": not failed, "accounts": [r.as_dict() for r in reports]})
    else:
        _print(reports)
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


def _print(reports: list[AccountReport]) -> None:
    console = stdout_console()
    columns = ("account", "day", "listed", "archived", "not ready", "parked", "deleted", "no rec.", "missing")
    print_table(console, "recarchive completeness", columns,
                [(account.account, f"{day.day:%Y-%m-%d}", str(day.listed), str(day.archived),
                  *(str(day.counts().get(c, 0)) for c in _COLUMNS))
                 for account in reports for day in account.days],
                right=columns[2:])
    for account in reports:
        if account.error:
            console.print(f"[red]{account.account}: {mask_secrets(account.error)}[/]", highlight=False)
        for day in account.days:
            for gap in day.gaps:
                style = "red" if gap.reason in ("missing", "parked") else "yellow"
                detail = f" ({mask_secrets(gap.detail)})" if gap.detail else ""
                console.print(f"[{style}]{gap.reason}[/] {account.account} {day.day:%Y-%m-%d} "
                              f"{gap.recording_id}{detail}", highlight=False)
