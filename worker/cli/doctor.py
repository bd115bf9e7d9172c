"""``recarchive doctor``: check the set-up without archiving, one line per check (CONTRACT §1).

Exit 0 when every check holds, 1 when one fails, 2 when the config itself (or a token variable it
names) is wrong: the config error's one line is still printed in the doctor's format, and the other
checks still run for the accounts whose token could be read.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from config import config_path, load_settings
from storage import open_storage
from worker.cli._common import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, config_option, emit_json
from worker.daemon.doctor import Check, fail, ok, run_checks
from worker.errors import ConfigError
from worker.logs import setup_logging

__all__ = ["doctor"]

SCHEMA = "recarchive.doctor/1"
_STYLE = {"ok": "green", "FAIL": "red", "skip": "yellow"}


@click.command()
@config_option
@click.option("--broker-timeout", type=click.FloatRange(0.1, 60), default=3.0, show_default=True,
              help="Seconds to wait for the broker's answer.")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON on stdout.")
@click.option("-v", "--verbose", count=True, help="Log output while checking (-vv for debug).")
def doctor(config_file: str | None, broker_timeout: float, as_json: bool, verbose: int) -> None:
    """Check config, each account's token (one cheap vendor call), ffmpeg and the rendition encoder,
    storage permissions, conditional writes, Object Lock, the broker. Archives nothing."""
    import logging

    setup_logging(logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.ERROR)
    checks: list[Check] = []
    show = _printer(as_json)
    path = config_path(config_file)
    try:
        settings = load_settings(config_file, tokens_for=set())
    except ConfigError as exc:
        show(fail("config", _config_message(exc)))
        _finish(as_json, [fail("config", _config_message(exc))], config_failed=True)
        return
    first = ok("config", f"{path}: {len(settings.accounts)} account(s), storage {settings.storage.url}")
    checks.append(first)
    show(first)
    accounts, readable = [], set()
    for account in settings.accounts:
        try:
            accounts.append(load_settings(config_file, tokens_for={account.name}).account(account.name))
            readable.add(account.name)
        except ConfigError as exc:
            accounts.append(account)
            checks.append(fail("config", _config_message(exc), account.name))
            show(checks[-1])
    settings = settings.model_copy(update={"accounts": accounts})
    storage = open_storage(settings.storage)
    try:
        for check in run_checks(settings, storage, token_accounts=readable, broker_timeout=broker_timeout):
            checks.append(check)
            show(check)
    finally:
        storage.close()
    _finish(as_json, checks, config_failed=any(c.failed and c.name == "config" for c in checks))


def _config_message(exc: ConfigError) -> str:
    return str(exc).removeprefix("config error: ")


def _printer(as_json: bool) -> Callable[[Check], None]:
    def show(check: Check) -> None:
        if as_json:
            return
        status = click.style(f"{check.status:<4}", fg=_STYLE[check.status], bold=check.failed)
        click.echo(status + check.line()[4:])

    return show



def _finish(as_json: bool, checks: list[Check], *, config_failed: bool) -> None:
    failed = [c for c in checks if c.failed]
    if as_json:
        emit_json({"schema": SCHEMA, "ok": not failed, "failed": len(failed),
                   "checks": [c.as_dict() for c in checks]})
    else:
        click.echo(f"{len(failed)} check(s) failed" if failed else "every check passed")
    sys.exit(EXIT_CONFIG if config_failed else EXIT_FAILED if failed else EXIT_OK)
