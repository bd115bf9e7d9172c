"""``recarchive show``: one archived recording, found by account and id alone (CONTRACT §1).

An auditing command: it contacts no vendor, reads no token variable and writes nothing to storage
(read-only storage credentials suffice).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from config import Settings
from storage import Storage, open_storage
from worker.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    complete_accounts,
    config_option,
    emit_json,
    guarded,
    load,
)
from worker.cli._progress import Ticker
from worker.compliance.describe import describe_recording
from worker.compliance.lookup import AuditAccount, audit_account
from worker.errors import ConfigError
from worker.redact import mask_secrets

__all__ = ["find_account", "show"]


@click.command()
@config_option
@click.option("--account", "account_name", shell_complete=complete_accounts,
              required=True, help="The account the recording belongs to.")
@click.option("--id", "recording_id", required=True, help="The vendor's recording id (no date needed).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document on stdout.")
@click.option("-v", "--verbose", count=True)
@guarded
def show(config_file: str | None, account_name: str, recording_id: str, as_json: bool, verbose: int) -> None:
    """One archived recording: its objects, sizes, SHA-256, retention and legal hold, manifest entry
    and revisions. Exit 1 if it is not archived (or what the store holds already disagrees)."""
    settings = load(config_file, verbose=verbose, tokens_for=set())
    storage = open_storage(settings.storage)
    try:
        storage.check(need_object_lock=settings.retention is not None, write=False)
        account = find_account(settings, storage, account_name)
        with Ticker(enabled=not as_json, description=f"looking for {recording_id}") as tick:
            try:
                document = describe_recording(storage, account, recording_id, progress=tick)
            except ValueError as exc:
                raise ConfigError(f"--id: {exc}") from None
    finally:
        storage.close()
    if as_json:
        emit_json(document)
    else:
        _print(document)
    sys.exit(EXIT_OK if document["archived"] and not document["problems"] else EXIT_FAILED)


def find_account(settings: Settings, storage: Storage, name: str) -> AuditAccount:
    """``--account``: a configured account, or one only the store holds (an auditor's config may
    name none); exit 2 if neither knows it."""
    from providers import PROVIDERS

    try:
        return audit_account(storage, settings.accounts, name, sorted(PROVIDERS))
    except KeyError:
        raise ConfigError(f"--account: no account named {name!r} in the config or in storage") from None


def _print(document: dict[str, Any]) -> None:
    """Plain lines, never truncated (they are read by people and by grep alike)."""
    who = f"{document['account']}/{document['recording_id']}"
    if not document["archived"]:
        click.echo(f"not archived: {who} ({document['provider']}) in {document['storage']}")
        return
    click.echo(f"recording {who} ({document['provider']}), found by {document['found_by']}")
    for folder in document["folders"]:
        click.echo(f"folder {folder['folder']}")
        for revision in folder["revisions"]:
            click.echo(f"  revision {revision['revision']}: started {revision['started_at']}, "
                       f"archived {revision['archived_at']}"
                       + (f", supersedes {revision['supersedes']}" if revision.get("supersedes") else ""))
            for obj in revision["objects"]:
                click.echo(f"    {obj['role']:<9} {obj['key']}")
                click.echo(f"              {obj['size']} bytes, sha256 {obj['sha256']}, "
                           f"{obj['content_type'] or '-'}, {_lock_text(obj)}")
            manifest = revision["manifest"]
            lines = len(manifest["lines"])
            where = {"closed": f"closed manifest {manifest['key']}", "pending": f"pending entry {manifest['key']} "
                     "(its day is not closed yet)"}.get(manifest["state"], "not in any manifest")
            click.echo(f"    manifest: {where}" + (f", {lines} lines" if lines else ""))
        for key in folder["unlisted"]:
            click.echo(f"  not listed by any metadata.json: {key}")
    for problem in document["problems"]:
        click.echo(f"PROBLEM {problem['key']}: {mask_secrets(problem['problem'])} "
                   f"(expected {problem['expected']}, found {problem['found']})")


def _lock_text(obj: dict[str, Any]) -> str:
    if not obj["stored"]:
        return "MISSING from storage"
    retention = obj["retention"]
    lock = f"retention {retention['mode']} until {retention['retain_until']}" if retention else "no retention"
    hold = {True: "legal hold ON", False: "legal hold off"}.get(obj["legal_hold"], "no legal hold reported")
    return f"{lock}, {hold}"
