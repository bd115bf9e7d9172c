"""Committing a recording: the optional rendition, then ``metadata.json`` (written last).

``metadata.json`` is the commit marker (CONTRACT §3): a recording is archived if and only if it
exists, so a crash at any point before it leaves nothing committed, and a redelivered task that finds
it stops. A commit that lost a race to another worker's is a no-op; one whose first answer was lost
recognises its own bytes and finishes (hooks).

Under ``[retention]`` every object, ``metadata.json`` included, is written locked (``WriteLock`` in
the very request): no committed object is ever unlocked. A recording committed without a lock (an
older version, retention added later) is locked by ``ensure_retention`` when a pass meets it.
``metadata.json`` carries the SHA-256 of its own bytes as its ``sha256`` user metadata (CONTRACT §3).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config.settings import AccountSettings
from config.units import utc_stamp
from providers.base import Recording
from storage.keys import metadata_key
from storage.metadata import StoredObject, build_metadata, dump_metadata, load_metadata, s3_user_metadata
from storage.placement import ensure_lock, lock_for, same_bytes
from worker import __version__
from worker.errors import (
    ChecksumMismatch,
    FolderBusy,
    ObjectExists,
    PermanentError,
    RetryableError,
    StorageError,
    StorageUnavailable,
)
from worker.pipeline.context import ArchiveContext
from worker.pipeline.parking import park
from worker.pipeline.results import ArchiveResult, Outcome
from worker.pipeline.settle import settled

__all__ = [
    "Staged", "base_prefix", "commit_staged", "ensure_retention", "lock_committed", "revisions", "user_meta",
    "write_commit",
]

log = logging.getLogger(__name__)


@dataclass
class Staged:
    """A recording whose original is stored and verified but not yet committed.

    The daemon passes this (as ``as_dict``) from the download task to the transcode task, which
    adds the rendition and writes ``metadata.json``; ``recarchive run`` commits at once.
    """

    prefix: str
    original: StoredObject
    media: dict[str, Any] | None
    extra: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"prefix": self.prefix, "original": self.original.as_dict(), "media": self.media,
                "extra": self.extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Staged:
        return cls(prefix=str(data["prefix"]), original=StoredObject(**data["original"]),
                   media=data.get("media"), extra=dict(data.get("extra") or {}))


def user_meta(account: AccountSettings, recording: Recording, sha256: str) -> dict[str, str]:
    return s3_user_metadata(sha256=sha256, provider=account.provider, account=account.name,
                            recording_id=recording.recording_id)


def commit_staged(ctx: ArchiveContext, account: AccountSettings, recording: Recording, staged: Staged,
                  *, source: Path | None = None) -> ArchiveResult:
    """Finish a staged recording: rendition (from ``source`` or the stored original), then the commit.

    Errors are handled as in ``archive_recording``: recording-level failures are parked.
    """
    started = time.monotonic()
    result = ArchiveResult(account.name, account.provider, recording.recording_id, Outcome.ARCHIVED,
                           listed_at=recording.listed_at, started_at=recording.started_at)
    if staged.extra.get("revision"):
        result.outcome = Outcome.REVISION
    with settled(ctx, account, recording, result, started):
        if source is not None:
            write_commit(ctx, account, recording, staged, source, result)
        else:
            with ctx.workdir.temp_file(".media", expected_size=staged.original.size) as path:
                _fetch_stored(ctx, staged, path)
                write_commit(ctx, account, recording, staged, path, result)
    return result


def _fetch_stored(ctx: ArchiveContext, staged: Staged, path: Path) -> None:
    """Copy the stored original back into the work dir, checking it is still the bytes we staged."""
    relative = staged.prefix + staged.original.key.rsplit("/", 1)[-1]
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for chunk in ctx.storage.iter_bytes(relative):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != staged.original.sha256:
        raise ChecksumMismatch(f"stored original {relative} no longer matches its SHA-256")


def write_commit(ctx: ArchiveContext, account: AccountSettings, recording: Recording, staged: Staged, path: Path,
            result: ArchiveResult, *, placed_now: bool = False) -> None:
    """Rendition, then ``metadata.json``. ``placed_now``: this very call put the original in place a
    moment ago (``recarchive run``: nothing replaces a stored object), so it is not read back; a
    staged recording committed later (the daemon's transcode task) is checked with a HEAD first."""
    prefix = staged.prefix
    objects = [staged.original]
    extra = dict(staged.extra)
    renditions_failed = _rendition(ctx, path, prefix, account, recording, objects)
    if renditions_failed:
        extra["renditions_failed"] = renditions_failed
    if ctx.settings.retention is not None:
        extra["retention"] = {"mode": ctx.settings.retention.mode,
                              "retain_until": utc_stamp(ctx.settings.retention.retain_until()),
                              "legal_hold": ctx.settings.retention.legal_hold,
                              "locked_at_write": True}  # every object of it was written locked
    document = build_metadata(
        provider=account.provider, account=account.name, recording_id=recording.recording_id,
        started_at=recording.started_at, vendor_duration_seconds=recording.vendor_duration_seconds,
        media=staged.media, objects=objects, source=recording.source, archived_at=datetime.now(UTC),
        version=__version__, extra=extra,
    )
    meta_key = metadata_key(prefix)
    body = dump_metadata(document)
    original_key = _relative_keys(prefix, [staged.original])[0]
    if not placed_now and not same_bytes(ctx.storage.head(original_key), staged.original.sha256,
                                         staged.original.size):
        raise FolderBusy(f"{original_key} no longer holds the bytes staged for this commit")
    ctx.hooks.committing(account, document, body)  # the manifest entry first: no commit goes unlisted
    try:
        ctx.storage.put_bytes(meta_key, body, content_type="application/json",
                              metadata=user_meta(account, recording, hashlib.sha256(body).hexdigest()),
                              lock=lock_for(ctx.settings.retention))
    except ObjectExists:
        if not _own_commit(ctx, meta_key, body):
            # another worker committed the same recording first: theirs stands, ours is a no-op
            result.outcome = Outcome.UNCHANGED
            return
        # our own write, whose answer was lost (the store's retry met it): committed, carry on
    result.bytes = staged.original.size
    integrity = extra.get("integrity") or {}
    result.flags = sorted(k for k in integrity if k.endswith("mismatch") or k == "decode_errors")
    if renditions_failed:
        result.flags.append("rendition_failed")
    result.keys = [obj.key for obj in objects] + [ctx.storage.full_key(meta_key)]
    if result.forced:
        ctx.state.unpark(account.name, recording.recording_id)  # passes skip parked ones: only a re-archive
    ctx.hooks.committed(account, document, body)


def _own_commit(ctx: ArchiveContext, meta_key: str, body: bytes) -> bool:
    """Whether the ``metadata.json`` in place is byte for byte the one just sent: a write retried after
    its first answer was lost (a timeout, a cut connection) meets its own object, and must still apply
    retention and report the commit (manifest entry). Another worker's commit differs at least in
    ``archived_at``; one identical to the byte is the same commit anyway."""
    try:
        return ctx.storage.read_bytes(meta_key) == body
    except StorageUnavailable:
        raise
    except (FileNotFoundError, StorageError):
        return False


def _rendition(ctx: ArchiveContext, path: Path, prefix: str, account: AccountSettings, recording: Recording,
               objects: list[StoredObject]) -> list[dict[str, str]]:
    """Add the compact rendition if configured; a failure is recorded and parked, never fatal."""
    fmt = ctx.settings.transcode.rendition
    if fmt == "none":
        return []
    from worker.pipeline.rendition import store_rendition

    try:
        objects.append(store_rendition(ctx, path, prefix, account, recording, fmt))
    except (PermanentError, RetryableError) as exc:
        message = park(ctx, account, recording, exc, attempts=1, kind="rendition")
        return [{"format": fmt, "reason": exc.reason, "message": message}]
    return []


def _relative_keys(prefix: str, objects: list[StoredObject]) -> list[str]:
    return [prefix + obj.key.rsplit("/", 1)[-1] for obj in objects]


def ensure_retention(ctx: ArchiveContext, account: AccountSettings, recording: Recording, prefix: str,
                     committed: dict[str, Any]) -> bool:
    """Lock a recording committed without its lock (an older version that locked after the commit
    and died or was refused, or ``[retention]`` added since): every object it lists, then its
    ``metadata.json`` (written last, so a locked marker means a locked recording), and clear a park
    left by the refusal. True when something was locked."""
    lock = lock_for(ctx.settings.retention)
    if lock is None or lock.retention is None:
        return False
    recorded = committed.get("retention")
    if isinstance(recorded, dict) and recorded.get("locked_at_write") and \
            recorded.get("mode") in (lock.retention.mode, "COMPLIANCE") and \
            (recorded.get("legal_hold") or not lock.legal_hold):
        return False  # written locked as asked (0.2 on): no HEAD per pass; verify reads the store itself
    meta_key = metadata_key(prefix)
    info = ctx.storage.head(meta_key)
    if info is None or (info.retention is not None and (info.legal_hold or not lock.legal_hold)):
        return False
    names = [str(o.get("key", "")).rsplit("/", 1)[-1] for o in committed.get("objects", [])]
    log.warning("%s/%s: committed without its lock; locking it now", account.name, recording.recording_id)
    for key in [prefix + name for name in names if name]:
        ensure_lock(ctx.storage, key, ctx.storage.head(key), lock)
    ensure_lock(ctx.storage, meta_key, info, lock)
    ctx.state.unpark(account.name, recording.recording_id)
    return True


def lock_committed(ctx: ArchiveContext, account: AccountSettings, recording: Recording) -> bool:
    """``ensure_retention`` for a recording known to be committed (the daemon's discovery, which
    does not send committed recordings to a task): one HEAD of its ``metadata.json`` when it is
    locked already. True when something was locked."""
    if ctx.settings.retention is None:
        return False
    from storage.keys import recording_prefix

    prefix = recording_prefix(account.provider, account.name, recording.started_at, recording.recording_id)
    info = ctx.storage.head(metadata_key(prefix))
    lock = lock_for(ctx.settings.retention)
    if info is None or lock is None or (info.retention is not None and (info.legal_hold or not lock.legal_hold)):
        return False
    try:
        committed = load_metadata(ctx.storage.read_bytes(metadata_key(prefix)))
    except (FileNotFoundError, ValueError):
        committed = {"objects": []}
    return ensure_retention(ctx, account, recording, prefix, committed)


def base_prefix(prefix: str) -> str:
    parts = prefix.rstrip("/").split("/")
    if parts and parts[-1].startswith("r") and parts[-1][1:].isdigit():
        parts = parts[:-1]
    return "/".join(parts) + "/"


def revisions(ctx: ArchiveContext, prefix: str, committed: dict[str, Any]) -> tuple[int, set[str]]:
    """The next free revision number (``{prefix}r{n}/``, n >= 2) and the SHA-256 of every committed
    original of this recording, so a re-archive stores changed bytes once and unchanged ones never."""
    known = {str(o.get("sha256")) for o in committed.get("objects", []) if o.get("role") == "original"}
    revision = 2
    while True:
        try:
            document = load_metadata(ctx.storage.read_bytes(metadata_key(f"{prefix}r{revision}/")))
        except FileNotFoundError:
            return revision, known
        except ValueError:
            document = {}
        known |= {str(o.get("sha256")) for o in document.get("objects", []) if o.get("role") == "original"}
        revision += 1
