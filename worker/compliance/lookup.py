"""Finding one archived recording by account and id alone, at a bounded cost (``show``, ``export``).

Three ways, cheapest first; each stops at the first that finds the recording:

1. the id index (``worker.compliance.index``): one listing of a handful of keys;
2. the account's day folders: one ``HEAD`` of ``{day}/{id}/metadata.json`` per day from today back
   to the account's ``start`` — a year of days is 366 small requests, whatever the archive's size;
3. the manifests: the account's closed manifests and pending entries, read one at a time (memory:
   one day's manifest), for a recording outside the account's configured days.

Never a listing of the whole archive, and nothing is written (the index is the archiver's to keep).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, cast

from storage.base import ObjectInfo, Storage
from storage.keys import sanitize_id
from worker.compliance._manifest_layout import DAY_FILE, pending_key, root
from worker.compliance.index import INDEX_PREFIX, index_folders
from worker.compliance.walker import Folder, StoredAccount, objects_of, parse_iso

__all__ = [
    "FOUND_BY", "AuditAccount", "Located", "ManifestEntry", "Revision", "audit_account",
    "closed_head", "full_folder", "locate", "manifest_entry", "revisions_of",
]

FOUND_BY = ("index", "day folders", "manifests")
Progress = Callable[[str], None]
#: a late manifest entry goes into the next day that closes; this many days after archiving are searched
_LATE_DAYS = 7


class AuditAccount(Protocol):
    """What finding a recording needs of its account: a configured ``AccountSettings``, or a
    ``StoredAccount`` that only the store knows (no ``start``: its day folders are not probed)."""

    @property
    def name(self) -> str: ...

    @property
    def provider(self) -> str: ...

    @property
    def start(self) -> datetime | None: ...


def audit_account(storage: Storage, configured: Iterable[Any], name: str, providers: Iterable[str]) -> AuditAccount:
    """The account ``name``: the configured one, else one the store holds (an auditor's config may
    name no account at all), its provider found by one first-page listing of its index or its
    folders per provider. ``KeyError`` if neither knows it."""
    for account in configured:
        if account.name == name:
            return cast(AuditAccount, account)
    for provider in providers:
        for prefix in (f"{INDEX_PREFIX}/{provider}/{name}/", f"{provider}/{name}/"):
            listing = storage.list(prefix)
            found = next(iter(listing), None) is not None
            close = getattr(listing, "close", None)
            if close is not None:
                close()
            if found:
                return StoredAccount(provider, name)
    raise KeyError(name)


@dataclass(frozen=True)
class Located:
    """The recording folders of one id (relative prefixes ``{provider}/{account}/YYYY/MM/DD/{id}/``)."""

    recording_id: str
    folders: list[str]
    found_by: str | None

    @property
    def found(self) -> bool:
        return bool(self.folders)


@dataclass
class Revision:
    """One committed ``metadata.json`` of a folder (the base, or ``rN/``) with what it lists."""

    number: int
    metadata_key: str
    document: dict[str, Any]
    body_size: int
    listed: dict[str, ObjectInfo] = field(default_factory=dict)


@dataclass(frozen=True)
class ManifestEntry:
    """Where a recording's manifest lines are: a closed day's manifest, a pending entry, or nowhere."""

    state: str  # "closed" | "pending" | "not found"
    key: str | None
    lines: list[dict[str, Any]]


def locate(storage: Storage, account: AuditAccount, recording_id: str, *, today: date | None = None,
           progress: Progress | None = None) -> Located:
    """The folders of ``recording_id``; ``found_by`` names the way that found them (None: not archived).

    ``ValueError`` for an id that cannot name a folder (it was never archived under that id)."""
    safe = _safe(recording_id)
    tell = progress or (lambda _text: None)
    tell("index")
    folders = [f for f in index_folders(storage, account.provider, account.name, recording_id)
               if storage.head(f + "metadata.json") is not None]
    if folders:
        return Located(recording_id, folders, "index")
    folder = _by_day(storage, account, safe, today or datetime.now(UTC).date(), tell)
    if folder is not None:
        return Located(recording_id, [folder], "day folders")
    folder = _by_manifests(storage, account, recording_id, tell)
    if folder is not None:
        return Located(recording_id, [folder], "manifests")
    return Located(recording_id, [], None)


def _safe(recording_id: str) -> str:
    from worker.errors import PermanentError

    try:
        return sanitize_id(recording_id)
    except PermanentError as exc:
        raise ValueError(exc.message) from None


def _by_day(storage: Storage, account: AuditAccount, safe: str, today: date, tell: Progress) -> str | None:
    if account.start is None:
        return None  # an account only the store knows: its first day is unknown, the manifests tell
    first = account.start.astimezone(UTC).date()
    day = today + timedelta(days=1)  # a start time just past midnight UTC, seen from a clock behind
    while day >= first:
        folder = f"{account.provider}/{account.name}/{day:%Y/%m/%d}/{safe}/"
        tell(f"day {day:%Y-%m-%d}")
        if storage.head(folder + "metadata.json") is not None:
            return folder
        day -= timedelta(days=1)
    return None


def _by_manifests(storage: Storage, account: AuditAccount, recording_id: str, tell: Progress) -> str | None:
    base = storage.full_key("x")[:-1]
    for key in _manifest_keys(storage, account.name):
        tell(f"manifest {key.rsplit('/', 1)[-1]}")
        for line in _lines_of(storage, key):
            if line.get("recording_id") != recording_id or line.get("role") != "metadata":
                continue
            full = str(line.get("key", ""))
            rel = full[len(base):] if full.startswith(base) else full
            folder = _base_folder(rel)
            if folder and storage.head(folder + "metadata.json") is not None:
                return folder
    return None


def _manifest_keys(storage: Storage, account: str) -> Iterator[str]:
    """Pending entries first (recent recordings), then closed manifests newest first. Only their
    names are held: one per day, a few thousand for a decade."""
    closed: list[str] = []
    for info in storage.list(root(account)):
        rest = info.key[len(root(account)):]
        if rest.startswith("pending/"):
            yield info.key
        elif DAY_FILE.match(rest):
            closed.append(info.key)
    yield from reversed(closed)


def _lines_of(storage: Storage, key: str) -> Iterator[dict[str, Any]]:
    try:
        body = storage.read_bytes(key)
    except FileNotFoundError:
        return  # a pending entry closed between the listing and this read
    if key.endswith(".json"):
        try:
            document = json.loads(body)
        except ValueError:
            return
        lines = document.get("lines") if isinstance(document, dict) else None
        yield from (line for line in lines or [] if isinstance(line, dict))
        return
    for text in body.decode("utf-8", "replace").splitlines()[1:]:
        try:
            line = json.loads(text)
        except ValueError:
            continue
        if isinstance(line, dict):
            yield line


def _base_folder(metadata_rel: str) -> str | None:
    """``p/a/Y/M/D/{id}/`` of ``p/a/Y/M/D/{id}/metadata.json`` or ``p/a/Y/M/D/{id}/rN/metadata.json``."""
    parts = metadata_rel.split("/")
    if len(parts) == 7 or (len(parts) == 8 and parts[6][:1] == "r" and parts[6][1:].isdigit()):
        return "/".join(parts[:6]) + "/"
    return None


def revisions_of(storage: Storage, folder: str) -> tuple[list[Revision], list[str]]:
    """Every committed revision of a folder, in order, and the keys no ``metadata.json`` lists.

    ``ValueError`` if a ``metadata.json`` cannot be read as one of ours."""
    listing = Folder(prefix=folder, day=None, folder_id=folder.rstrip("/").rsplit("/", 1)[-1])
    for info in storage.list(folder):
        listing.listed[info.key] = info
    revisions: list[Revision] = []
    covered: set[str] = set()
    for number, meta in enumerate(listing.metadata_keys, start=1):
        body = storage.read_bytes(meta)
        document = load_document_bytes(body, meta)
        revision = Revision(int(document.get("revision") or number), meta, document, len(body))
        for obj in objects_of(storage, meta, document):
            stored = listing.listed.get(obj.key)
            if stored is not None:
                revision.listed[obj.key] = stored
            covered.add(obj.key)
        covered.add(meta)
        revisions.append(revision)
    return revisions, [k for k in listing.listed if k not in covered]


def load_document_bytes(body: bytes, key: str) -> dict[str, Any]:
    from storage.metadata import load_metadata

    try:
        return load_metadata(body)
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None


def manifest_entry(storage: Storage, account: str, revision: Revision, *,
                   closed_head: date | None = None) -> ManifestEntry:
    """The manifest lines of one committed revision: its pending entry if its day is not closed yet,
    else the lines of the closed manifest of its archiving day (or of one of the few days after,
    where a late entry goes). Bounded: at most ``2 + _LATE_DAYS`` small reads."""
    from storage.keys import manifest_key

    meta_full = storage.full_key(revision.metadata_key)
    wanted = {meta_full} | {str(o.get("key")) for o in revision.document.get("objects", []) if isinstance(o, dict)}
    archived = parse_iso(revision.document.get("archived_at"))
    if archived is None:
        return ManifestEntry("not found", None, [])
    day = archived.astimezone(UTC).date()
    pending = pending_key(account, day, meta_full)
    lines = [line for line in _lines_of(storage, pending) if line.get("key") in wanted]
    if lines:
        return ManifestEntry("pending", storage.full_key(pending), lines)
    for offset in range(_LATE_DAYS + 1):
        candidate = day + timedelta(days=offset)
        if closed_head is not None and candidate > closed_head:
            break
        key = manifest_key(account, candidate)
        lines = [line for line in _lines_of(storage, key) if line.get("key") in wanted]
        if lines:
            return ManifestEntry("closed", storage.full_key(key), lines)
    return ManifestEntry("not found", None, [])


def closed_head(storage: Storage, account: str) -> date | None:
    """The newest closed manifest day of ``account`` (a listing of its manifests: one key per day)."""
    newest: date | None = None
    for info in storage.list(root(account)):
        match = DAY_FILE.match(info.key[len(root(account)):])
        if match:
            newest = date.fromisoformat(match.group(1))
    return newest


def full_folder(storage: Storage, folder: str) -> str:
    """A folder prefix as stored (``full_key`` takes object keys only, never a trailing slash)."""
    return storage.full_key(folder + "metadata.json")[: -len("metadata.json")]
