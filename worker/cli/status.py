"""``recarchive status``: per account, where discovery stands and what needs an operator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from config import Settings
from config.units import utc_stamp
from storage import Storage, open_storage
from worker.cli._common import complete_accounts, config_option, emit_json, guarded, load, pick_accounts
from worker.cli._output import human_duration, print_table, schema, stdout_console
from worker.cli._progress import Ticker
from worker.pipeline.state import StateStore
from worker.redact import mask_secrets

__all__ = ["account_status", "status"]

#: warn when recordings still wait and their oldest is this close to losing its link (Convirza: 7 days)
EXPIRY_WARNING = timedelta(days=2)
#: ``{provider}/{account}/YYYY/MM/DD/{id}/metadata.json``; a revision's marker (``{id}/r2/…``) sits deeper
_RECORDING_DEPTH = 6


def account_status(settings: Settings, storage: Storage, name: str,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    account = settings.account(name)
    state = StateStore(storage)
    archived = _count_archived(storage, f"{account.provider}/{account.name}/", name, progress)
    last = state.last_pass(name) or {}
    parked = [p.as_dict() for p in state.parked(name)]
    mark = state.watermark(name)
    # each warning is structured for scripts (kind and the figures behind it) and says it in words
    warnings: list[dict[str, Any]] = []
    now = datetime.now(UTC)
    pending_expiry = last.get("oldest_pending_expires_at")
    if pending_expiry:
        expires = datetime.fromisoformat(str(pending_expiry).replace("Z", "+00:00"))
        if expires - now < EXPIRY_WARNING:
            warnings.append({"kind": "link_expiry", "expires_at": pending_expiry,
                             "message": f"backlog: a pending recording's link expires at {pending_expiry} "
                                        f"(in {human_duration((expires - now).total_seconds())})"})
    lag = None if mark is None else (now - mark).total_seconds()
    allowed = max(settings.schedule.discover_every * 3, timedelta(hours=1))
    if lag is not None and lag > allowed.total_seconds():
        warnings.append({"kind": "watermark_lag", "expected": f"at most {human_duration(allowed.total_seconds())}",
                         "found": human_duration(lag), "lag_seconds": round(lag),
                         "message": f"watermark is {human_duration(lag)} behind "
                                    "(not-ready recordings or failed passes)"})
    flagged = last.get("flagged") or {}
    if flagged:
        warnings.append({"kind": "integrity_flags", "recordings": {rid: list(flags) for rid, flags in flagged.items()},
                         "message": "integrity flags in the last pass: " + ", ".join(
                             f"{rid} ({'/'.join(flags)})" for rid, flags in sorted(flagged.items())[:20])})
    for notice in last.get("notices") or []:
        warnings.append({"kind": "vendor_notice", "message": f"last pass: {notice}"})
    unknown = last.get("unknown_statuses") or {}
    if unknown:  # never silently dropped: the recordings wait as not ready, the values are named
        warnings.append({"kind": "unknown_status", "statuses": dict(unknown),
                         "message": "vendor status values recarchive does not know (held as not ready): "
                                    + ", ".join(f"{value!r} x{count}" for value, count in sorted(unknown.items()))})
    if last.get("error"):
        warnings.append({"kind": "last_pass_failed", "reason": last.get("error_reason"),
                         "message": f"last pass failed: {last['error']}"})
    return {
        "account": name,
        "provider": account.provider,
        "watermark": utc_stamp(mark) if mark else None,
        "watermark_lag_seconds": None if lag is None else round(lag),
        "last_pass": last.get("finished_at"),
        "archived": archived,
        "pending": int(last.get("pending", 0) or 0),
        "not_ready": len(last.get("not_ready_ids", []) or []),
        "not_ready_ids": last.get("not_ready_ids", []) or [],
        "parked": len([p for p in parked if p.get("kind", "recording") == "recording"]),
        "parked_failures": parked,
        "warnings": warnings,
    }


def _count_archived(storage: Storage, root: str, name: str, progress: Callable[[str], None] | None) -> int:
    """Committed recordings of one account, by a streamed listing: memory stays flat whatever the
    archive's size (a million recordings are counted, never held)."""
    archived = 0
    for seen, info in enumerate(storage.list(root), start=1):
        if info.key.endswith("/metadata.json") and info.key.count("/") == _RECORDING_DEPTH:
            archived += 1
        if progress is not None and seen % 10000 == 0:
            progress(f"{name}: {archived} archived recordings counted ({seen} objects listed)")
    return archived


@click.command()
@config_option
@click.option("--account", "accounts", shell_complete=complete_accounts,
              multiple=True, help="Only this account (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@click.option("-v", "--verbose", count=True)
@guarded
def status(config_file: str | None, accounts: tuple[str, ...], as_json: bool, verbose: int) -> None:
    """Per account: watermark, counts archived / pending / not ready / parked, each parked reason."""
    settings = load(config_file, verbose=verbose, tokens_for=set())  # auditing: no vendor, no token
    storage = open_storage(settings.storage)
    try:
        storage.check(write=False)  # read-only credentials suffice
        with Ticker(enabled=not as_json, description="counting archived recordings") as tick:
            report = [account_status(settings, storage, a.name, tick) for a in pick_accounts(settings, accounts)]
    finally:
        storage.close()
    if as_json:
        emit_json({"schema": schema("status"), "storage": storage.url, "accounts": report})
        return
    console = stdout_console()
    print_table(console, f"recarchive status — {storage.url}",
                ("account", "provider", "watermark", "lag", "archived", "pending", "not ready", "parked"),
                [(row["account"], row["provider"], row["watermark"] or "-",
                  "-" if row["watermark_lag_seconds"] is None else human_duration(row["watermark_lag_seconds"]),
                  str(row["archived"]), str(row["pending"]), str(row["not_ready"]), str(row["parked"]))
                 for row in report], right=("lag", "archived", "pending", "not ready", "parked"))
    for row in report:
        for parked in row["parked_failures"]:
            console.out(f"parked {row['account']}/{parked['recording_id']} ({parked.get('kind', 'recording')}): "
                        f"{parked['reason']}: {mask_secrets(str(parked['message']))}", highlight=False)
        for warning in row["warnings"]:
            console.out(f"warning {row['account']}: {mask_secrets(warning['message'])}",
                        style="yellow", highlight=False)
