"""What every command shares: loading config, exit codes, error reporting, timestamps."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any, TypeVar

import click
from click.shell_completion import CompletionItem

from config import Settings, load_settings
from config.units import parse_timestamp, parse_until
from worker.errors import ArchiverError, ConfigError, StorageError, StorageUnavailable
from worker.logs import setup_logging
from worker.redact import mask_secrets

__all__ = [
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_STORAGE",
    "UNTIL_HELP",
    "check_selection",
    "complete_accounts",
    "config_option",
    "emit_json",
    "guarded",
    "load",
    "pick_accounts",
    "selection_options",
    "timestamp",
    "until_timestamp",
    "unused_config_option",
]

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_STORAGE = 0, 1, 2, 3

F = TypeVar("F", bound=Callable[..., Any])

config_option = click.option(
    "--config", "config_file", type=click.Path(dir_okay=False), default=None,
    help="Config file (default: $RECARCHIVE_CONFIG, then ./recarchive.toml).",
)

def complete_accounts(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Shell completion of ``--account``: the account names of the config the command line names
    (or ``$RECARCHIVE_CONFIG`` / ``./recarchive.toml``). Reads no token; a config that cannot be read
    completes nothing rather than printing an error into the shell."""
    try:
        settings = load_settings(ctx.params.get("config_file"), tokens_for=set())
    except (ArchiverError, OSError, ValueError):
        return []
    return [CompletionItem(a.name, help=a.provider) for a in settings.accounts if a.name.startswith(incomplete)]


#: CONTRACT §1: every command takes --config; demo and simulate accept it and need none
unused_config_option = click.option(
    "--config", "config_file", type=click.Path(dir_okay=False), default=None,
    help="Accepted like every command's; this one uses no configuration.",
)


def guarded(func: F) -> F:
    """Turn our errors into the contract's exit codes with one clear line, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            _fail(str(exc) if str(exc).startswith("config error") else f"config error: {exc}", EXIT_CONFIG)
        except StorageUnavailable as exc:
            _fail(f"storage unavailable: {exc}", EXIT_STORAGE)
        except StorageError as exc:
            _fail(f"storage error: {exc}", EXIT_STORAGE)
        except KeyboardInterrupt:
            _fail("interrupted", 130)

    return wrapper  # type: ignore[return-value]


def _fail(message: str, code: int) -> None:
    click.echo(f"recarchive: {mask_secrets(message)}", err=True)
    sys.exit(code)


def load(config_file: str | None, *, verbose: int = 0, tokens_for: Collection[str] | None = None) -> Settings:
    """The settings; ``tokens_for`` names the accounts whose token variables are read (``None``: all;
    an empty set for the auditing commands, which contact no vendor: CONTRACT §1)."""
    setup_logging(logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    return load_settings(config_file, tokens_for=tokens_for)


def pick_accounts(settings: Settings, names: tuple[str, ...] | list[str]) -> list[Any]:
    if not names:
        return list(settings.accounts)
    known = {a.name: a for a in settings.accounts}
    missing = [n for n in names if n not in known]
    if missing:
        raise ConfigError(f"--account: no account named {missing[0]!r} in the config")
    return [known[n] for n in names]


def timestamp(_ctx: click.Context | None, param: click.Parameter | None, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def until_timestamp(_ctx: click.Context | None, param: click.Parameter | None, value: str | None) -> datetime | None:
    """``--until``, one rule for every command: a timestamp is exclusive, a bare date covers its whole
    UTC day (``--until 2026-11-30`` ends at 2026-12-01T00:00:00Z)."""
    if value is None:
        return None
    try:
        return parse_until(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


#: the help text every ``--until`` shows
UNTIL_HELP = "End of the window: a timestamp is exclusive, a bare date (YYYY-MM-DD) covers that whole UTC day."


def emit_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, default=str, ensure_ascii=False))


def selection_options(account_help: str) -> Callable[[F], F]:
    """``--account NAME (--id ID... | --since TS --until TS)``: how ``hold`` and ``rearchive`` (CONTRACT
    §1) choose recordings; ``check_selection`` enforces the either-or."""
    def apply(func: F) -> F:
        for option in reversed((
            click.option("--account", "account_name", shell_complete=complete_accounts, required=True,
                         help=account_help),
            click.option("--id", "ids", multiple=True, help="A recording id (repeatable)."),
            click.option("--since", callback=timestamp, help="Recordings that started at or after this (ISO 8601)."),
            click.option("--until", callback=until_timestamp, help=UNTIL_HELP),
        )):
            func = option(func)
        return func
    return apply


def check_selection(command: str, ids: tuple[str, ...], since: datetime | None, until: datetime | None) -> None:
    if bool(ids) == bool(since or until) or (not ids and not (since and until)):
        raise ConfigError(f"{command} needs either --id ID... or both --since and --until")
