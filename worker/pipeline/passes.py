"""One discovery-and-archive pass over the configured accounts, in this process (``recarchive run``).

Discovery per account: the window runs from ``watermark - lookback`` (or the account's ``start``)
to the pass's start time. Every listed recording is archived (or found already archived) by a
thread pool; the watermark then advances to the earliest recording that is still pending (not ready
yet), or to the window's end when none is — never past a recording that is neither archived nor
parked (CONTRACT §4.6). A failing account stops only its own pass.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from config.settings import AccountSettings
from providers.base import Recording, Window
from worker.compliance.manifests import close_account, install_manifest_hook
from worker.errors import AccountError, ArchiverError, StorageUnavailable
from worker.pipeline.archive import ArchiveResult, Outcome, archive_recording
from worker.pipeline.context import ArchiveContext
from worker.pipeline.state import parked_name
from worker.redact import mask_secrets

__all__ = ["AccountSummary", "PassSummary", "discover", "discovery_window", "order_for_download", "run_pass"]

log = logging.getLogger(__name__)

_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


@dataclass
class AccountSummary:
    account: str
    provider: str
    window: Window | None = None
    found: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    bytes: int = 0
    error: str | None = None
    error_reason: str | None = None
    api_calls: int = 0
    watermark: datetime | None = None
    results: list[ArchiveResult] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.error is not None or self.counts[Outcome.PARKED] > 0

    def as_dict(self, *, with_results: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "account": self.account,
            "provider": self.provider,
            "window": None if self.window is None else
            {"since": _iso(self.window.since), "until": _iso(self.window.until)},
            "found": self.found,
            "archived": self.counts[Outcome.ARCHIVED] + self.counts[Outcome.REVISION],
            "unchanged": self.counts[Outcome.UNCHANGED],
            "not_ready": self.counts[Outcome.NOT_READY],
            "no_recording": self.counts[Outcome.NO_RECORDING],
            "deleted": self.counts[Outcome.DELETED],
            "parked": self.counts[Outcome.PARKED],
            "parked_earlier": self.counts[Outcome.PARKED_EARLIER],
            "bytes": self.bytes,
            "api_calls": self.api_calls,
            "error": self.error,
            "watermark": _iso(self.watermark) if self.watermark else None,
        }
        if with_results:
            data["recordings"] = [r.as_dict() for r in self.results]
        return data


@dataclass
class PassSummary:
    accounts: list[AccountSummary] = field(default_factory=list)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return any(a.failed for a in self.accounts)

    def total(self, key: str) -> int:
        return sum(int(a.as_dict(with_results=False)[key] or 0) for a in self.accounts)

    def as_dict(self, *, with_results: bool = True) -> dict[str, Any]:
        return {
            "started_at": _iso(self.started_at),
            "seconds": round(self.seconds, 3),
            "ok": not self.failed,
            "accounts": [a.as_dict(with_results=with_results) for a in self.accounts],
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def discovery_window(ctx: ArchiveContext, account: AccountSettings, now: datetime,
                     since: datetime | None = None, until: datetime | None = None) -> Window:
    """The window a pass lists: explicit bounds win; else from the watermark less the lookback."""
    end = until or now
    if since is None:
        mark = ctx.state.watermark(account.name)
        since = account.start if mark is None else max(account.start, mark - ctx.settings.schedule.lookback)
    if since >= end:
        since = end - timedelta(seconds=1)
    return Window(since, end)


def discover(ctx: ArchiveContext, account: AccountSettings, window: Window) -> list[Recording]:
    """Every recording the vendor lists in ``window`` (deduplicated), fully listed before any download,
    so a malformed page stops the account before anything is half-done."""
    provider = ctx.handle(account).provider
    seen: dict[str, Recording] = {}
    for recording in provider.list_recordings(window):
        seen.setdefault(recording.recording_id, recording)
    return list(seen.values())


def order_for_download(recordings: Iterable[Recording]) -> list[Recording]:
    """Links that expire soonest first (Convirza's live 7 days); then oldest first."""
    return sorted(recordings, key=lambda r: (r.expires_at or _FAR_FUTURE, r.listed_at, r.recording_id))


def next_watermark(window: Window, recordings: list[Recording], results: list[ArchiveResult]) -> datetime:
    """The earliest ``listed_at`` still pending, else the window's end."""
    by_id = {r.recording_id: r for r in recordings}
    pending = [by_id[r.recording_id].listed_at for r in results
               if r.outcome is Outcome.NOT_READY and r.recording_id in by_id]
    return min([*pending, window.until])


Reporter = Callable[[str, Any], None]

_DONE = frozenset({Outcome.ARCHIVED, Outcome.UNCHANGED, Outcome.REVISION, Outcome.DELETED, Outcome.NO_RECORDING})


def _oldest_pending_expiry(recordings: list[Recording], results: list[ArchiveResult]) -> str | None:
    """The earliest link/vendor expiry among recordings still not archived after the pass (``status``
    warns when a backlog risks outliving its links)."""
    done = {r.recording_id for r in results if r.outcome in _DONE}
    expiries = [r.expires_at for r in recordings if r.expires_at is not None and r.recording_id not in done]
    return _iso(min(expiries)) if expiries else None


def run_pass(
    ctx: ArchiveContext,
    accounts: list[AccountSettings],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    concurrency: int = 4,
    report: Reporter | None = None,
) -> PassSummary:
    """List every account, archive what is new, advance watermarks; never raises for one recording
    or one account. ``StorageUnavailable`` propagates: nothing can be archived without storage."""
    emit = report or (lambda event, payload: None)
    install_manifest_hook(ctx)
    summary = PassSummary()
    now = datetime.now(UTC).replace(microsecond=0)
    manual_window = since is not None or until is not None
    jobs: list[tuple[AccountSummary, AccountSettings, Recording]] = []
    listed: dict[str, list[Recording]] = {}
    for account in accounts:
        acct = AccountSummary(account.name, account.provider)
        summary.accounts.append(acct)
        try:
            acct.window = discovery_window(ctx, account, now, since, until)
            recordings = order_for_download(discover(ctx, account, acct.window))
        except (AccountError, ArchiverError) as exc:
            if isinstance(exc, StorageUnavailable):
                raise
            acct.error = mask_secrets(str(exc))
            acct.error_reason = exc.reason
            log.error("account %s: discovery failed: %s", account.name, acct.error)
            emit("account_failed", acct)
            continue
        acct.found = len(recordings)
        listed[account.name] = recordings
        parked = ctx.state.parked_names(account.name)
        emit("discovered", (acct, recordings))
        for rec in recordings:
            if parked_name(rec.recording_id) in parked:
                # parked with its reason by an earlier pass: `recarchive rearchive` retries it
                acct.counts[Outcome.PARKED_EARLIER] += 1
            else:
                jobs.append((acct, account, rec))

    failed_accounts: set[str] = set()
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="archive") as pool:
        pending: dict[Future[ArchiveResult], tuple[AccountSummary, AccountSettings, Recording]] = {}
        queue = list(jobs)
        while queue or pending:
            while queue and len(pending) < max(1, concurrency) * 2:
                acct, account, rec = queue.pop(0)
                if account.name in failed_accounts:
                    continue
                emit("started", (acct, rec))
                pending[pool.submit(archive_recording, ctx, account, rec)] = (acct, account, rec)
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                acct, account, rec = pending.pop(future)
                try:
                    result = future.result()
                except AccountError as exc:
                    acct.error = mask_secrets(str(exc))
                    acct.error_reason = exc.reason
                    failed_accounts.add(account.name)
                    emit("account_failed", acct)
                    continue
                acct.results.append(result)
                acct.counts[result.outcome] += 1
                acct.bytes += result.bytes
                emit("finished", (acct, result))

    for acct, account in zip(summary.accounts, accounts, strict=True):
        acct.api_calls = ctx.api_calls(account.name)
        if acct.error is None and acct.window is not None:
            if not manual_window:
                mark = next_watermark(acct.window, listed.get(account.name, []), acct.results)
                ctx.state.save_watermark(account.name, mark, provider=account.provider)
                acct.watermark = ctx.state.watermark(account.name)
            ctx.state.save_last_pass(account.name, {
                **acct.as_dict(with_results=False),
                "finished_at": _iso(datetime.now(UTC)),
                "not_ready_ids": sorted(r.recording_id for r in acct.results if r.outcome is Outcome.NOT_READY),
                "deleted_ids": sorted(r.recording_id for r in acct.results if r.outcome is Outcome.DELETED),
                "no_recording_ids": sorted(
                    r.recording_id for r in acct.results if r.outcome is Outcome.NO_RECORDING),
                "flagged": {r.recording_id: r.flags for r in acct.results if r.flags},
                "oldest_pending_expires_at": _oldest_pending_expiry(listed.get(account.name, []), acct.results),
            })
        close_account(ctx, account)  # tamper-evident manifests: close the days that ended
    summary.seconds = (datetime.now(UTC) - summary.started_at).total_seconds()
    return summary
