"""``recarchive rearchive``: fetch chosen recordings again with fresh links, even parked ones."""

from __future__ import annotations

import sys
from datetime import datetime

import click
from rich.console import Console

from providers.base import Window
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
from worker.cli._session import session
from worker.errors import AccountError, ArchiverError, StorageUnavailable
from worker.pipeline.archive import ArchiveResult, Outcome, archive_recording
from worker.pipeline.discovery import discover
from worker.redact import mask_secrets

__all__ = ["rearchive"]


@click.command()
@config_option
@selection_options("The account to re-archive from.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.option("-v", "--verbose", count=True)
@guarded
def rearchive(config_file: str | None, account_name: str, ids: tuple[str, ...], since: datetime | None,
              until: datetime | None, as_json: bool, verbose: int) -> None:
    """Re-archive by id or window. Unchanged bytes are reported `unchanged` and nothing is written;
    changed bytes are stored as a new revision beside the earlier copy, which is never touched."""
    check_selection("rearchive", ids, since, until)
    settings = load(config_file, verbose=verbose, tokens_for={account_name})
    account = pick_accounts(settings, [account_name])[0]
    results: list[ArchiveResult] = []
    errors: list[dict[str, str | None]] = []  # structured: recording_id (None: the account), reason, problem
    with session(settings, concurrency=1) as ctx:
        provider = ctx.handle(account).provider
        try:
            if ids:
                recordings = []
                for rid in ids:
                    try:
                        recordings.append(provider.get_recording(rid))
                    except (AccountError, StorageUnavailable):
                        raise
                    except ArchiverError as exc:
                        errors.append({"recording_id": rid, "reason": exc.reason, "problem": mask_secrets(str(exc))})
            else:
                assert since is not None and until is not None
                recordings = discover(ctx, account, Window(since, until))
            for recording in recordings:
                results.append(archive_recording(ctx, account, recording, force=True))
        except AccountError as exc:
            errors.append({"recording_id": None, "reason": exc.reason, "problem": mask_secrets(str(exc))})
    failed = bool(errors) or any(r.outcome is Outcome.PARKED for r in results)
    if as_json:
        emit_json({"schema": schema("rearchive"), "account": account.name, "ok": not failed, "errors": errors,
                   "recordings": [r.as_dict() for r in results]})
    else:
        console = Console()
        for result in results:
            detail = f" {result.reason}: {result.message}" if result.reason else ""
            console.print(f"{result.recording_id}: {result.outcome}{detail}")
        for error in errors:
            where = f"{error['recording_id']}: " if error["recording_id"] else ""
            console.print(f"[red]error:[/] {where}{error['problem']}", highlight=False)
    sys.exit(EXIT_FAILED if failed else EXIT_OK)
