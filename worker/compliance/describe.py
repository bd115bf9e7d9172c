"""What ``recarchive show`` tells about one archived recording, as one JSON-ready document.

Everything comes from storage alone (no vendor): the folder's revisions, each object's recorded size
and SHA-256 next to what the store reports for it (size, the ``sha256`` user metadata, Object Lock
retention and legal hold), and the manifest entry. Nothing is re-hashed here — ``show`` must stay
cheap on a large recording; ``verify`` and ``export`` re-read the bytes. A stored size or recorded
hash that already disagrees with ``metadata.json`` is listed under ``problems``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from config.units import utc_stamp
from storage.base import ObjectInfo, Storage
from worker.compliance.lookup import (
    AuditAccount,
    Revision,
    closed_head,
    full_folder,
    locate,
    manifest_entry,
    revisions_of,
)
from worker.compliance.walker import objects_of

__all__ = ["SHOW_SCHEMA", "describe_recording", "recorded_hash_agrees"]

SHOW_SCHEMA = "recarchive.show/1"


def describe_recording(storage: Storage, account: AuditAccount, recording_id: str, *,
                       progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The ``show`` document; ``archived`` is False (and nothing else is filled in) if not found.

    ``ValueError`` for an id that cannot name a folder, or a ``metadata.json`` that is not ours."""
    located = locate(storage, account, recording_id, progress=progress)
    document: dict[str, Any] = {"schema": SHOW_SCHEMA, "storage": storage.url, "account": account.name,
                                "provider": account.provider, "recording_id": recording_id,
                                "archived": located.found, "found_by": located.found_by, "folders": [],
                                "problems": []}
    if not located.found:
        return document
    head = closed_head(storage, account.name)
    for folder in located.folders:
        revisions, unlisted = revisions_of(storage, folder)
        document["folders"].append({
            "folder": full_folder(storage, folder),
            "revisions": [_revision(storage, account, revision, head, document["problems"])
                          for revision in revisions],
            "unlisted": [storage.full_key(key) for key in unlisted],
        })
    return document


def _revision(storage: Storage, account: AuditAccount, revision: Revision, head: Any,
              problems: list[dict[str, Any]]) -> dict[str, Any]:
    doc = revision.document
    content_types = {str(o.get("key")): o.get("content_type") for o in doc.get("objects", []) if isinstance(o, dict)}
    objects = []
    listed = objects_of(storage, revision.metadata_key, doc)
    original_sha = next((obj.sha256 for obj in listed if obj.role == "original"), None)
    for obj in listed:
        info = storage.head(obj.key)
        objects.append(_object(storage, obj.full_key, obj.role, content_types.get(obj.full_key), obj.size,
                               obj.sha256, info, problems, original_sha))
    body = storage.read_bytes(revision.metadata_key)
    meta_info = storage.head(revision.metadata_key)
    objects.append(_object(storage, storage.full_key(revision.metadata_key), "metadata", "application/json",
                           len(body), hashlib.sha256(body).hexdigest(), meta_info, problems, original_sha))
    entry = manifest_entry(storage, account.name, revision, closed_head=head)
    return {
        "revision": revision.number,
        "metadata_key": storage.full_key(revision.metadata_key),
        "started_at": doc.get("started_at"), "archived_at": doc.get("archived_at"),
        "vendor_duration_seconds": doc.get("vendor_duration_seconds"), "media": doc.get("media"),
        "supersedes": doc.get("supersedes"), "retention": doc.get("retention"),
        "objects": objects,
        "manifest": {"state": entry.state, "key": entry.key, "lines": entry.lines},
    }


def recorded_hash_agrees(role: str, stored_sha: str | None, sha256: str, original_sha: str | None) -> bool:
    """Whether the ``sha256`` user metadata the store keeps beside an object agrees with the hash
    expected for it (absent: nothing to compare). A ``metadata.json`` written before 0.2 carries
    its original's hash there, not its own: that is accepted for the ``metadata`` role."""
    if stored_sha is None:
        return True
    found = stored_sha.lower()
    return found == sha256 or (role == "metadata" and original_sha is not None and found == original_sha)


def _object(storage: Storage, full_key: str, role: str, content_type: Any, size: int, sha256: str,
            info: ObjectInfo | None, problems: list[dict[str, Any]], original_sha: str | None) -> dict[str, Any]:
    stored_sha = (info.metadata.get("sha256") or None) if info is not None else None
    if info is None:
        problems.append({"key": full_key, "problem": "missing", "expected": f"{sha256} {size}", "found": None})
    elif info.size != size:
        problems.append({"key": full_key, "problem": "size differs from metadata.json", "expected": str(size),
                         "found": str(info.size)})
    elif not recorded_hash_agrees(role, stored_sha, sha256, original_sha):
        problems.append({"key": full_key, "problem": "sha256 user metadata differs from metadata.json",
                         "expected": sha256, "found": stored_sha})
    retention = info.retention if info is not None else None
    return {
        "key": full_key, "role": role, "content_type": content_type, "size": size, "sha256": sha256,
        "stored": info is not None, "stored_size": info.size if info is not None else None,
        "stored_sha256": stored_sha,
        "retention": {"mode": retention.mode, "retain_until": utc_stamp(retention.retain_until)}
        if retention is not None else None,
        "legal_hold": info.legal_hold if info is not None else None,
    }
