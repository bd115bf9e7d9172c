"""Archiving one recording: the pipeline of DESIGN.md as one plain function.

``archive_recording`` is what ``recarchive run``, ``rearchive`` and the Celery download task all call.
It is idempotent by construction: the key layout is deterministic and ``metadata.json`` is written
last, so a finished recording is a no-op and a crash at any point leaves nothing committed.

Order of work, and why:
1. ``metadata.json`` exists → done (unless re-archiving by hand).
2. Resolve the link at the last moment; stream it into a local spool while hashing; the first bytes
   must be media. 410/403/expired page → resolve again; cut → Range-resume; 429 → Retry-After.
3. Probe and decode the spool before anything is stored: a broken body is never stored.
4. Upload the original (never overwriting, never deleting: ``claim.py``), then the optional rendition,
   each locked in the request that writes it under ``[retention]``.
5. Write ``metadata.json`` (the commit), locked the same way.
"""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from config.settings import AccountSettings
from providers.base import Readiness, Recording
from storage.keys import metadata_key, recording_prefix
from worker.errors import CorruptMedia, InvalidRecord
from worker.pipeline.check import extension, inspect_spool
from worker.pipeline.claim import adopt_leftover, committed_document, place_original
from worker.pipeline.commit import (
    Staged,
    base_prefix,
    commit_staged,
    ensure_retention,
    revisions,
    user_meta,
    write_commit,
)
from worker.pipeline.context import AccountHandle, ArchiveContext
from worker.pipeline.download import download_recording
from worker.pipeline.results import ArchiveResult, Outcome
from worker.pipeline.settle import settled
from worker.pipeline.sniff import CONTENT_TYPES

__all__ = ["ArchiveResult", "Outcome", "Staged", "archive_recording", "commit_staged"]

log = logging.getLogger(__name__)

_READINESS_OUTCOME = {
    Readiness.NOT_READY: Outcome.NOT_READY,
    Readiness.NO_RECORDING: Outcome.NO_RECORDING,
    Readiness.DELETED: Outcome.DELETED,
}


def archive_recording(
    ctx: ArchiveContext, account: AccountSettings, recording: Recording, *, force: bool = False,
    commit: bool = True, empty_folder: bool = False, transfer_slot: AbstractContextManager[Any] | None = None,
) -> ArchiveResult:
    """Archive one recording; never raises for a recording-level failure (it is parked instead).

    Raises only what must stop more than this recording: ``AccountError`` (the account's pass),
    ``StorageUnavailable`` (the run), and — when ``ctx.retry.park_on_exhaustion`` is off, as in the
    daemon — ``RetryableError`` so that the task queue retries later. With ``commit=False`` a newly
    stored original is returned as ``Outcome.STAGED`` with ``result.staged`` for ``commit_staged``.
    ``empty_folder``: the caller listed the recording's folder moments ago and it held nothing (a
    pass's ``scan_folders``), so there is no commit to read and no other original to meet; a racing
    writer since then is still met by the conditional writes. ``transfer_slot`` (a semaphore) is held
    while the recording's bytes move (download, checks, the original's upload) and released for the
    commit's small writes, so a pass's ``--concurrency`` bounds transfers, not every request.
    """
    started = time.monotonic()
    result = ArchiveResult(account.name, account.provider, recording.recording_id, Outcome.ARCHIVED,
                           listed_at=recording.listed_at, started_at=recording.started_at, forced=force)
    if recording.readiness in _READINESS_OUTCOME:
        result.outcome = _READINESS_OUTCOME[recording.readiness]
        return result
    handle = ctx.handle(account)
    with settled(ctx, account, recording, result, started):
        if recording.readiness is Readiness.INVALID:
            raise InvalidRecord(recording.problem or "the vendor's record is unusable",
                                recording_id=recording.recording_id)
        prefix = recording_prefix(account.provider, account.name, recording.started_at, recording.recording_id)
        committed = None if empty_folder else committed_document(ctx, prefix)
        if committed is not None:
            ensure_retention(ctx, account, recording, prefix, committed)  # a re-archive locks it too
            if not force:
                result.outcome = Outcome.UNCHANGED
                return result
        _archive(ctx, handle, recording, prefix, committed, result, commit, empty_folder,
                 transfer_slot or nullcontext())
    return result


def _archive(ctx: ArchiveContext, handle: AccountHandle, recording: Recording, prefix: str,
             committed: dict[str, Any] | None, result: ArchiveResult, commit: bool, empty_folder: bool,
             transfer_slot: AbstractContextManager[Any]) -> None:
    with ctx.workdir.temp_file(".media") as path:
        with transfer_slot:
            staged = _stage(ctx, handle, recording, prefix, committed, result, path, empty_folder)
        if staged is None:
            return
        if not commit:
            result.outcome = Outcome.STAGED
            result.staged = staged
            result.bytes = staged.original.size
            return
        write_commit(ctx, handle.account, recording, staged, path, result, placed_now=True)


def _stage(ctx: ArchiveContext, handle: AccountHandle, recording: Recording, prefix: str,
           committed: dict[str, Any] | None, result: ArchiveResult, path: Path, empty_folder: bool) -> Staged | None:
    """Download, verify and store the original; None when the bytes are already archived."""
    account = handle.account
    download = download_recording(ctx, handle, recording, path)
    try:
        media, integrity = inspect_spool(ctx, path, download, recording)
    except CorruptMedia:
        log.info("%s/%s does not decode; downloading once more", account.name, recording.recording_id)
        download = download_recording(ctx, handle, recording, path)
        media, integrity = inspect_spool(ctx, path, download, recording)
    ext = extension(download.sniffed, media)
    if download.link.redacted:  # what the vendor serves is its redacted version (Siro): say so
        media = {**(media or {}), "redacted": True}
    extra: dict[str, Any] = {}
    known: set[str] | None = None
    if committed is not None:
        revision, known = revisions(ctx, prefix, committed)
        if download.sha256 in known:
            result.outcome = Outcome.UNCHANGED
            return None
        prefix = f"{prefix}r{revision}/"
    if integrity:
        extra["integrity"] = integrity
    meta = user_meta(account, recording, download.sha256)
    claim = place_original(ctx, prefix, f"original.{ext}", path, sha256=download.sha256, size=download.size,
                           content_type=CONTENT_TYPES[ext], metadata=meta, known=known, empty_folder=empty_folder,
                           content_md5=download.content_md5,
                           adopt=lambda where, info: adopt_leftover(ctx, account, recording, where, info))
    if claim is None:  # a committed original of this recording already has these bytes
        result.outcome = Outcome.UNCHANGED
        return None
    if claim.revision is not None:
        extra.update(revision=claim.revision,
                     supersedes=ctx.storage.full_key(metadata_key(base_prefix(claim.prefix))))
        result.outcome = Outcome.REVISION
    return Staged(claim.prefix, claim.original, media, extra)
