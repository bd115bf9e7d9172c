"""Discovery: which window a pass lists, and what each listed recording needs.

Shared by ``recarchive run``, ``rearchive`` and the daemon's discovery task, so they cannot drift:
``discovery_window`` picks the window, ``listed_batches`` streams the vendor's listing in bounded
batches (a page's worth: memory never grows with the listing), ``committed_ids`` finds which of a
batch are archived already with one listing per day folder, and ``triage`` decides for each
recording whether it is skipped (not ready, no recording, deleted, parked earlier, committed), parked
at once (the vendor's record of it is unusable) or archived.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum

from config.settings import AccountSettings
from providers.base import Readiness, Recording, Window
from storage.keys import recording_prefix
from worker.errors import PermanentError
from worker.pipeline.context import ArchiveContext
from worker.pipeline.results import Outcome
from worker.pipeline.state import parked_name

__all__ = ["BATCH", "Folders", "Step", "committed_ids", "discover", "discovery_window", "listed_batches",
           "order_for_download", "scan_folders", "triage"]

#: recordings handled per batch: about one vendor page, so a batch is what one listing call brings
BATCH = 200
_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


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


def listed_batches(ctx: ArchiveContext, account: AccountSettings, window: Window,
                   size: int = BATCH) -> Iterator[list[Recording]]:
    """The vendor's listing of ``window`` in batches of at most ``size``, each ordered for download.

    Providers list each id once (``providers._paging.in_window_once``); a bad page raises the
    account-level error from the provider, after the batches before it were handed out.
    """
    batch: list[Recording] = []
    for recording in ctx.handle(account).provider.list_recordings(window):
        batch.append(recording)
        if len(batch) >= size:
            yield order_for_download(batch)
            batch = []
    if batch:
        yield order_for_download(batch)


def discover(ctx: ArchiveContext, account: AccountSettings, window: Window) -> list[Recording]:
    """The whole listing of ``window`` (for ``rearchive`` of a bounded range, not for passes)."""
    return [recording for batch in listed_batches(ctx, account, window) for recording in batch]


def order_for_download(recordings: Iterable[Recording]) -> list[Recording]:
    """Links that expire soonest first (Convirza's live 7 days); then oldest first."""
    return sorted(recordings, key=lambda r: (r.expires_at or _FAR_FUTURE, r.listed_at, r.recording_id))


@dataclass
class Folders:
    """What one listing per day folder showed of a batch's recording folders."""

    committed: set[str] = field(default_factory=set)  # ids whose ``metadata.json`` exists
    occupied: set[str] = field(default_factory=set)  # ids whose folder holds any object at all


def committed_ids(ctx: ArchiveContext, account: AccountSettings, recordings: Iterable[Recording]) -> set[str]:
    """Ids whose ``metadata.json`` exists: one listing per day folder instead of a HEAD per recording."""
    return scan_folders(ctx, account, recordings).committed


def scan_folders(ctx: ArchiveContext, account: AccountSettings, recordings: Iterable[Recording]) -> Folders:
    """The ready recordings' folders as one listing per day folder shows them (a batch is about one
    vendor page, so usually one or two day folders): which are committed, which hold anything.

    A pass uses it so that the happy path of a new recording costs no request before its upload
    (no ``metadata.json`` GET, no look for another attempt's original): an empty folder has neither.
    What changes after the listing (a racing worker) is still met by the conditional writes."""
    by_day: dict[str, dict[str, str]] = {}
    for rec in recordings:
        if rec.readiness is not Readiness.READY:
            continue
        try:
            prefix = recording_prefix(account.provider, account.name, rec.started_at, rec.recording_id)
        except PermanentError:
            continue  # a bad id is parked with its reason when it is archived
        day, _, folder = prefix.rstrip("/").rpartition("/")
        by_day.setdefault(day + "/", {})[folder] = rec.recording_id
    seen = Folders()
    for day, folders in by_day.items():
        for info in ctx.storage.list(day):
            folder, _, rest = info.key[len(day):].partition("/")
            recording_id = folders.get(folder)
            if recording_id is not None:
                seen.occupied.add(recording_id)
                if rest == "metadata.json":
                    seen.committed.add(recording_id)
    return seen


class Step(Enum):
    """What a listed recording needs."""

    SKIP = "skip"  # nothing to do now; the outcome says why
    PARK = "park"  # the vendor's record of it is unusable: park it with the problem named
    ARCHIVE = "archive"


_SKIPPED = {
    Readiness.NOT_READY: Outcome.NOT_READY,
    Readiness.NO_RECORDING: Outcome.NO_RECORDING,
    Readiness.DELETED: Outcome.DELETED,
}


def triage(recording: Recording, parked: set[str], committed: set[str] | None = None) -> tuple[Step, Outcome]:
    """The step for ``recording`` given the account's parked names and (when known) committed ids.

    Parked recordings are skipped until re-archived by hand (``rearchive``): a pass never retries
    what was parked with its reason. ``committed`` is ``None`` when the archiver checks for itself.
    """
    skipped = _SKIPPED.get(recording.readiness)
    if skipped is not None:
        return Step.SKIP, skipped
    if parked_name(recording.recording_id) in parked:
        return Step.SKIP, Outcome.PARKED_EARLIER
    if recording.readiness is Readiness.INVALID:
        return Step.PARK, Outcome.PARKED
    if committed is not None and recording.recording_id in committed:
        return Step.SKIP, Outcome.UNCHANGED
    return Step.ARCHIVE, Outcome.ARCHIVED
