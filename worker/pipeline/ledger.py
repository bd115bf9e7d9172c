"""What one account's pass came to, kept in bounded memory however many recordings it lists.

A backfill lists hundreds of thousands of recordings; the ledger keeps counts, not lists: every
outcome is counted, and only the ids that need an operator's attention (parked, not ready, no
recording, deleted, flagged, unknown statuses) are kept, each list capped at ``ATTENTION_CAP``
(beyond it they are counted, and ``status``/``report`` find the rest in storage). ``results`` keeps
the first ``RESULTS_CAP`` results for ``--json`` and tests, never more.

It also carries what the watermark needs: the earliest ``listed_at`` that must hold it (a recording
not ready yet, one still being archived, one whose account failed mid-pass). Both ``recarchive run``
and the daemon's discovery fill a ledger and settle it the same way (``worker.pipeline.passes``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from config.units import utc_stamp
from providers.base import Recording, Window
from worker.pipeline.results import ArchiveResult, Outcome

__all__ = ["ATTENTION_CAP", "RESULTS_CAP", "AccountLedger"]

ATTENTION_CAP = 1000
RESULTS_CAP = 1000

#: outcomes whose ids an operator wants named, under these JSON keys
_ATTENTION = {
    Outcome.NOT_READY: "not_ready_ids",
    Outcome.NO_RECORDING: "no_recording_ids",
    Outcome.DELETED: "deleted_ids",
    Outcome.PARKED: "parked_ids",
}


@dataclass
class AccountLedger:
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
    #: daemon discovery: archive tasks sent / found already queued
    enqueued: int = 0
    already_queued: int = 0
    #: the earliest ``listed_at`` that must hold the watermark (None: nothing holds it)
    holding: datetime | None = None
    oldest_pending_expiry: datetime | None = None
    attention: dict[str, list[str]] = field(default_factory=dict)
    attention_overflow: Counter[str] = field(default_factory=Counter)
    unknown_statuses: Counter[str] = field(default_factory=Counter)
    flagged: dict[str, list[str]] = field(default_factory=dict)
    results: list[ArchiveResult] = field(default_factory=list)
    results_dropped: int = 0
    #: what the vendor said that fails nothing but an operator should read (an unknown lead)
    notices: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.error is not None or self.counts[Outcome.PARKED] > 0

    # -- filling ---------------------------------------------------------------------------------
    def listed(self, recording: Recording) -> None:
        self.found += 1
        if recording.unknown_status:
            self.unknown_statuses[recording.unknown_status] += 1

    def hold(self, recording: Recording) -> None:
        """``recording`` is not done: the watermark may not pass its ``listed_at``."""
        if self.holding is None or recording.listed_at < self.holding:
            self.holding = recording.listed_at
        self.unarchived(recording)

    def unarchived(self, recording: Recording) -> None:
        """``recording`` is still not archived after this pass (not ready, or parked until someone
        re-archives it): ``status`` warns when the earliest of their links or vendor copies expires soon."""
        if recording.expires_at is not None and (self.oldest_pending_expiry is None
                                                 or recording.expires_at < self.oldest_pending_expiry):
            self.oldest_pending_expiry = recording.expires_at

    def note(self, outcome: Outcome, recording_id: str) -> None:
        """Count an outcome decided without archiving (skipped, not ready, queued...)."""
        self.counts[outcome] += 1
        self._attend(outcome, recording_id)

    def record(self, result: ArchiveResult) -> None:
        self.counts[result.outcome] += 1
        self.bytes += result.bytes
        self._attend(result.outcome, result.recording_id)
        if result.flags and len(self.flagged) < ATTENTION_CAP:
            self.flagged[result.recording_id] = list(result.flags)
        if len(self.results) < RESULTS_CAP:
            self.results.append(result)
        else:
            self.results_dropped += 1

    def _attend(self, outcome: Outcome, recording_id: str) -> None:
        key = _ATTENTION.get(outcome)
        if key is None:
            return
        ids = self.attention.setdefault(key, [])
        if len(ids) < ATTENTION_CAP:
            ids.append(recording_id)
        else:
            self.attention_overflow[key] += 1

    def take_notices(self, provider: Any) -> None:
        """Move the provider's notices of this listing into the ledger (capped like the ids)."""
        notices: list[str] = getattr(provider, "notices", [])
        room = max(0, ATTENTION_CAP - len(self.notices))
        self.notices.extend(notices[:room])
        notices.clear()

    def fail(self, reason: str | None, message: str) -> None:
        self.error = message
        self.error_reason = reason

    # -- reading ---------------------------------------------------------------------------------
    def ids(self, key: str) -> list[str]:
        return sorted(self.attention.get(key, []))

    def as_dict(self, *, with_results: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "account": self.account,
            "provider": self.provider,
            "window": None if self.window is None else
            {"since": utc_stamp(self.window.since), "until": utc_stamp(self.window.until)},
            "found": self.found,
            "archived": self.counts[Outcome.ARCHIVED] + self.counts[Outcome.REVISION],
            "unchanged": self.counts[Outcome.UNCHANGED],
            "not_ready": self.counts[Outcome.NOT_READY],
            "no_recording": self.counts[Outcome.NO_RECORDING],
            "deleted": self.counts[Outcome.DELETED],
            "parked": self.counts[Outcome.PARKED],
            "parked_earlier": self.counts[Outcome.PARKED_EARLIER],
            "queued": self.counts[Outcome.QUEUED],
            "would_archive": self.counts[Outcome.WOULD_ARCHIVE],
            "would_park": self.counts[Outcome.WOULD_PARK],
            "enqueued": self.enqueued,
            "already_queued": self.already_queued,
            "bytes": self.bytes,
            "api_calls": self.api_calls,
            "error": self.error,
            "error_reason": self.error_reason,
            "watermark": utc_stamp(self.watermark) if self.watermark else None,
            "unknown_statuses": dict(sorted(self.unknown_statuses.items())),
            "oldest_pending_expires_at": utc_stamp(self.oldest_pending_expiry) if self.oldest_pending_expiry
            else None,
            **{key: self.ids(key) for key in _ATTENTION.values()},
            "ids_not_listed": dict(self.attention_overflow),
            "flagged": self.flagged,
            "notices": self.notices,
        }
        if with_results:
            data["recordings"] = [r.as_dict() for r in self.results]
            data["recordings_not_listed"] = self.results_dropped
        return data
