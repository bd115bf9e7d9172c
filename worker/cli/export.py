"""``recarchive export``: hand chosen recordings over with their proof (CONTRACT §1).

An auditing command: it contacts no vendor, reads no token variable and writes nothing to storage
(read-only storage credentials suffice). It writes only into ``--out``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from storage import open_storage
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
from worker.cli.show import find_account
from worker.compliance.export import ExportResult, export_recordings
from worker.errors import ConfigError
from worker.redact import mask_secrets

__all__ = ["export"]


@click.command()
@config_option
@click.option("--account", "account_name", shell_complete=complete_accounts,
              required=True, help="The account the recordings belong to.")
@click.option("--id", "ids", multiple=True, required=True, help="A recording id (repeatable).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write into; must not exist or be empty.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.option("-v", "--verbose", count=True)
@guarded
def export(config_file: str | None, account_name: str, ids: tuple[str, ...], out: Path, as_json: bool,
           verbose: int) -> None:
    """Copy each recording's objects and metadata.json, its manifest lines and the manifest chain,
    re-checking every SHA-256 on the way out; write MANIFEST.sha256 (sha256sum -c format) of what
    was written. Exit 1 if a recording is not archived or a hash does not match."""
    settings = load(config_file, verbose=verbose, tokens_for=set())
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out: {out} exists and is not an empty folder")
    storage = open_storage(settings.storage)
    try:
        storage.check(need_object_lock=settings.retention is not None, write=False)
        account = find_account(settings, storage, account_name)
        with Ticker(enabled=not as_json, description="exporting") as tick:
            result = export_recordings(storage, account, list(dict.fromkeys(ids)), out, progress=tick)
    finally:
        storage.close()
    if as_json:
        emit_json(result.as_dict())
    else:
        _print(result)
    sys.exit(EXIT_OK if result.ok else EXIT_FAILED)


def _print(result: ExportResult) -> None:
    archived = [r for r in result.recordings if r.get("archived")]
    click.echo(f"exported {len(archived)} recording(s) of {result.account}: {len(result.files)} files, "
               f"{result.bytes} bytes, into {result.out}")
    if result.chain:
        click.echo(f"manifest chain {result.chain['from']} .. {result.chain['head']} "
                   f"(head sha256 {result.chain['head_sha256']})")
    click.echo(f"check with: cd {result.out} && sha256sum -c MANIFEST.sha256")
    for problem in result.problems:
        click.echo(f"PROBLEM {problem.key}: {mask_secrets(problem.problem)}"
                   + (f" (expected {problem.expected}, found {problem.found})" if problem.expected else ""))
