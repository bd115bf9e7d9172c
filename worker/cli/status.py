"""``recarchive status``: per account, where discovery stands and what needs an operator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from config import Settings
from storage import Storage, open_storage
from worker.cli._common import config_option, emit_json, guarded, load
from worker.pipeline.state import StateStore

__all__ = ["account_status", "status"]

#: warn when recordings still wait and their oldest is this close to losing its link (Convirza: 7 days)
EXPIRY_WARNING = timedelta(days=2)
#: ``{provider}/{account}/YYYY/MM/DD/{id}/metadata.json``; a revision's marker (``{id}/r2/…``) sits deeper
_RECORDING_DEPTH = 6


def account_status(settings: Settings, storage: Storage, name: str) -> dict[str, Any]:
    account = settings.account(name)
    state = StateStore(storage)
    archived = sum(1 for info in storage.list(f"{account.provider}/{account.name}/")
                   if info.key.endswith("/metadata.json") and info.key.count("/") == _RECORDING_DEPTH)
    last = state.last_pass(name) or {}
    parked = [p.as_dict() for p in state.parked(name)]
    mark = state.watermark(name)
    warnings: list[str] = []
    pending_expiry = last.get("oldest_pending_expires_at")
    if pending_expiry:
        expires = datetime.fromisoformat(str(pending_expiry).replace("Z", "+00:00"))
        if expires - datetime.now(UTC) < EXPIRY_WARNING:
            warnings.append(f"backlog: a pending recording's link expires at {pending_expiry}")
    if mark is not None and datetime.now(UTC) - mark > max(settings.schedule.discover_every * 3, timedelta(hours=1)):
        warnings.append(f"watermark is {datetime.now(UTC) - mark} behind (not-ready recordings or failed passes)")
    flagged = last.get("flagged") or {}
    if flagged:
        warnings.append("integrity flags in the last pass: " + ", ".join(
            f"{rid} ({'/'.join(flags)})" for rid, flags in sorted(flagged.items())[:20]))
    if last.get("error"):
        warnings.append(f"last pass failed: {last['error']}")
    return {
        "account": name,
        "provider": account.provider,
        "watermark": mark.strftime("%Y-%m-%dT%H:%M:%SZ") if mark else None,
        "last_pass": last.get("finished_at"),
        "archived": archived,
        "pending": int(last.get("pending", 0) or 0),
        "not_ready": len(last.get("not_ready_ids", []) or []),
        "not_ready_ids": last.get("not_ready_ids", []) or [],
        "parked": len([p for p in parked if p.get("kind", "recording") == "recording"]),
        "parked_failures": parked,
        "warnings": warnings,
    }


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@click.option("-v", "--verbose", count=True)
@guarded
def status(config_file: str | None, as_json: bool, verbose: int) -> None:
    """Per account: watermark, counts archived / pending / not ready / parked, each parked reason."""
    settings = load(config_file, verbose=verbose)
    storage = open_storage(settings.storage)
    try:
        storage.check()
        report = [account_status(settings, storage, a.name) for a in settings.accounts]
    finally:
        storage.close()
    if as_json:
        emit_json({"storage": storage.url, "accounts": report})
        return
    console = Console()
    table = Table(title=f"recarchive status — {storage.url}")
    for column in ("account", "provider", "watermark", "archived", "pending", "not ready", "parked"):
        table.add_column(column)
    for row in report:
        table.add_row(row["account"], row["provider"], row["watermark"] or "-", str(row["archived"]),
                      str(row["pending"]), str(row["not_ready"]), str(row["parked"]))
    console.print(table)
    for row in report:
        for parked in row["parked_failures"]:
            console.print(f"  parked {row['account']}/{parked['recording_id']} ({parked.get('kind', 'recording')}): "
                          f"{parked['reason']}: {parked['message']}")
        for warning in row["warnings"]:
            console.print(f"  [yellow]warning {row['account']}: {warning}")
