"""Walking what is archived in storage: recording folders, their ``metadata.json`` and objects.

Shared by ``verify``, ``hold``, ``report`` and the manifests. Only storage listings are used (never
the vendor): an archive must stay provable when the vendor is gone. A window lists only the day
folders it covers (``{provider}/{account}/YYYY/MM/DD/``), so checking one week of a ten-year archive
costs one week of listings.

Listings come back in key order, so every object of one recording folder arrives together: folders
are grouped as a stream and memory stays bounded by the largest folder, not the archive.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from storage.base import ObjectInfo, Storage
from storage.metadata import load_metadata

__all__ = [
    "AccountRef",
    "ArchivedObject",
    "Folder",
    "StoredAccount",
    "account_root",
    "day_prefixes",
    "dumps_line",
    "folders",
    "hash_stream",
    "load_document",
    "named_accounts",
    "objects_of",
    "parse_iso",
    "relative_key",
    "stored_accounts",
    "window_days",
]

_METADATA = "metadata.json"


class AccountRef(Protocol):
    """What walking an account needs: where its folders are. A configured ``AccountSettings``, or a
    ``StoredAccount`` found in storage that the config does not name."""

    @property
    def provider(self) -> str: ...

    @property
    def name(self) -> str: ...


@dataclass(frozen=True)
class StoredAccount:
    """An account found in storage, not in the config: no ``start`` is known for it."""

    provider: str
    name: str
    start: datetime | None = None


def stored_accounts(storage: Storage, progress: Any = None) -> list[StoredAccount]:
    """Every ``{provider}/{account}/`` that holds objects, by one streamed listing of the store.

    Memory is one entry per account, whatever the archive's size; the cost is a listing of every
    key (the storage protocol has no delimiter listing). Top-level names starting with ``_`` are the
    archiver's own (state, manifests, index) and keys with fewer than three segments are no
    recording's; both are skipped. ``progress(keys_seen)`` is called every 10,000 keys."""
    found: dict[tuple[str, str], None] = {}
    last: tuple[str, str] | None = None
    for count, info in enumerate(storage.list(""), start=1):
        if progress is not None and count % 10000 == 0:
            progress(count)
        if info.key.startswith("_"):
            continue
        parts = info.key.split("/", 2)
        if len(parts) < 3:
            continue
        pair = (parts[0], parts[1])
        if pair != last:
            found[pair] = None
            last = pair
    return [StoredAccount(provider, name) for provider, name in found]


@dataclass(frozen=True)
class ArchivedObject:
    """One object a ``metadata.json`` lists (``key`` relative to the storage prefix)."""

    key: str
    full_key: str
    role: str
    size: int
    sha256: str


@dataclass
class Folder:
    """One recording folder ``{provider}/{account}/YYYY/MM/DD/{id}/`` and every object listed under it.

    ``stray`` is set for keys under the account that do not fit the layout at all (no day folders).
    """

    prefix: str
    day: date | None
    folder_id: str
    listed: dict[str, ObjectInfo] = field(default_factory=dict)
    stray: bool = False

    @property
    def metadata_keys(self) -> list[str]:
        """The base ``metadata.json`` and each revision's (``rN/metadata.json``), in order."""
        keys = [k for k in self.listed if k.endswith("/" + _METADATA) and _is_commit(self.prefix, k)]
        return sorted(keys, key=lambda k: (k.count("/"), _revision_number(self.prefix, k), k))


def _is_commit(prefix: str, key: str) -> bool:
    rest = key[len(prefix):]
    if rest == _METADATA:
        return True
    parts = rest.split("/")
    return len(parts) == 2 and parts[1] == _METADATA and _revision(parts[0]) is not None


def _revision(segment: str) -> int | None:
    if segment.startswith("r") and segment[1:].isdigit():
        return int(segment[1:])
    return None


def _revision_number(prefix: str, key: str) -> int:
    rest = key[len(prefix):].split("/")
    return (_revision(rest[0]) or 0) if len(rest) == 2 else 0


def named_accounts(storage: Storage, providers: Iterable[str]) -> list[StoredAccount]:
    """The accounts the archiver's own records name, found cheaply whatever the archive's size: the
    account names under ``_manifests/`` and ``_state/`` (a few keys per account and day), each
    located by one short listing per provider (``{provider}/{name}/``, first page only).

    For a windowed audit, where a listing of the whole store would cost far more than the window:
    an account whose manifests and state were all removed is found only by ``stored_accounts``."""
    names: dict[str, None] = {}
    for top in ("_manifests/", "_state/"):
        for info in storage.list(top):
            name = info.key[len(top):].split("/", 1)[0]
            if name and "/" in info.key[len(top):]:
                names.setdefault(name, None)
    found: list[StoredAccount] = []
    for name in names:
        for provider in providers:
            listing = storage.list(f"{provider}/{name}/")
            if next(iter(listing), None) is not None:
                found.append(StoredAccount(provider, name))
            close = getattr(listing, "close", None)
            if close is not None:
                close()
    return found


def account_root(account: AccountRef) -> str:
    return f"{account.provider}/{account.name}/"


def day_prefixes(account: AccountRef, first: date, last: date) -> list[str]:
    """The day folders from ``first`` to ``last`` inclusive (UTC days of ``started_at``)."""
    root = account_root(account)
    out: list[str] = []
    day = first
    while day <= last:
        out.append(f"{root}{day:%Y/%m/%d}/")
        day += timedelta(days=1)
    return out


def window_days(since: datetime | None, until: datetime | None) -> tuple[date, date] | None:
    """The inclusive UTC days a ``[since, until)`` started_at window touches; None for "everything"."""
    if since is None and until is None:
        return None
    first = (since or datetime(1970, 1, 1, tzinfo=UTC)).astimezone(UTC).date()
    end = (until or datetime.now(UTC) + timedelta(days=1)).astimezone(UTC)
    last = (end - timedelta(microseconds=1)).date()
    return first, max(first, last)


def folders(storage: Storage, account: AccountRef, days: tuple[date, date] | None = None) -> Iterator[Folder]:
    """Every recording folder of ``account`` (in the inclusive day range, if given), as a stream."""
    root = account_root(account)
    prefixes = [root] if days is None else day_prefixes(account, *days)
    return _group(root, (info for prefix in prefixes for info in storage.list(prefix)))


def _group(root: str, infos: Iterable[ObjectInfo]) -> Iterator[Folder]:
    current: Folder | None = None
    for info in infos:
        folder = _folder_of(root, info.key)
        if current is None or folder.prefix != current.prefix:
            if current is not None:
                yield current
            current = folder
        current.listed[info.key] = info
    if current is not None:
        yield current


def _folder_of(root: str, key: str) -> Folder:
    parts = key[len(root):].split("/") if key.startswith(root) else []
    if len(parts) >= 5 and all(p.isdigit() for p in parts[:3]):
        try:
            day = date(int(parts[0]), int(parts[1]), int(parts[2]))
        except ValueError:
            day = None
        if day is not None:
            prefix = root + "/".join(parts[:4]) + "/"
            return Folder(prefix=prefix, day=day, folder_id=parts[3])
    return Folder(prefix=key, day=None, folder_id="", stray=True)


def load_document(storage: Storage, key: str) -> dict[str, Any]:
    """A ``metadata.json``; ``FileNotFoundError`` if absent, ``ValueError`` if it is not one of ours."""
    return load_metadata(storage.read_bytes(key))


def relative_key(storage: Storage, full_key: str, metadata_key: str) -> str:
    """The storage-relative key of an object a ``metadata.json`` names by its full key.

    The full key normally starts with the storage prefix; if the archive was moved under another
    prefix, the object is looked for beside its ``metadata.json`` (where the pipeline writes it).
    """
    base = storage.full_key(_METADATA)[: -len(_METADATA)]
    if full_key.startswith(base) and len(full_key) > len(base):
        return full_key[len(base):]
    return metadata_key.rsplit("/", 1)[0] + "/" + full_key.rsplit("/", 1)[-1]


def objects_of(storage: Storage, metadata_key: str, document: dict[str, Any]) -> list[ArchivedObject]:
    """The objects a ``metadata.json`` lists; malformed entries raise ``ValueError``."""
    out: list[ArchivedObject] = []
    entries = document.get("objects")
    if not isinstance(entries, list):
        raise ValueError(f"{metadata_key}: 'objects' is not a list")
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise ValueError(f"{metadata_key}: an object entry has no key")
        try:
            size = int(entry["size"])
            sha = str(entry["sha256"]).lower()
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{metadata_key}: object {entry['key']} has no size/sha256") from exc
        full = entry["key"]
        out.append(ArchivedObject(relative_key(storage, full, metadata_key), full, str(entry.get("role", "")),
                                  size, sha))
    return out


def hash_stream(chunks: Iterable[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def parse_iso(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def dumps_line(document: dict[str, Any]) -> str:
    """One canonical JSONL line (sorted keys, no spaces): the same entry always hashes the same."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
