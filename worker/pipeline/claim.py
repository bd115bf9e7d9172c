"""Putting a recording's original in place when other workers may be doing the same (issue 13).

The rule: once a ``metadata.json`` describes an original, nothing deletes or overwrites it, and no
worker deletes any object a ``metadata.json`` names. Every write is conditional (``If-None-Match`` /
``link``), so two workers racing for one key cannot both win; what the loser does depends on what
stands there (``storage.placement``):

- the same bytes: they are its own too (a racer's, or an attempt that died before its commit); both
  go on to the commit, which is conditional as well: one commits, the other finds it done;
- other bytes, and the folder gets committed (now, or within ``COMMIT_WAIT``: the winner is finishing):
  the loser's bytes are what the vendor serves now, so they become the next revision
  (``{id}/r{n}/``, CONTRACT ``rearchive``), unless some revision already holds them;
- other bytes and no commit: the winner is still working (``FolderBusy``: a later pass tries again)
  or it died long ago (older than ``stale_after``): then its original, a checked copy of what the
  vendor once served, is committed as it stands (``adopt_leftover``: its bytes are read back and must
  match their own ``sha256``, then checked like a download), and the loser's bytes become the
  revision. Nothing is deleted in any case.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config.units import utc_stamp
from providers.base import MediaLink
from storage.base import ObjectInfo
from storage.keys import metadata_key
from storage.metadata import StoredObject, load_metadata
from storage.placement import OtherBytes, lock_for, place_file
from worker.errors import FolderBusy

if TYPE_CHECKING:
    from config.settings import AccountSettings
    from providers.base import Recording
    from worker.pipeline.context import ArchiveContext

__all__ = ["COMMIT_WAIT", "Claim", "adopt_leftover", "committed_document", "original_in_folder", "place_original",
           "stale_after"]

log = logging.getLogger(__name__)

#: how long a loser waits for the winner's commit before leaving the recording to a later pass
COMMIT_WAIT = 20.0
_POLL = 0.2


@dataclass
class Claim:
    """Our original, in the folder where it now stands (the base folder or a revision)."""

    prefix: str
    original: StoredObject
    revision: int | None = None  # None: the base folder


def committed_document(ctx: ArchiveContext, prefix: str) -> dict[str, Any] | None:
    """The folder's ``metadata.json``, or None; an unreadable one still counts as a commit."""
    try:
        return load_metadata(ctx.storage.read_bytes(metadata_key(prefix)))
    except FileNotFoundError:
        return None
    except ValueError:
        return {"objects": []}


def original_in_folder(ctx: ArchiveContext, prefix: str, name: str) -> str | None:
    """The key of an ``original.*`` other than ``name`` already in the folder (bytes of another
    type served to another attempt), so they are met as other bytes rather than stored beside."""
    for info in ctx.storage.list(prefix + "original."):
        if "/" not in info.key[len(prefix):] and info.key != prefix + name:
            return info.key
    return None


def stale_after(ctx: ArchiveContext) -> timedelta:
    """Age past which an uncommitted original's writer is taken for dead: longer than the work that
    may separate an original from its commit (a rendition, a decode), plus an hour of queueing."""
    limits = ctx.settings.limits
    return limits.rendition_timeout + limits.decode_timeout + timedelta(hours=1)


def await_commit(ctx: ArchiveContext, prefix: str, wait: float = COMMIT_WAIT) -> dict[str, Any] | None:
    """The folder's commit, polling up to ``wait`` seconds for a racing winner to finish."""
    deadline = time.monotonic() + wait
    while True:
        document = committed_document(ctx, prefix)
        if document is not None or time.monotonic() >= deadline:
            return document
        time.sleep(_POLL)


def place_original(ctx: ArchiveContext, prefix: str, name: str, path: Path, *, sha256: str, size: int,
                   content_type: str, metadata: dict[str, str],
                   known: set[str] | None = None, empty_folder: bool = False,
                   content_md5: str | None = None,
                   adopt: Callable[[str, ObjectInfo], None] | None = None) -> Claim | None:
    """Put our original at ``{prefix}{name}`` or, when other bytes are committed there, in the next
    revision folder; None when some committed original of the recording already has our bytes.

    ``known``: SHA-256 of the recording's committed originals, when the caller already read them
    (a re-archive): then ``prefix`` is already the revision folder to try first. ``empty_folder``:
    the caller saw ``prefix`` empty moments ago, so the first try skips the look for another original.
    ``content_md5``: the MD5 hashed while downloading, sent so the store checks the upload against it.
    ``adopt(prefix, info)`` commits an abandoned original with other bytes (``adopt_leftover``);
    without it such a recording stays ``FolderBusy``.
    """
    from worker.pipeline.commit import base_prefix, revisions

    base = base_prefix(prefix)
    lock = lock_for(ctx.settings.retention)
    source = ctx.workdir.upload_source(path, size)  # the very spool file that was hashed (workdir.py)
    while True:
        key = prefix + name
        try:
            other = None if empty_folder else original_in_folder(ctx, prefix, name)
            empty_folder = False  # a revision folder is looked at as usual
            if other is not None:
                info = ctx.storage.head(other)
                if info is not None:
                    raise OtherBytes(f"{other} holds another original", info)
            place_file(ctx.storage, key, source, sha256=sha256, size=size, content_type=content_type,
                       metadata=metadata, lock=lock, content_md5=content_md5)
            revision = None if prefix == base else int(prefix.rstrip("/").rsplit("/r", 1)[1])
            return Claim(prefix, StoredObject(ctx.storage.full_key(key), "original", content_type, size, sha256),
                         revision)
        except OtherBytes as exc:
            existing = exc.existing
        age = datetime.now(UTC) - (existing.last_modified or datetime.now(UTC))
        # a live winner is given time to commit; an abandoned one is not waited for
        document = await_commit(ctx, prefix) if age < stale_after(ctx) else committed_document(ctx, prefix)
        if document is None:
            if age < stale_after(ctx):
                raise FolderBusy(f"{existing.key} holds another attempt's uncommitted original "
                                 f"({age.total_seconds():.0f} s old); tried again on a later pass")
            if adopt is None:
                raise FolderBusy(f"{existing.key}: an abandoned uncommitted original with other bytes")
            adopt(prefix, existing)
        base_document = committed_document(ctx, base) or {"objects": []}
        revision, seen = revisions(ctx, base, base_document)
        if sha256 in seen | (known or set()):
            return None
        log.info("%s: other bytes are committed; storing ours as revision %d", base, revision)
        prefix = f"{base}r{revision}/"


def adopt_leftover(ctx: ArchiveContext, account: AccountSettings, recording: Recording, prefix: str,
                   info: ObjectInfo) -> None:
    """Commit, as it stands, the original an attempt stored at ``info.key`` before it died long ago.

    It was checked before it was stored (a download is inspected first), and it is read back now: its
    bytes must match their own ``sha256`` metadata, then they go through the same checks as a
    download. ``metadata.json`` records ``adopted`` (when it was stored). A mismatch leaves the
    recording ``FolderBusy`` for an operator: nothing is deleted either way."""
    from worker.pipeline.check import inspect_spool
    from worker.pipeline.commit import Staged, write_commit
    from worker.pipeline.download import Downloaded
    from worker.pipeline.results import ArchiveResult, Outcome
    from worker.pipeline.sniff import sniff

    with ctx.workdir.temp_file(".media", expected_size=info.size) as path:
        digest = hashlib.sha256()
        size = 0
        with open(path, "wb") as out:
            for chunk in ctx.storage.iter_bytes(info.key):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        sha = digest.hexdigest()
        if sha != info.metadata.get("sha256") or size != info.size:
            raise FolderBusy(f"{info.key}: an abandoned original whose bytes do not match their sha256 metadata")
        with open(path, "rb") as handle:
            sniffed = sniff(handle.read(64 * 1024), recording_id=recording.recording_id)
        link = MediaLink(url=f"storage:{info.key}", expected_size=size)
        media, integrity = inspect_spool(ctx, path, Downloaded(sha, size, sniffed, link), recording)
        stored_at = utc_stamp(info.last_modified) if info.last_modified else None
        extra: dict[str, Any] = {"adopted": {"stored_at": stored_at,
                                             "reason": "an attempt that died before its commit stored it"}}
        if integrity:
            extra["integrity"] = integrity
        original = StoredObject(ctx.storage.full_key(info.key), "original",
                                info.content_type or "application/octet-stream", size, sha)
        result = ArchiveResult(account.name, account.provider, recording.recording_id, Outcome.ARCHIVED,
                               listed_at=recording.listed_at, started_at=recording.started_at)
        log.warning("%s/%s: committing an abandoned original stored at %s", account.name,
                    recording.recording_id, stored_at)
        write_commit(ctx, account, recording, Staged(prefix, original, media, extra), path, result)
