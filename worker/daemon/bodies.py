"""The daemon's work as plain functions: what the Celery tasks in ``tasks/`` call.

``recarchive run`` does discovery and archiving in one process (``worker/pipeline/passes.py``); the daemon
splits the same steps across a queue:

- ``discover_and_enqueue`` (beat, ``discover`` queue): list the window like ``runner.discover``,
  enqueue one archive task per recording that is neither committed nor parked (once: a per-recording
  dedupe key), and advance the watermark only past recordings that are archived or parked — to the
  earliest ``listed_at`` still pending or not ready, else the window's end (CONTRACT §4.6). Pending
  recordings hold the watermark, so whatever Redis loses is listed and enqueued again next pass.
- ``archive_task_body`` (``download`` queue): ``archive_recording``; with a rendition configured the
  original is staged and the commit is left to ``transcode_task_body`` (``transcode`` queue), so a
  long transcode never holds a download slot.

Recordings travel as JSON (``recording_to_payload``). A signed URL or token never goes to Redis: any
hint value carrying a query is dropped, and the provider re-resolves the link when it runs.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from config.settings import AccountSettings
from providers.base import Recording
from storage.keys import metadata_key
from worker.daemon.payload import recording_from_payload, recording_to_payload
from worker.errors import AccountError, ArchiverError, ConfigError, NoRecording, NotReady
from worker.pipeline.archive import ArchiveResult, Outcome, Staged, archive_recording, commit_staged
from worker.pipeline.commit import lock_committed
from worker.pipeline.context import ArchiveContext
from worker.pipeline.discovery import Step, committed_ids, discovery_window, listed_batches, triage
from worker.pipeline.ledger import AccountLedger
from worker.pipeline.parking import park
from worker.pipeline.passes import account_failed, settle_account
from worker.redact import mask_secrets

__all__ = [
    "DaemonOptions",
    "Dedupe",
    "DiscoverySummary",
    "Lock",
    "archive_task_body",
    "discover_and_enqueue",
    "park_exhausted",
    "recording_from_payload",
    "recording_to_payload",
    "task_time_limits",
    "transcode_task_body",
]

log = logging.getLogger(__name__)

#: providers whose ``resolve_media`` cannot work without the listing's hint (providers/convoso.py
#: raises NoRecording): when their hint had to be dropped, the recording is read again by id first
_NEEDS_LISTING_HINT = frozenset({"convoso"})


# -- options -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DaemonOptions:
    """Daemon knobs that are not part of the TOML contract, read from the environment.

    ``visibility_timeout`` must exceed the longest download: a task still running when it passes is
    delivered a second time (harmless, but wasted work).
    """

    visibility_timeout: float = 6 * 3600.0  # RECARCHIVE_VISIBILITY_TIMEOUT
    max_retries: int = 5  # RECARCHIVE_MAX_RETRIES: task retries before a recording is parked
    retry_backoff: float = 30.0  # RECARCHIVE_RETRY_BACKOFF: first retry delay, doubled each time
    retry_backoff_max: float = 1800.0
    attempts_per_task: int = 3  # transient failures tried inside one task before it is retried

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DaemonOptions:
        env = os.environ if environ is None else environ
        base = cls()
        return cls(
            visibility_timeout=_env_number(env, "RECARCHIVE_VISIBILITY_TIMEOUT", base.visibility_timeout, 1.0),
            max_retries=int(_env_number(env, "RECARCHIVE_MAX_RETRIES", base.max_retries, 0.0)),
            retry_backoff=_env_number(env, "RECARCHIVE_RETRY_BACKOFF", base.retry_backoff, 0.0),
        )


def _env_number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not a number") from None
    if not math.isfinite(value) or value < minimum:
        raise ConfigError(f"{name}={text!r} must be at least {minimum:g}")
    return value


def task_time_limits(recording: Recording, options: DaemonOptions) -> tuple[float, float]:
    """(soft, hard) seconds for one archive task, scaled to the recording's expected size.

    The size is estimated from the vendor's duration (video ~2 Mbit/s, audio up to 16-bit stereo
    16 kHz) and a pessimistic 256 KB/s; decoding checks add a fraction of the duration. Unknown
    durations get half an hour. The hard limit stays below the visibility timeout when that allows.
    """
    duration = recording.vendor_duration_seconds
    if duration is None or duration <= 0:
        soft = 1800.0
    else:
        rate = 250_000 if recording.is_video else 64_000
        soft = 300.0 + duration * rate / 256_000 + duration * 0.5
    hard = soft + 120.0
    ceiling = options.visibility_timeout * 0.9
    if ceiling >= 600 and hard > ceiling:
        hard = ceiling
        soft = min(soft, hard - 60)
    return round(soft), round(hard)


# -- discovery ---------------------------------------------------------------------------------------

class Lock(Protocol):
    def acquire(self) -> bool: ...

    def release(self) -> None: ...


class Dedupe(Protocol):
    def claim(self, account: str, recording_id: str) -> bool: ...

    def release(self, account: str, recording_id: str) -> None: ...


@dataclass
class DiscoverySummary(AccountLedger):
    """The daemon's view of a discovery pass: the shared ledger, read in the daemon's words."""

    skipped: bool = False  # another pass held the account's lock

    @property
    def pending(self) -> int:
        """Recordings handed to archive tasks (enqueued now or already queued)."""
        return self.counts[Outcome.QUEUED]

    @property
    def archived(self) -> int:
        return self.counts[Outcome.UNCHANGED]

    @property
    def parked(self) -> int:
        return self.counts[Outcome.PARKED] + self.counts[Outcome.PARKED_EARLIER]

    @property
    def not_ready(self) -> int:
        return self.counts[Outcome.NOT_READY]

    @property
    def no_recording(self) -> int:
        return self.counts[Outcome.NO_RECORDING]

    @property
    def deleted(self) -> int:
        return self.counts[Outcome.DELETED]

    def as_dict(self, *, with_results: bool = True) -> dict[str, Any]:
        return {**super().as_dict(with_results=with_results), "skipped": self.skipped, "pending": self.pending,
                "archived": self.archived}


def discover_and_enqueue(
    ctx: ArchiveContext,
    account: AccountSettings,
    enqueue: Callable[[Recording], None],
    lock: Lock,
    dedupe: Dedupe,
    *,
    now: datetime | None = None,
) -> DiscoverySummary:
    """One discovery pass for ``account`` through the shared core (``worker.pipeline.passes``): each
    batch of the listing is triaged, checked against what is committed with one listing per day
    folder, and what is left is enqueued once (the dedupe key) and holds the watermark until a later
    pass finds it committed or parked. ``AccountError`` propagates after the account is settled
    (``recarchive status`` shows it)."""
    summary = DiscoverySummary(account.name, account.provider)
    if not lock.acquire():
        summary.skipped = True
        log.info("discovery of %s skipped: another pass holds its lock", account.name)
        return summary
    now = now or datetime.now(UTC).replace(microsecond=0)
    try:
        summary.window = discovery_window(ctx, account, now)
        parked = ctx.state.parked_names(account.name)
        for batch in listed_batches(ctx, account, summary.window):
            committed = committed_ids(ctx, account, batch)
            for recording in batch:
                summary.listed(recording)
                if recording.recording_id in committed:
                    lock_committed(ctx, account, recording)  # [retention]: one committed unlocked is locked now
                step, outcome = triage(recording, parked, committed)
                if step is Step.PARK:
                    summary.record(archive_recording(ctx, account, recording))  # parks it, no network
                    continue
                if step is Step.ARCHIVE:
                    summary.hold(recording)
                    _enqueue_once(account, recording, enqueue, dedupe, summary)
                    outcome = Outcome.QUEUED
                elif outcome is Outcome.NOT_READY:
                    summary.hold(recording)
                elif outcome is Outcome.PARKED_EARLIER:
                    summary.unarchived(recording)
                summary.note(outcome, recording.recording_id)
    except AccountError as exc:
        account_failed(summary, exc)
        raise
    finally:
        try:
            settle_account(ctx, account, summary, now=now, manual_window=False, mode="daemon")
        finally:
            lock.release()
    return summary


def _enqueue_once(account: AccountSettings, rec: Recording, enqueue: Callable[[Recording], None],
                  dedupe: Dedupe, summary: DiscoverySummary) -> None:
    if not dedupe.claim(account.name, rec.recording_id):
        summary.already_queued += 1
        return
    try:
        enqueue(rec)
    except BaseException:
        dedupe.release(account.name, rec.recording_id)  # not queued after all: let the next pass try
        raise
    summary.enqueued += 1


# -- archiving ---------------------------------------------------------------------------------------

def archive_task_body(
    ctx: ArchiveContext,
    account: AccountSettings,
    payload: Mapping[str, Any],
    *,
    transcode: Callable[[Recording, Staged], None] | None = None,
    force: bool = False,
) -> ArchiveResult:
    """Archive one queued recording. With a rendition configured and ``transcode`` given, a newly
    stored original is handed to ``transcode`` (the next task) instead of being committed here.

    Raises what ``archive_recording`` raises (``RetryableError`` for the task to retry later,
    ``AccountError``, ``StorageUnavailable``), plus ``PermanentError`` from re-reading a recording
    whose hint was dropped (the task parks it).
    """
    recording = recording_from_payload(payload)
    if payload.get("hint_dropped") and account.provider in _NEEDS_LISTING_HINT:
        fresh = _reread(ctx, account, recording)
        if isinstance(fresh, ArchiveResult):
            return fresh
        recording = fresh
    staged_later = transcode is not None and ctx.settings.transcode.rendition != "none"
    result = archive_recording(ctx, account, recording, force=force, commit=not staged_later)
    if result.outcome is Outcome.STAGED:
        assert transcode is not None and result.staged is not None
        transcode(recording, result.staged)
    return result


def _reread(ctx: ArchiveContext, account: AccountSettings, recording: Recording) -> Recording | ArchiveResult:
    """The recording with a fresh hint from the vendor (the queued one lost its signed URL)."""
    result = ArchiveResult(account.name, account.provider, recording.recording_id, Outcome.NOT_READY,
                           listed_at=recording.listed_at, started_at=recording.started_at)
    try:
        fresh = ctx.handle(account).provider.get_recording(recording.recording_id)
    except NotReady:
        return result
    except NoRecording as exc:
        result.outcome = Outcome.NO_RECORDING
        result.message = mask_secrets(str(exc))
        return result
    return replace(recording, hint=dict(fresh.hint))


def transcode_task_body(ctx: ArchiveContext, account: AccountSettings, payload: Mapping[str, Any],
                        staged: Mapping[str, Any]) -> ArchiveResult:
    """Add the rendition to a staged original and commit; a redelivered task finds the commit and stops."""
    recording = recording_from_payload(payload)
    stage = Staged.from_dict(dict(staged))
    try:
        ctx.storage.read_bytes(metadata_key(stage.prefix))
    except FileNotFoundError:
        return commit_staged(ctx, account, recording, stage)
    return ArchiveResult(account.name, account.provider, recording.recording_id, Outcome.UNCHANGED,
                         listed_at=recording.listed_at, started_at=recording.started_at)


def park_exhausted(ctx: ArchiveContext, account: AccountSettings, payload: Mapping[str, Any],
                   exc: ArchiverError, attempts: int) -> ArchiveResult:
    """Park a recording whose task retries ran out (or that failed permanently outside the pipeline),
    with its reason, so ``recarchive status`` shows it and the watermark may pass it."""
    recording = recording_from_payload(payload)
    message = park(ctx, account, recording, exc, attempts=attempts)
    return ArchiveResult(account.name, account.provider, recording.recording_id, Outcome.PARKED,
                         reason=exc.reason, message=message, listed_at=recording.listed_at,
                         started_at=recording.started_at)
