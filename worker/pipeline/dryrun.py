"""``recarchive run --dry-run``: what a pass would archive, with nothing written and no media fetched.

The same steps as ``run_pass`` (``worker.pipeline.passes``) up to the point where it would act: the
window from the watermark (``discovery_window``), the vendor's listing in batches
(``listed_batches``), which of a batch is archived already (``committed_ids``: one listing per day
folder) and what each recording needs (``triage``). Then, instead of archiving, each recording that
a pass would fetch is recorded as ``would_archive`` with the folder it would land in, and a record
the vendor made unusable as ``would_park``. No link is resolved, no media byte is downloaded, and
nothing is settled: no watermark, no ``last_pass``, no manifest, no parked record, no object.

Reads only, then: the state (watermark, parked names), the day folders of listed recordings, and the
vendor's listing API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from config.settings import AccountSettings
from providers.base import Recording
from storage.keys import recording_prefix
from worker.errors import AccountError, ArchiverError, PermanentError, StorageUnavailable
from worker.pipeline.context import ArchiveContext
from worker.pipeline.discovery import Step, committed_ids, discovery_window, listed_batches, triage
from worker.pipeline.ledger import AccountLedger
from worker.pipeline.results import ArchiveResult, Outcome
from worker.redact import mask_secrets

if TYPE_CHECKING:
    from worker.pipeline.passes import PassSummary

__all__ = ["dry_run_pass"]

log = logging.getLogger(__name__)

Reporter = Callable[[str, Any], None]


def dry_run_pass(ctx: ArchiveContext, accounts: list[AccountSettings], *, since: datetime | None = None,
                 until: datetime | None = None, report: Reporter | None = None) -> PassSummary:
    """A ``PassSummary`` of what ``run_pass`` would do now; ``StorageUnavailable`` propagates, a
    failing account (refused token, bad page) is reported on its ledger like a real pass."""
    from worker.pipeline.passes import PassSummary

    emit: Reporter = report or (lambda event, payload: None)
    summary = PassSummary()
    now = datetime.now(UTC).replace(microsecond=0)
    for account in accounts:
        ledger = AccountLedger(account.name, account.provider)
        summary.accounts.append(ledger)
        try:
            _account(ctx, account, ledger, now, since, until, emit)
        except (AccountError, ArchiverError) as exc:
            if isinstance(exc, StorageUnavailable):
                raise
            ledger.fail(exc.reason, mask_secrets(str(exc)))
            log.error("account %s: %s", account.name, ledger.error)
            emit("account_failed", ledger)
        ledger.api_calls = ctx.api_calls(account.name)
        ledger.watermark = ctx.state.watermark(account.name)
    summary.seconds = (datetime.now(UTC) - summary.started_at).total_seconds()
    return summary


def _account(ctx: ArchiveContext, account: AccountSettings, ledger: AccountLedger, now: datetime,
             since: datetime | None, until: datetime | None, emit: Reporter) -> None:
    ledger.window = discovery_window(ctx, account, now, since, until)
    parked = ctx.state.parked_names(account.name)
    for batch in listed_batches(ctx, account, ledger.window):
        committed = committed_ids(ctx, account, batch)
        for recording in batch:
            ledger.listed(recording)
            emit("listed", (ledger, recording))
            step, outcome = triage(recording, parked, committed)
            if step is Step.SKIP:
                if outcome is Outcome.NOT_READY:
                    ledger.hold(recording)
                ledger.note(outcome, recording.recording_id)
                continue
            result = _would(account, recording, step)
            ledger.record(result)
            log.info("%s/%s: %s", account.name, recording.recording_id, result.outcome,
                     extra={"account": account.name, "recording_id": recording.recording_id,
                            "outcome": str(result.outcome)})
            emit("finished", (ledger, result))


def _would(account: AccountSettings, recording: Recording, step: Step) -> ArchiveResult:
    """The result a dry run reports: where the recording would be stored, or why it would be parked."""
    try:
        keys = [recording_prefix(account.provider, account.name, recording.started_at, recording.recording_id)]
    except PermanentError as exc:
        return ArchiveResult(account.name, account.provider, recording.recording_id, Outcome.WOULD_PARK,
                             reason=exc.reason, message=mask_secrets(str(exc)), listed_at=recording.listed_at,
                             started_at=recording.started_at)
    if step is Step.PARK:
        return ArchiveResult(account.name, account.provider, recording.recording_id, Outcome.WOULD_PARK,
                             reason="invalid_record", message=recording.problem, keys=keys,
                             listed_at=recording.listed_at, started_at=recording.started_at)
    details = [f"started {recording.started_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"]
    if recording.vendor_duration_seconds is not None:
        details.append(f"{recording.vendor_duration_seconds:g} s at the vendor")
    if recording.is_video:
        details.append("video")
    if recording.expires_at is not None:
        details.append(f"link expires {recording.expires_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}")
    return ArchiveResult(account.name, account.provider, recording.recording_id, Outcome.WOULD_ARCHIVE,
                         message=", ".join(details), keys=keys, listed_at=recording.listed_at,
                         started_at=recording.started_at)
