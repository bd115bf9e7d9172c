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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from config.settings import AccountSettings
from providers.base import Readiness, Recording, Window
from storage.keys import metadata_key, recording_prefix
from worker.daemon.payload import recording_from_payload, recording_to_payload
from worker.errors import AccountError, ArchiverError, ConfigError, NoRecording, NotReady, PermanentError
from worker.pipeline.archive import ArchiveResult, Outcome, Staged, archive_recording, commit_staged
from worker.pipeline.context import ArchiveContext
from worker.pipeline.passes import discover, discovery_window, order_for_download
from worker.pipeline.state import ParkedRecord, parked_name
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
class DiscoverySummary:
    account: str
    provider: str
    window: Window | None = None
    skipped: bool = False  # another pass held the account's lock
    found: int = 0
    enqueued: int = 0
    already_queued: int = 0
    archived: int = 0
    parked: int = 0
    not_ready: int = 0
    no_recording: int = 0
    deleted: int = 0
    watermark: datetime | None = None
    not_ready_ids: list[str] = field(default_factory=list)
    pending_ids: list[str] = field(default_factory=list)
    deleted_ids: list[str] = field(default_factory=list)
    no_recording_ids: list[str] = field(default_factory=list)
    oldest_pending_expires_at: datetime | None = None

    @property
    def pending(self) -> int:
        return len(self.pending_ids)

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account, "provider": self.provider, "skipped": self.skipped,
            "window": None if self.window is None else
            {"since": _stamp(self.window.since), "until": _stamp(self.window.until)},
            "found": self.found, "enqueued": self.enqueued, "already_queued": self.already_queued,
            "archived": self.archived, "pending": self.pending, "not_ready": self.not_ready,
            "parked": self.parked, "no_recording": self.no_recording, "deleted": self.deleted,
            "watermark": _stamp(self.watermark), "not_ready_ids": sorted(self.not_ready_ids),
            "deleted_ids": sorted(self.deleted_ids), "no_recording_ids": sorted(self.no_recording_ids),
            "oldest_pending_expires_at": _stamp(self.oldest_pending_expires_at),
        }


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def discover_and_enqueue(
    ctx: ArchiveContext,
    account: AccountSettings,
    enqueue: Callable[[Recording], None],
    lock: Lock,
    dedupe: Dedupe,
    *,
    now: datetime | None = None,
) -> DiscoverySummary:
    """One discovery pass for ``account`` (see the module docstring); ``AccountError`` propagates
    after being written to ``last_pass`` so ``recarchive status`` shows it."""
    summary = DiscoverySummary(account.name, account.provider)
    if not lock.acquire():
        summary.skipped = True
        log.info("discovery of %s skipped: another pass holds its lock", account.name)
        return summary
    try:
        now = now or datetime.now(UTC).replace(microsecond=0)
        summary.window = discovery_window(ctx, account, now)
        try:
            recordings = order_for_download(discover(ctx, account, summary.window))
        except AccountError as exc:
            _record_failure(ctx, account, exc)
            raise
        summary.found = len(recordings)
        committed = _committed_ids(ctx, account, recordings)
        parked = ctx.state.parked_names(account.name)
        holding: list[datetime] = []
        for rec in recordings:
            if rec.readiness is Readiness.NOT_READY:
                summary.not_ready += 1
                summary.not_ready_ids.append(rec.recording_id)
                holding.append(rec.listed_at)
            elif rec.readiness is Readiness.NO_RECORDING:
                summary.no_recording += 1
                summary.no_recording_ids.append(rec.recording_id)
            elif rec.readiness is Readiness.DELETED:
                summary.deleted += 1
                summary.deleted_ids.append(rec.recording_id)
            elif rec.recording_id in committed:
                summary.archived += 1
            elif parked_name(rec.recording_id) in parked:
                summary.parked += 1
            else:
                holding.append(rec.listed_at)
                summary.pending_ids.append(rec.recording_id)
                if rec.expires_at is not None and (summary.oldest_pending_expires_at is None
                                                   or rec.expires_at < summary.oldest_pending_expires_at):
                    summary.oldest_pending_expires_at = rec.expires_at
                _enqueue_once(account, rec, enqueue, dedupe, summary)
        mark = min([*holding, summary.window.until])
        ctx.state.save_watermark(account.name, mark, provider=account.provider)
        summary.watermark = ctx.state.watermark(account.name)
        ctx.state.save_last_pass(account.name, {
            **summary.as_dict(), "mode": "daemon",
            "finished_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        })
        return summary
    finally:
        lock.release()


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


def _committed_ids(ctx: ArchiveContext, account: AccountSettings, recordings: Iterable[Recording]) -> set[str]:
    """Ids whose ``metadata.json`` exists: one listing per day folder instead of a HEAD per recording."""
    by_day: dict[str, dict[str, str]] = {}
    for rec in recordings:
        if rec.readiness is not Readiness.READY:
            continue
        try:
            prefix = recording_prefix(account.provider, account.name, rec.started_at, rec.recording_id)
        except PermanentError:
            continue  # a bad id is enqueued and parked by the archive task with its reason
        day, _, folder = prefix.rstrip("/").rpartition("/")
        by_day.setdefault(day + "/", {})[folder] = rec.recording_id
    committed: set[str] = set()
    for day, folders in by_day.items():
        for info in ctx.storage.list(day):
            folder, _, rest = info.key[len(day):].partition("/")
            if rest == "metadata.json" and folder in folders:
                committed.add(folders[folder])
    return committed


def _record_failure(ctx: ArchiveContext, account: AccountSettings, exc: ArchiverError) -> None:
    previous = ctx.state.last_pass(account.name) or {}
    ctx.state.save_last_pass(account.name, {
        **previous, "error": mask_secrets(str(exc)), "error_reason": exc.reason,
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    })


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
    message = mask_secrets(exc.message)
    log.warning("parked %s/%s after %d attempts: %s (%s)", account.name, recording.recording_id, attempts,
                message, exc.reason)
    ctx.state.park(account.name, ParkedRecord(
        recording_id=recording.recording_id, reason=exc.reason, message=message,
        parked_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), attempts=attempts,
        started_at=recording.started_at.isoformat(), listed_at=recording.listed_at.isoformat(),
    ))
    ctx.emit("parked", account, recording, exc)
    return ArchiveResult(account.name, account.provider, recording.recording_id, Outcome.PARKED,
                         reason=exc.reason, message=message, listed_at=recording.listed_at,
                         started_at=recording.started_at)
