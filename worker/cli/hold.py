"""``recarchive hold``: put or lift a legal hold on archived recordings, by id or by window."""

from __future__ import annotations

import sys
from datetime import datetime

import click
from rich.console import Console

from storage import open_storage
from worker.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    check_selection,
    config_option,
    emit_json,
    guarded,
    load,
    pick_accounts,
    selection_options,
)
from worker.cli._output import schema
from worker.compliance.holds import apply_hold
from worker.errors import ConfigError
from worker.redact import mask_secrets

__all__ = ["hold"]


@click.command()
@config_option
@selection_options("The account whose recordings to hold.")
@click.option("--on/--off", "on", default=None, help="Put (--on) or lift (--off) the legal hold.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.option("-v", "--verbose", count=True)
@guarded
def hold(config_file: str | None, account_name: str, ids: tuple[str, ...], since: datetime | None,
         until: datetime | None, on: bool | None, as_json: bool, verbose: int) -> None:
    """Put or lift an Object Lock legal hold on every object of the matching archived recordings
    (original, rendition, metadata.json, every revision), and nothing else. Retention is untouched."""
    if on is None:
        raise ConfigError("hold needs --on or --off")
    check_selection("hold", ids, since, until)
    if since and until and since >= until:
        raise ConfigError("--since must be before --until")
    settings = load(config_file, verbose=verbose, tokens_for=set())  # contacts no vendor: reads no token
    account = pick_accounts(settings, [account_name])[0]
    storage = open_storage(settings.storage)
    try:
        # a legal hold is an Object Lock feature: on S3 the bucket must have it (exit 3 if not)
        storage.check(need_object_lock=storage.enforces_retention or settings.retention is not None)
        result = apply_hold(storage, account, on=on, ids=ids, since=since, until=until)
    finally:
        storage.close()
    if as_json:
        emit_json({"schema": schema("hold"), **result.as_dict()})
    else:
        console = Console()
        state = "on" if on else "off"
        for recording in result.recordings:
            console.print(f"{recording.recording_id}: legal hold {state} ({len(recording.keys)} objects)",
                          highlight=False)
        for rid in result.not_found:
            console.print(f"[red]not archived:[/] {rid}", highlight=False)
        for error in result.errors:
            console.print(f"[red]error:[/] {mask_secrets(error)}", highlight=False)
        if not result.recordings and not result.not_found:
            console.print("no archived recording matches")
    sys.exit(EXIT_OK if result.ok else EXIT_FAILED)
