"""``recarchive verify``: re-read and re-hash every archived object against its metadata.json."""

from __future__ import annotations

import sys
from datetime import datetime
from types import TracebackType
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from storage import open_storage
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
from worker.cli._output import schema, stdout_console
from worker.cli._render import human_bytes
from worker.compliance.verify import VerifyReport, audit_targets, verify_archive
from worker.daemon.gauges import textfile_path, write_textfile
from worker.errors import ConfigError
from worker.redact import mask_secrets

__all__ = ["verify"]


class _VerifyProgress:
    """Recordings and bytes checked so far, on stderr when it is a terminal (the total is unknown:
    the archive is listed as it is checked, never held in memory)."""

    def __init__(self, enabled: bool) -> None:
        self.console = Console(stderr=True)
        self.enabled = enabled and self.console.is_terminal
        self._progress: Progress | None = None
        self._task: Any = None
        self._recordings = 0
        self._bytes = 0

    def __enter__(self) -> _VerifyProgress:
        if self.enabled:
            self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                      console=self.console, transient=True)
            self._progress.start()
            self._task = self._progress.add_task("verifying")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, event: str, payload: Any) -> None:
        if self._progress is not None and event == "discover":
            self._progress.update(self._task, description=f"finding the accounts in storage: {payload} keys listed")
        if self._progress is None or event != "folder":
            return
        self._recordings += payload.recordings
        self._bytes += payload.bytes
        self._progress.update(self._task, description=f"verified {self._recordings} recordings, "
                                                      f"{human_bytes(self._bytes)}")


@click.command()
@config_option
@click.option("--account", "account_name", shell_complete=complete_accounts,
              default=None, help="Only this account.")
@click.option("--since", callback=timestamp, help="Recordings that started at or after this (ISO 8601).")
@click.option("--until", callback=until_timestamp, help=UNTIL_HELP)
@click.option("--deep", is_flag=True, help="Also decode the media and compare its duration.")
@click.option("--manifests", is_flag=True, help="Also check the daily manifest hash chain.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report on stdout.")
@click.option("--metrics-file", type=click.Path(dir_okay=False), default=None,
              help="Write the verify gauges (last run, problems per account) to this file for node_exporter's "
                   "textfile collector (default: $RECARCHIVE_METRICS_TEXTFILE; none when unset).")
@click.option("-v", "--verbose", count=True)
@guarded
def verify(config_file: str | None, account_name: str | None, since: datetime | None, until: datetime | None,
           deep: bool, manifests: bool, as_json: bool, metrics_file: str | None, verbose: int) -> None:
    """Fixity check: size and SHA-256 of every archived object against its metadata.json.
    Exit 1 if anything is missing or differs, naming each key."""
    if since and until and since >= until:
        raise ConfigError("--since must be before --until")
    settings = load(config_file, verbose=verbose, tokens_for=set())  # auditing: no vendor, no token
    chosen = pick_accounts(settings, [account_name]) if account_name else None
    if deep:
        from worker.media.inspect import ensure_ffmpeg

        ensure_ffmpeg()
    storage = open_storage(settings.storage)
    try:
        storage.check(need_object_lock=settings.retention is not None, write=False)
        with _VerifyProgress(enabled=not as_json) as progress:
            # without --account: what the store holds, not only what the config names
            # (a windowed check finds them from the manifests and state, not by listing everything)
            accounts, unconfigured = (chosen, []) if chosen else \
                audit_targets(storage, settings, progress, thorough=since is None and until is None)
            report = verify_archive(storage, settings, accounts, since=since, until=until, deep=deep,
                                    manifests=manifests, progress=progress)
            report.unconfigured = unconfigured
    finally:
        storage.close()
    _export_metrics(metrics_file, report)
    if as_json:
        emit_json({"schema": schema("verify"), "storage": storage.url, **report.as_dict()})
    else:
        _print(report, storage.url)
    sys.exit(EXIT_OK if report.ok else EXIT_FAILED)


def _export_metrics(option: str | None, report: VerifyReport) -> None:
    """``recarchive_verify_last_run_timestamp_seconds`` and ``recarchive_verify_failures{account}``
    (every account verified, 0 included) for node_exporter; a local file, never the archive."""
    path = textfile_path(option)
    if path is None:
        return
    failures = dict.fromkeys(report.accounts, 0)
    for failure in report.failures:
        failures[failure.account] = failures.get(failure.account, 0) + 1
    try:
        write_textfile(path, verify=failures)
    except OSError as exc:
        click.echo(f"recarchive: metrics textfile {path} not written: {exc.strerror or exc}", err=True)


def _print(report: VerifyReport, url: str) -> None:
    console = stdout_console()  # never breaks a key or a SHA-256 across lines
    console.print(f"verified {report.recordings} recordings, {report.objects} objects, "
                  f"{human_bytes(report.bytes)} in {url}" + (" (deep)" if report.deep else ""))
    if report.unconfigured:
        console.print(f"[yellow]storage holds accounts the config does not name (checked too): "
                      f"{', '.join(report.unconfigured)}[/]", highlight=False)
    if not report.accounts:
        console.print("[yellow]nothing to verify: no account is configured and storage holds none[/]")
    elif report.recordings == 0:
        console.print(f"[yellow]no archived recordings found for {', '.join(report.accounts)}"
                      "[/]", highlight=False)
    for account, chain in report.manifests.items():
        console.print(f"manifests {account}: {chain['manifests']} closed, head {chain['head'] or '-'} "
                      f"sha256 {chain['head_sha256'] or '-'}, {chain['pending_entries']} lines pending")
    for warning in report.warnings:
        console.print(f"[yellow]warning[/] {warning.key}: {mask_secrets(warning.problem)}", highlight=False)
    for failure in report.failures:
        console.print(f"[red]FAILED[/] {failure.key}: {mask_secrets(failure.problem)}", highlight=False)
    if not report.ok:
        console.print(f"[red]{len(report.failures)} problem(s) found[/]")
    elif report.recordings:
        console.print("[green]ok: every object matches its metadata.json[/]")
