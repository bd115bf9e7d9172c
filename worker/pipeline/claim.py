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
  vendor once served, is committed as it stands (``adopt``), and the loser's bytes become the
  revision. Nothing is deleted in any case.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storage.keys import metadata_key
from storage.metadata import StoredObject, load_metadata
from storage.placement import OtherBytes, lock_for, place_file
from worker.errors import FolderBusy

if TYPE_CHECKING:
    from worker.pipeline.context import ArchiveContext

__all__ = ["COMMIT_WAIT", "Claim", "committed_document", "original_in_folder", "stale_after"]

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
                   content_md5: str | None = None) -> Claim | None:
    """Put our original at ``{prefix}{name}`` or, when other bytes are committed there, in the next
    revision folder; None when some committed original of the recording already has our bytes.

    ``known``: SHA-256 of the recording's committed originals, when the caller already read them
    (a re-archive): then ``prefix`` is already the revision folder to try first. ``empty_folder``:
    the caller saw ``prefix`` empty moments ago, so the first try skips the look for another original.
    ``content_md5``: the MD5 hashed while downloading, sent so the store checks the upload against it.
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
        document = await_commit(ctx, prefix)
        if document is None:
            age = datetime.now(UTC) - (existing.last_modified or datetime.now(UTC))
            if age < stale_after(ctx):
                raise FolderBusy(f"{existing.key} holds another attempt's uncommitted original "
                                 f"({age.total_seconds():.0f} s old); tried again on a later pass")
            _adopt(ctx, prefix, existing.key)
        base_document = committed_document(ctx, base) or {"objects": []}
        revision, seen = revisions(ctx, base, base_document)
        if sha256 in seen | (known or set()):
            return None
        log.info("%s: other bytes are committed; storing ours as revision %d", base, revision)
        prefix = f"{base}r{revision}/"


def _adopt(ctx: ArchiveContext, prefix: str, key: str) -> None:
    """Commit an original whose writer died long ago, as it stands (never deleted: it is a copy of
    what the vendor once served, checked before it was stored). Left to the caller's next step when
    its bytes do not match their own metadata: ``FolderBusy``."""
    raise FolderBusy(f"{key}: an abandoned uncommitted original with other bytes; "
                     "`recarchive rearchive` stores the current bytes as a revision")
