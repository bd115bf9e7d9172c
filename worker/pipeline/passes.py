"""The orchestration core: one account's pass, shared by ``recarchive run`` and the daemon.

Both choose the window (``discovery_window``), stream the listing in batches, triage each recording
(``triage``), account for it in an ``AccountLedger`` and settle the account the same way
(``settle_account``: watermark, ``last_pass``, then the observers' ``settled`` — manifests close the
days that ended). They differ only in who archives: ``run_pass`` submits to a thread pool here, the
daemon's discovery (``worker.daemon.bodies``) enqueues a task per recording.

Streaming: discovery and archiving overlap through a bounded number of jobs in flight (four times
the concurrency), so memory does not grow with the number of listed recordings. Each batch's folders are
listed once per day folder (``scan_folders``): committed recordings are skipped without a request of
their own, and a new recording whose folder is empty goes straight to its download and upload. The watermark advances
only past recordings that are archived, parked, or otherwise final (CONTRACT §4.6): to the earliest
``listed_at`` still held (not ready, in flight) or the window's end. For providers whose listing is
sorted by ``listed_at`` (``Provider.listing_sorted``), it is also checkpointed after every batch, so a
crash hours into a backfill resumes near where it stopped instead of re-listing from the start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from config.settings import AccountSettings
from config.units import utc_stamp
from providers.base import Recording
from worker.errors import AccountError, ArchiverError, StorageUnavailable
from worker.pipeline.archive import archive_recording
from worker.pipeline.context import ArchiveContext
from worker.pipeline.discovery import Step, discovery_window, listed_batches, scan_folders, triage
from worker.pipeline.ledger import AccountLedger
from worker.pipeline.results import ArchiveResult, Outcome
from worker.redact import mask_secrets

__all__ = ["AccountSummary", "PassSummary", "checkpoint", "run_pass", "settle_account"]

log = logging.getLogger(__name__)

#: ``recarchive run``'s ledger: the name the CLI and JSON output have always used
AccountSummary = AccountLedger

Reporter = Callable[[str, Any], None]


@dataclass
class PassSummary:
    accounts: list[AccountLedger] = field(default_factory=list)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return any(a.failed for a in self.accounts)

    def total(self, key: str) -> int:
        return sum(int(a.as_dict(with_results=False)[key] or 0) for a in self.accounts)

    def as_dict(self, *, with_results: bool = True) -> dict[str, Any]:
        return {
            "schema": "recarchive.pass/1",
            "started_at": utc_stamp(self.started_at),
            "seconds": round(self.seconds, 3),
            "ok": not self.failed,
            "accounts": [a.as_dict(with_results=with_results) for a in self.accounts],
        }


# -- the shared steps ----------------------------------------------------------------------------

def checkpoint(ctx: ArchiveContext, account: AccountSettings, ledger: AccountLedger,
               in_flight: list[datetime], listed_through: datetime) -> None:
    """Save a watermark mid-pass for a provider that lists in ``listed_at`` order: nothing still to
    come is older than ``listed_through``, so the earliest of that, what is in flight and what holds
    is safe. (Unsorted listings are settled only at the end of the pass.)"""
    if ledger.error is not None or not ctx.handle(account).provider.listing_sorted:
        return
    mark = min([listed_through, *in_flight, *([ledger.holding] if ledger.holding else [])])
    ctx.state.save_watermark(account.name, mark, provider=account.provider)


def settle_account(ctx: ArchiveContext, account: AccountSettings, ledger: AccountLedger, *, now: datetime,
                   manual_window: bool, mode: str) -> None:
    """The end of an account's pass: watermark (unless the window was given by hand or the account
    failed), ``last_pass`` for ``status``, then the observers (manifests close the days that ended)."""
    ledger.api_calls = ctx.api_calls(account.name)
    ledger.take_notices(ctx.handle(account).provider)
    if ledger.error is None and ledger.window is not None:
        if not manual_window:
            mark = min([*([ledger.holding] if ledger.holding else []), ledger.window.until])
            ctx.state.save_watermark(account.name, mark, provider=account.provider)
            ledger.watermark = ctx.state.watermark(account.name)
        ctx.state.save_last_pass(account.name, {
            **ledger.as_dict(with_results=False), "mode": mode, "finished_at": utc_stamp(),
        })
    else:
        previous = ctx.state.last_pass(account.name) or {}
        ctx.state.save_last_pass(account.name, {
            **previous, "error": ledger.error, "error_reason": ledger.error_reason, "finished_at": utc_stamp(),
        })
    ctx.hooks.settled(account, ledger.watermark, now=now)


def account_failed(ledger: AccountLedger, exc: ArchiverError) -> None:
    ledger.fail(exc.reason, mask_secrets(str(exc)))
    log.error("account %s: %s", ledger.account, ledger.error)


# -- recarchive run --------------------------------------------------------------------------------

@dataclass
class _Job:
    ledger: AccountLedger
    account: AccountSettings
    recording: Recording


def run_pass(
    ctx: ArchiveContext,
    accounts: list[AccountSettings],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    concurrency: int = 4,
    report: Reporter | None = None,
) -> PassSummary:
    """List every account, archive what is new, settle each account; never raises for one recording
    or one account. ``StorageUnavailable`` propagates: nothing can be archived without storage."""
    emit: Reporter = report or (lambda event, payload: None)
    summary = PassSummary()
    now = datetime.now(UTC).replace(microsecond=0)
    manual_window = since is not None or until is not None
    limit = max(1, concurrency)
    # ``concurrency`` transfers at once (download, checks, upload of the original); twice as many
    # threads again finish commits (metadata.json, manifest entry, index: small writes that wait on
    # the store), so a transfer slot never idles behind them (rclone's --transfers beside its checkers)
    transfers = threading.BoundedSemaphore(limit)
    in_flight: dict[Future[ArchiveResult], _Job] = {}

    def collect(block_until: int) -> None:
        while len(in_flight) > block_until:
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                job = in_flight.pop(future)
                try:
                    result = future.result()
                except AccountError as exc:
                    if job.ledger.error is None:
                        account_failed(job.ledger, exc)
                        emit("account_failed", job.ledger)
                    continue
                if result.outcome is Outcome.NOT_READY:
                    job.ledger.hold(job.recording)
                elif result.outcome is Outcome.PARKED:
                    job.ledger.unarchived(job.recording)
                job.ledger.record(result)
                # `run -v`: one line per recording, with its size and time
                log.info("%s/%s: %s%s, %d bytes, %.1f s", job.account.name, result.recording_id, result.outcome,
                         f" ({result.reason})" if result.reason else "", result.bytes, result.seconds,
                         extra={"account": job.account.name, "recording_id": result.recording_id,
                                "outcome": str(result.outcome), "bytes": result.bytes,
                                "seconds": round(result.seconds, 3)})
                emit("finished", (job.ledger, result))

    with ThreadPoolExecutor(max_workers=3 * limit, thread_name_prefix="archive") as pool:
        for account in accounts:
            ledger = AccountLedger(account.name, account.provider)
            summary.accounts.append(ledger)
            try:
                ledger.window = discovery_window(ctx, account, now, since, until)
                parked = ctx.state.parked_names(account.name)
                for batch in listed_batches(ctx, account, ledger.window):
                    folders = scan_folders(ctx, account, batch)
                    # under [retention] committed ones still go through archive_recording, which locks
                    # a recording committed without its lock (ensure_retention)
                    committed = None if ctx.settings.retention is not None else folders.committed
                    for recording in batch:
                        if ledger.error is not None:
                            break
                        ledger.listed(recording)
                        emit("listed", (ledger, recording))
                        step, outcome = triage(recording, parked, committed)
                        if step is Step.SKIP:
                            if outcome is Outcome.NOT_READY:
                                ledger.hold(recording)
                            elif outcome is Outcome.PARKED_EARLIER:
                                ledger.unarchived(recording)
                            ledger.note(outcome, recording.recording_id)
                            continue
                        collect(4 * limit - 1)
                        emit("started", (ledger, recording))
                        future = pool.submit(archive_recording, ctx, account, recording, transfer_slot=transfers,
                                             empty_folder=recording.recording_id not in folders.occupied)
                        in_flight[future] = _Job(ledger, account, recording)
                    if ledger.error is not None:
                        break
                    if not manual_window and batch:
                        mine = [j.recording.listed_at for j in in_flight.values() if j.ledger is ledger]
                        checkpoint(ctx, account, ledger, mine, max(r.listed_at for r in batch))
            except (AccountError, ArchiverError) as exc:
                if isinstance(exc, StorageUnavailable):
                    raise
                account_failed(ledger, exc)
                emit("account_failed", ledger)
        collect(0)

    for ledger, account in zip(summary.accounts, accounts, strict=True):
        settle_account(ctx, account, ledger, now=now, manual_window=manual_window, mode="run")
    summary.seconds = (datetime.now(UTC) - summary.started_at).total_seconds()
    return summary
