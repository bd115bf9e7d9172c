"""Archiving one recording: the pipeline of DESIGN.md as one plain function.

``archive_recording`` is what ``recarchive run``, ``rearchive`` and the Celery download task all call.
It is idempotent by construction: the key layout is deterministic and ``metadata.json`` is written
last, so a finished recording is a no-op and a crash at any point leaves nothing committed.

Order of work, and why:
1. ``metadata.json`` exists → done (unless re-archiving by hand).
2. Resolve the link at the last moment; stream it into a local spool while hashing; the first bytes
   must be media. 410/403/expired page → resolve again; cut → Range-resume; 429 → Retry-After.
3. Probe and decode the spool before anything is stored: a broken body is never stored.
4. Upload the original (never overwriting), then the optional rendition.
5. Write ``metadata.json`` (the commit), then retention / legal hold on every object.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from config.settings import AccountSettings
from providers.base import MediaLink, Readiness, Recording
from storage.base import Retention
from storage.keys import metadata_key, recording_prefix
from storage.metadata import (
    StoredObject,
    build_metadata,
    dump_metadata,
    load_metadata,
    s3_user_metadata,
)
from worker import __version__
from worker.errors import (
    AccountError,
    ArchiverError,
    ChecksumMismatch,
    CorruptMedia,
    Interrupted,
    LinkExpired,
    NoRecording,
    NotMedia,
    NotReady,
    ObjectExists,
    PermanentError,
    RateLimited,
    RetryableError,
    StorageError,
    StorageUnavailable,
    Unavailable,
)
from worker.pipeline.context import AccountHandle, ArchiveContext
from worker.pipeline.fetch import DEFAULT_MAX_BYTES, Spool, fetch_into
from worker.pipeline.sniff import CONTENT_TYPES, Sniffed, sniff
from worker.pipeline.state import ParkedRecord
from worker.redact import mask_secrets

__all__ = ["ArchiveResult", "Outcome", "Staged", "archive_recording", "commit_staged"]

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class _Download:
    sha256: str
    size: int
    sniffed: Sniffed
    link: MediaLink


_READINESS_OUTCOME = {
    Readiness.NOT_READY: Outcome.NOT_READY,
    Readiness.NO_RECORDING: Outcome.NO_RECORDING,
    Readiness.DELETED: Outcome.DELETED,
}


def archive_recording(
    ctx: ArchiveContext, account: AccountSettings, recording: Recording, *, force: bool = False,
    commit: bool = True,
) -> ArchiveResult:
    """Archive one recording; never raises for a recording-level failure (it is parked instead).

    Raises only what must stop more than this recording: ``AccountError`` (the account's pass),
    ``StorageUnavailable`` (the run), and — when ``ctx.retry.park_on_exhaustion`` is off, as in the
    daemon — ``RetryableError`` so that the task queue retries later. With ``commit=False`` a newly
    stored original is returned as ``Outcome.STAGED`` with ``result.staged`` for ``commit_staged``.
    """
    started = time.monotonic()
    result = ArchiveResult(account.name, account.provider, recording.recording_id, Outcome.ARCHIVED,
                           listed_at=recording.listed_at, started_at=recording.started_at, forced=force)
    if recording.readiness in _READINESS_OUTCOME:
        result.outcome = _READINESS_OUTCOME[recording.readiness]
        return result
    handle = ctx.handle(account)
    with _settled(ctx, account, recording, result, started):
        prefix = recording_prefix(account.provider, account.name, recording.started_at, recording.recording_id)
        committed = _committed(ctx, prefix)
        if committed is not None and not force:
            result.outcome = Outcome.UNCHANGED
            _ensure_retention(ctx, account, recording, prefix, committed)
            return result
        _archive(ctx, handle, recording, prefix, committed, result, commit)
    return result


@contextlib.contextmanager
def _settled(ctx: ArchiveContext, account: AccountSettings, recording: Recording, result: ArchiveResult,
             started: float) -> Iterator[None]:
    """Turn a recording-level error into the result's outcome (parked, not ready, no recording);
    let through only what must stop more than this recording."""
    try:
        yield
    except NotReady:
        result.outcome = Outcome.NOT_READY
    except NoRecording as exc:
        result.outcome = Outcome.DELETED if exc.reason == "deleted" else Outcome.NO_RECORDING
        result.message = mask_secrets(str(exc))
    except (AccountError, StorageUnavailable):
        raise
    except RetryableError as exc:
        if not ctx.retry.park_on_exhaustion:
            raise
        _park(ctx, account, recording, exc, result)
    except ArchiverError as exc:
        _park(ctx, account, recording, exc, result)
    finally:
        result.seconds = time.monotonic() - started


def _committed(ctx: ArchiveContext, prefix: str) -> dict[str, Any] | None:
    try:
        return load_metadata(ctx.storage.read_bytes(metadata_key(prefix)))
    except FileNotFoundError:
        return None
    except ValueError:
        # a metadata.json we cannot read is still a commit marker: never overwrite it
        return {"objects": []}


def _park(ctx: ArchiveContext, account: AccountSettings, recording: Recording, exc: ArchiverError,
          result: ArchiveResult) -> None:
    message = mask_secrets(exc.message)
    result.outcome = Outcome.PARKED
    result.reason = exc.reason
    result.message = message
    log.warning("parked %s/%s: %s (%s)", account.name, recording.recording_id, message, exc.reason)
    ctx.state.park(account.name, ParkedRecord(
        recording_id=recording.recording_id, reason=exc.reason, message=message,
        parked_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), attempts=ctx.retry.max_attempts,
        started_at=recording.started_at.isoformat(), listed_at=recording.listed_at.isoformat(),
    ))
    ctx.emit("parked", account, recording, exc)


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


def _archive(ctx: ArchiveContext, handle: AccountHandle, recording: Recording, prefix: str,
             committed: dict[str, Any] | None, result: ArchiveResult, commit: bool) -> None:
    with ctx.workdir.temp_file(".media") as path:
        staged = _stage(ctx, handle, recording, prefix, committed, result, path)
        if staged is None:
            return
        if not commit:
            result.outcome = Outcome.STAGED
            result.staged = staged
            result.bytes = staged.original.size
            return
        _commit(ctx, handle.account, recording, staged, path, result)


def _stage(ctx: ArchiveContext, handle: AccountHandle, recording: Recording, prefix: str,
           committed: dict[str, Any] | None, result: ArchiveResult, path: Path) -> Staged | None:
    """Download, verify and store the original; None when the bytes are already archived."""
    account = handle.account
    download = _download(ctx, handle, recording, path)
    try:
        media, integrity = _inspect(ctx, path, download, recording)
    except CorruptMedia:
        log.info("%s/%s does not decode; downloading once more", account.name, recording.recording_id)
        download = _download(ctx, handle, recording, path)
        media, integrity = _inspect(ctx, path, download, recording)
    ext = _extension(download.sniffed, media)
    extra: dict[str, Any] = {}
    if committed is not None:
        revision, known = _revisions(ctx, prefix, committed)
        if download.sha256 in known:
            result.outcome = Outcome.UNCHANGED
            return None
        prefix = f"{prefix}r{revision}/"
        extra = {"revision": revision, "supersedes": ctx.storage.full_key(metadata_key(_base(prefix)))}
        result.outcome = Outcome.REVISION
    if integrity:
        extra["integrity"] = integrity
    user_meta = _user_meta(account, recording, download.sha256)
    original = _store_original(ctx, prefix + f"original.{ext}", path, download, CONTENT_TYPES[ext], user_meta)
    return Staged(prefix, original, media, extra)


def _user_meta(account: AccountSettings, recording: Recording, sha256: str) -> dict[str, str]:
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
    with _settled(ctx, account, recording, result, started):
        if source is not None:
            _commit(ctx, account, recording, staged, source, result)
        else:
            with ctx.workdir.temp_file(".media", expected_size=staged.original.size) as path:
                _fetch_stored(ctx, staged, path)
                _commit(ctx, account, recording, staged, path, result)
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


def _commit(ctx: ArchiveContext, account: AccountSettings, recording: Recording, staged: Staged, path: Path,
            result: ArchiveResult) -> None:
    prefix = staged.prefix
    objects = [staged.original]
    extra = dict(staged.extra)
    renditions_failed = _rendition(ctx, path, prefix, account, recording, objects)
    if renditions_failed:
        extra["renditions_failed"] = renditions_failed
    if ctx.settings.retention is not None:
        extra["retention"] = {"mode": ctx.settings.retention.mode,
                              "retain_until": ctx.settings.retention.retain_until().strftime("%Y-%m-%dT%H:%M:%SZ"),
                              "legal_hold": ctx.settings.retention.legal_hold}
    document = build_metadata(
        provider=account.provider, account=account.name, recording_id=recording.recording_id,
        started_at=recording.started_at, vendor_duration_seconds=recording.vendor_duration_seconds,
        media=staged.media, objects=objects, source=recording.source, archived_at=datetime.now(UTC),
        version=__version__, extra=extra,
    )
    meta_key = metadata_key(prefix)
    body = dump_metadata(document)
    try:
        ctx.storage.put_bytes(meta_key, body, content_type="application/json",
                              metadata=_user_meta(account, recording, staged.original.sha256))
    except ObjectExists:
        if not _own_commit(ctx, meta_key, body):
            # another worker committed the same recording first: theirs stands, ours is a no-op
            result.outcome = Outcome.UNCHANGED
            return
        # our own write, whose answer was lost (the store's retry met it): committed, carry on
    _apply_retention(ctx, [*_relative_keys(prefix, objects), meta_key])
    result.bytes = staged.original.size
    integrity = extra.get("integrity") or {}
    result.flags = sorted(k for k in integrity if k.endswith("mismatch") or k == "decode_errors")
    if renditions_failed:
        result.flags.append("rendition_failed")
    result.keys = [obj.key for obj in objects] + [ctx.storage.full_key(meta_key)]
    if result.forced:
        ctx.state.unpark(account.name, recording.recording_id)  # passes skip parked ones: only a re-archive
    ctx.emit("archived", account, document, body)


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


def _download(ctx: ArchiveContext, handle: AccountHandle, recording: Recording, path: Path) -> _Download:
    """Fetch the recording into ``path`` with bounded retries; raise the last error when exhausted."""
    policy = ctx.retry
    rid = recording.recording_id
    attempts = refreshes = resumes = 0
    refreshed_for_not_media = False
    link: MediaLink | None = None
    refresh = False
    last_size = -1
    max_bytes = ctx.max_bytes or DEFAULT_MAX_BYTES

    def head_check(head: bytes) -> None:
        sniff(head, recording_id=rid)

    with Spool(path, head_check=head_check) as spool:
        while True:
            try:
                if link is None or refresh:
                    link = handle.provider.resolve_media(recording, refresh=refresh)
                    refresh = False
                    if link.expected_size:
                        ctx.workdir.ensure_space(link.expected_size - spool.size)
                fetch_into(ctx.http, link, spool, handle.policy, max_bytes=max_bytes, recording_id=rid)
                spool.check_head()
                sniffed = sniff(bytes(spool.head), recording_id=rid)
                sha = spool.finish()
                if link.expected_size is not None and spool.size != link.expected_size:
                    raise ChecksumMismatch(
                        f"received {spool.size} bytes, the vendor announced {link.expected_size}", recording_id=rid)
                return _Download(sha, spool.size, sniffed, link)
            except NotMedia:
                # an expired-link page served with 200 looks like this too: one fresh link, then park
                if refreshed_for_not_media:
                    raise
                refreshed_for_not_media = True
                spool.reset()
                refresh = True
            except ChecksumMismatch:
                attempts += 1
                if attempts >= policy.max_attempts:
                    raise
                spool.reset()
                refresh = True
            except LinkExpired:
                refreshes += 1
                if refreshes > policy.max_refreshes:
                    raise
                refresh = True
            except Interrupted:
                resumes += 1
                progressed = spool.size > last_size
                last_size = spool.size
                if resumes > policy.max_resumes or (not progressed and resumes > 3):
                    raise
                if not progressed:
                    ctx.sleep(_backoff(policy.backoff_base, policy.backoff_max, resumes))
            except RateLimited as exc:
                attempts += 1
                wait = exc.retry_after if exc.retry_after is not None else _backoff(
                    policy.backoff_base, policy.backoff_max, attempts)
                if attempts >= policy.max_attempts or wait > policy.max_retry_after:
                    raise
                ctx.sleep(wait)
            except Unavailable:
                attempts += 1
                if attempts >= policy.max_attempts:
                    raise
                ctx.sleep(_backoff(policy.backoff_base, policy.backoff_max, attempts))


def _backoff(base: float, cap: float, attempt: int) -> float:
    delay: float = min(cap, base * (2 ** (attempt - 1)))
    return delay * (0.5 + random.random() / 2)


def _inspect(ctx: ArchiveContext, path: Path, download: _Download,
             recording: Recording) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Probe and decode-check the spooled bytes; ``CorruptMedia`` when they do not decode at all."""
    if not ctx.check_media:
        return None, {}
    from worker.media import inspect as media_tools

    info = media_tools.probe_media(path, hint=download.sniffed.ext)
    report = media_tools.check_decode(path)
    if not report.ok and not report.decoded_seconds:
        raise CorruptMedia(f"the {download.sniffed.ext} body does not decode: {report.message or 'no audio'}",
                           recording_id=recording.recording_id)
    integrity: dict[str, Any] = {"decode": report.as_metadata()}
    # a cut MP3 still claims its full length in its header: what decoded is the evidence
    tolerance = ctx.settings.transcode.duration_tolerance
    measured = report.decoded_seconds if report.decoded_seconds is not None else info.duration_seconds
    flag = media_tools.duration_flag(measured, recording.vendor_duration_seconds, tolerance)
    if flag is not None:
        integrity["duration_mismatch"] = flag
    header_flag = media_tools.duration_flag(report.decoded_seconds, info.duration_seconds, tolerance)
    if header_flag is not None:
        integrity["header_duration_mismatch"] = header_flag
    if not report.ok:
        integrity["decode_errors"] = True
    return info.as_metadata(), integrity


def _extension(sniffed: Sniffed, media: dict[str, Any] | None) -> str:
    """The sniffed container, refined by the probe for ISO-BMFF (audio-only m4a vs video mp4)."""
    if media and sniffed.ext in ("m4a", "mp4") and media.get("container") in ("m4a", "mp4"):
        return str(media["container"])
    return sniffed.ext


def _store_original(ctx: ArchiveContext, key: str, path: Path, download: _Download, content_type: str,
                    user_meta: dict[str, str]) -> StoredObject:
    try:
        ctx.storage.put_file(key, path, content_type=content_type, metadata=user_meta)
    except ObjectExists:
        existing = ctx.storage.head(key)
        same = existing is not None and existing.size == download.size and \
            existing.metadata.get("sha256") == download.sha256
        if not same:
            # left by an attempt that crashed before its commit: uncommitted, so replace it
            log.info("replacing an uncommitted object at %s", key)
            ctx.storage.delete(key)
            ctx.storage.put_file(key, path, content_type=content_type, metadata=user_meta)
    return StoredObject(ctx.storage.full_key(key), "original", content_type, download.size, download.sha256)


def _rendition(ctx: ArchiveContext, path: Path, prefix: str, account: AccountSettings, recording: Recording,
               objects: list[StoredObject]) -> list[dict[str, str]]:
    """Add the compact rendition if configured; a failure is recorded and parked, never fatal."""
    fmt = ctx.settings.transcode.rendition
    if fmt == "none":
        return []
    from worker.media.rendition import store_rendition

    try:
        objects.append(store_rendition(ctx, path, prefix, account, recording, fmt))
    except (PermanentError, RetryableError) as exc:
        message = mask_secrets(exc.message)
        ctx.state.park(account.name, ParkedRecord(
            recording_id=recording.recording_id, reason=exc.reason, message=message,
            parked_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), attempts=1,
            started_at=recording.started_at.isoformat(), listed_at=recording.listed_at.isoformat(),
            kind="rendition",
        ))
        return [{"format": fmt, "reason": exc.reason, "message": message}]
    return []


def _relative_keys(prefix: str, objects: list[StoredObject]) -> list[str]:
    return [prefix + obj.key.rsplit("/", 1)[-1] for obj in objects]


def _apply_retention(ctx: ArchiveContext, keys: list[str]) -> None:
    retention = ctx.settings.retention
    if retention is None:
        return
    rule = Retention(retention.mode, retention.retain_until())
    for key in keys:
        ctx.storage.set_retention(key, rule)
        if retention.legal_hold:
            ctx.storage.set_legal_hold(key, True)


def _ensure_retention(ctx: ArchiveContext, account: AccountSettings, recording: Recording, prefix: str,
                      committed: dict[str, Any]) -> None:
    """Finish a commit whose retention step failed (the process died, or the store refused):
    the marker exists but is not locked. Re-apply to every object it lists, then clear the park."""
    if ctx.settings.retention is None:
        return
    meta_key = metadata_key(prefix)
    info = ctx.storage.head(meta_key)
    if info is None or info.retention is not None:
        return
    names = [str(o.get("key", "")).rsplit("/", 1)[-1] for o in committed.get("objects", [])]
    log.warning("%s/%s: committed without retention; applying it now", account.name, recording.recording_id)
    _apply_retention(ctx, [prefix + name for name in names if name] + [meta_key])
    ctx.state.unpark(account.name, recording.recording_id)


def _base(prefix: str) -> str:
    parts = prefix.rstrip("/").split("/")
    if parts and parts[-1].startswith("r") and parts[-1][1:].isdigit():
        parts = parts[:-1]
    return "/".join(parts) + "/"


def _revisions(ctx: ArchiveContext, prefix: str, committed: dict[str, Any]) -> tuple[int, set[str]]:
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
