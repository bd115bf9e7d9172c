"""What archiving one recording came to: the outcome every caller (run, rearchive, tasks) reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from worker.pipeline.commit import Staged

__all__ = ["DONE", "ArchiveResult", "Outcome"]


class Outcome(StrEnum):
    ARCHIVED = "archived"
    UNCHANGED = "unchanged"  # already archived, nothing written
    REVISION = "revision"  # re-archive found changed bytes: stored beside the earlier copy
    NOT_READY = "not_ready"
    NO_RECORDING = "no_recording"
    DELETED = "deleted"
    PARKED = "parked"
    PARKED_EARLIER = "parked_earlier"  # parked by an earlier pass: skipped until re-archived by hand
    STAGED = "staged"  # original stored, commit left to a later task (daemon with renditions)
    QUEUED = "queued"  # daemon discovery: handed to an archive task (which reports its own outcome)
    WOULD_ARCHIVE = "would_archive"  # run --dry-run: a pass would fetch and archive it
    WOULD_PARK = "would_park"  # run --dry-run: a pass would park it (its record is unusable)


@dataclass
class ArchiveResult:
    account: str
    provider: str
    recording_id: str
    outcome: Outcome
    reason: str | None = None
    message: str | None = None
    bytes: int = 0
    keys: list[str] = field(default_factory=list)
    seconds: float = 0.0
    listed_at: datetime | None = None
    started_at: datetime | None = None
    staged: Staged | None = None
    #: integrity findings worth an operator's look (e.g. "duration_mismatch"); archived all the same
    flags: list[str] = field(default_factory=list)
    #: a manual re-archive (it may lift a parked record); discovery passes skip parked recordings
    forced: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account, "provider": self.provider, "recording_id": self.recording_id,
            "outcome": str(self.outcome), "reason": self.reason, "message": self.message,
            "bytes": self.bytes, "keys": self.keys, "seconds": round(self.seconds, 3), "flags": self.flags,
        }


#: outcomes after which a recording no longer holds the watermark
DONE = frozenset({Outcome.ARCHIVED, Outcome.UNCHANGED, Outcome.REVISION, Outcome.DELETED, Outcome.NO_RECORDING,
                  Outcome.PARKED, Outcome.PARKED_EARLIER})
