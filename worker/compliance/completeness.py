"""Completeness: for each account and UTC day, what the vendor lists against what is archived.

``completeness_report`` lists the vendor for the days asked (the listing window is widened by a day on
each side, because vendors filter on their own "created" time while days here are ``started_at``
days, the storage layout's), lists the archived ``metadata.json`` of the same day folders, and names
every listed recording that is not archived with the reason:

- ``not_ready``: the vendor is still processing it (archived on a later pass);
- ``deleted_at_vendor``: deleted at the vendor before it was archived;
- ``no_recording``: the call has no recording;
- ``parked``: archiving failed and was parked (the parked reason is given);
- ``missing``: ready, not parked, not archived — the case an auditor must never see.

Only ``missing`` and ``parked`` are failures (exit 1). Recordings archived but no longer listed (deleted
at the vendor after archiving, which is what an archive is for) are shown as ``archived_not_listed``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from config.settings import AccountSettings
from providers.base import Readiness, Recording, Window
from storage.keys import sanitize_id
from worker.compliance.walker import folders
from worker.errors import AccountError, ArchiverError, PermanentError, StorageUnavailable
from worker.pipeline.context import ArchiveContext
from worker.redact import mask_secrets

__all__ = ["CHUNK_DAYS", "FAILING_REASONS", "AccountReport", "DayReport", "Gap", "completeness_report"]

FAILING_REASONS = frozenset({"missing", "parked"})
#: days listed at the vendor at once: each chunk's listing is widened by a day on each side, so a
#: week costs 9/7 of one listing of the whole window while memory holds a week's records, not a year's
CHUNK_DAYS = 7
_READINESS_REASON = {
    Readiness.NOT_READY: "not_ready",
    Readiness.DELETED: "deleted_at_vendor",
    Readiness.NO_RECORDING: "no_recording",
}


@dataclass(frozen=True)
class Gap:
    recording_id: str
    reason: str
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"recording_id": self.recording_id, "reason": self.reason, "detail": self.detail}


@dataclass
class DayReport:
    day: date
    listed: int = 0
    archived: int = 0
    gaps: list[Gap] = field(default_factory=list)
    archived_not_listed: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for gap in self.gaps:
            out[gap.reason] += 1
        return dict(out)

    def as_dict(self) -> dict[str, Any]:
        return {"day": f"{self.day:%Y-%m-%d}", "listed": self.listed, "archived": self.archived,
                "gaps": [g.as_dict() for g in self.gaps], "gap_counts": self.counts(),
                "archived_not_listed": self.archived_not_listed}


@dataclass
class AccountReport:
    account: str
    provider: str
    days: list[DayReport] = field(default_factory=list)
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None or any(g.reason in FAILING_REASONS for d in self.days for g in d.gaps)

    def as_dict(self) -> dict[str, Any]:
        return {"account": self.account, "provider": self.provider, "ok": not self.failed, "error": self.error,
                "days": [d.as_dict() for d in self.days]}


def completeness_report(ctx: ArchiveContext, accounts: list[AccountSettings], first: date,
                        last: date, progress: Callable[[str], None] | None = None) -> list[AccountReport]:
    """One ``AccountReport`` per account for the inclusive UTC days ``first``..``last``.

    A vendor listing that fails makes that account's report an error (a failure: completeness is not
    proven); ``StorageUnavailable`` propagates (exit 3).
    """
    return [_account(ctx, account, first, last, progress) for account in accounts]


def _account(ctx: ArchiveContext, account: AccountSettings, first: date, last: date,
             progress: Callable[[str], None] | None) -> AccountReport:
    """The account's days, a chunk of ``CHUNK_DAYS`` at a time: memory holds one chunk's vendor
    records and archived ids, never a year's (a large contact centre lists millions)."""
    report = AccountReport(account.name, account.provider)
    days = {day: DayReport(day) for day in _days(first, last)}
    report.days = [days[d] for d in sorted(days)]
    parked = {p.recording_id: p for p in ctx.state.parked(account.name) if p.kind == "recording"}
    start = first
    while start <= last:
        end = min(last, start + timedelta(days=CHUNK_DAYS - 1))
        try:
            if progress is not None:
                progress(f"{account.name}: {start:%Y-%m-%d} .. {end:%Y-%m-%d}")
            _chunk(ctx, account, days, start, end, parked)
        except StorageUnavailable:
            raise
        except (AccountError, ArchiverError) as exc:
            report.error = f"vendor listing failed: {mask_secrets(str(exc))}"
            return report
        start = end + timedelta(days=1)
    return report


def _chunk(ctx: ArchiveContext, account: AccountSettings, days: dict[date, DayReport], first: date, last: date,
           parked: dict[str, Any]) -> None:
    archived = _archived(ctx, account, first, last)
    listed_ids: dict[date, set[str]] = defaultdict(set)
    for recording in _listed(ctx, account, first, last):
        day = recording.started_at.astimezone(UTC).date()
        if not first <= day <= last:
            continue  # listed by the widened window: another chunk's day (or outside the report)
        entry = days[day]
        entry.listed += 1
        try:
            safe = sanitize_id(recording.recording_id)
        except PermanentError as exc:
            entry.gaps.append(Gap(recording.recording_id, "parked", exc.message))
            continue
        listed_ids[day].add(safe)
        if safe in archived.get(day, {}):
            entry.archived += 1
            continue
        entry.gaps.append(_gap(recording, parked))
    for day, ids in archived.items():
        if first <= day <= last:
            days[day].archived_not_listed = sorted(rid for safe, rid in ids.items() if safe not in listed_ids[day])


def _gap(recording: Recording, parked: dict[str, Any]) -> Gap:
    if recording.readiness in _READINESS_REASON:
        return Gap(recording.recording_id, _READINESS_REASON[recording.readiness])
    record = parked.get(recording.recording_id)
    if record is not None:
        return Gap(recording.recording_id, "parked", f"{record.reason}: {record.message}")
    return Gap(recording.recording_id, "missing", "ready at the vendor, not parked, not archived")


def _listed(ctx: ArchiveContext, account: AccountSettings, first: date, last: date) -> Iterator[Recording]:
    """The vendor's listing over the days, widened by one day each side, each id once."""
    since = datetime.combine(first - timedelta(days=1), time(), tzinfo=UTC)
    until = datetime.combine(last + timedelta(days=2), time(), tzinfo=UTC)
    since = max(since, account.start)  # nothing before the account's start is meant to be archived
    if since >= until:
        return
    provider = ctx.handle(account).provider
    seen: set[str] = set()
    for recording in provider.list_recordings(Window(since, until)):
        if recording.recording_id not in seen:
            seen.add(recording.recording_id)
            yield recording


def _archived(ctx: ArchiveContext, account: AccountSettings, first: date, last: date) -> dict[date, dict[str, str]]:
    """Per day: {folder id: recording id} of every committed recording (base ``metadata.json``)."""
    out: dict[date, dict[str, str]] = defaultdict(dict)
    for folder in folders(ctx.storage, account, (first, last)):
        if folder.day is None or folder.prefix + "metadata.json" not in folder.listed:
            continue
        out[folder.day][folder.folder_id] = _unquote(folder.folder_id)
    return out


def _unquote(folder_id: str) -> str:
    from urllib.parse import unquote

    return unquote(folder_id)


def _days(first: date, last: date) -> list[date]:
    out = []
    day = first
    while day <= last:
        out.append(day)
        day += timedelta(days=1)
    return out
