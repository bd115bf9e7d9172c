"""Operational state that must outlive a process, kept in storage under ``{prefix}/_state/``.

Per account: ``watermark.json`` (how far discovery has durably got), ``parked/{id}.json`` (each
failure parked with its reason) and ``last_pass.json`` (what the latest pass saw: counts and the ids
still not ready). Redis holds none of this, so flushing Redis loses nothing (CONTRACT §3).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from storage.base import Storage
from storage.keys import sanitize_id, state_key
from storage.metadata import iso
from worker.errors import PermanentError

__all__ = ["ParkedRecord", "StateStore", "parked_name"]


@dataclass(frozen=True)
class ParkedRecord:
    recording_id: str
    reason: str
    message: str
    parked_at: str
    attempts: int
    started_at: str | None = None
    listed_at: str | None = None
    kind: str = "recording"  # or "rendition": the original is archived, its rendition failed

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def parked_name(recording_id: str) -> str:
    """The file name (without ``.json``) of a recording's parked record: its ``sanitize_id`` form,
    whatever the id. Ids ``sanitize_id`` refuses (``.``, ``..``, empty, over-long) are exactly the
    ones most in need of parking, and a leading dot would make a backend-reserved name; both get
    names ``sanitize_id`` never produces (it encodes as ``%XX`` with upper-case hex and never encodes
    a dot), so no two ids share a record. The document itself carries the id as the vendor sent it."""
    try:
        name = sanitize_id(recording_id)
    except PermanentError:
        digest = hashlib.sha256(str(recording_id).encode("utf-8", "surrogatepass")).hexdigest()
        return f"%bad-{digest[:40]}"
    return "%2E" + name[1:] if name.startswith(".") else name


class StateStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def _read(self, key: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self.storage.read_bytes(key))
        except FileNotFoundError:
            return None
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _write(self, key: str, document: Mapping[str, Any]) -> None:
        body = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()
        self.storage.put_bytes(key, body, content_type="application/json", overwrite=True)

    # -- watermark -----------------------------------------------------------------------------
    def watermark(self, account: str) -> datetime | None:
        document = self._read(state_key(account, "watermark.json"))
        if not document or not document.get("watermark"):
            return None
        try:
            return datetime.fromisoformat(str(document["watermark"]).replace("Z", "+00:00"))
        except ValueError:
            return None

    def save_watermark(self, account: str, moment: datetime, *, provider: str) -> None:
        previous = self.watermark(account)
        if previous is not None and moment < previous:
            moment = previous  # never move backwards: the lookback re-lists what came late
        self._write(state_key(account, "watermark.json"),
                    {"watermark": iso(moment), "provider": provider, "updated_at": iso(datetime.now(UTC))})

    # -- parked failures -------------------------------------------------------------------------
    def _parked_key(self, account: str, recording_id: str, kind: str) -> str:
        suffix = "" if kind == "recording" else f".{kind}"
        return state_key(account, f"parked/{parked_name(recording_id)}{suffix}.json")

    def park(self, account: str, record: ParkedRecord) -> None:
        self._write(self._parked_key(account, record.recording_id, record.kind), record.as_dict())

    def unpark(self, account: str, recording_id: str, kind: str = "recording") -> None:
        key = self._parked_key(account, recording_id, kind)
        if self.storage.head(key) is not None:
            self.storage.delete(key)

    def parked_names(self, account: str) -> set[str]:
        """``parked_name`` of every recording parked as failed, from one listing (a failed rendition
        does not count: its recording is archived). Compare with ``parked_name(recording_id)``."""
        root = state_key(account, "parked/")
        names = set()
        for info in self.storage.list(root):
            name = info.key[len(root):]
            if name.endswith(".json") and "/" not in name and not name.endswith(".rendition.json"):
                names.add(name[: -len(".json")])
        return names

    def is_parked(self, account: str, recording_id: str) -> bool:
        return self.storage.head(self._parked_key(account, recording_id, "recording")) is not None

    def parked(self, account: str) -> Iterator[ParkedRecord]:
        for info in self.storage.list(state_key(account, "parked/")):
            document = self._read(info.key)
            if document is None:
                continue
            try:
                yield ParkedRecord(
                    recording_id=str(document["recording_id"]), reason=str(document["reason"]),
                    message=str(document.get("message", "")), parked_at=str(document.get("parked_at", "")),
                    attempts=int(document.get("attempts", 0)), started_at=document.get("started_at"),
                    listed_at=document.get("listed_at"), kind=str(document.get("kind", "recording")),
                )
            except (KeyError, TypeError, ValueError):
                continue

    # -- last pass -------------------------------------------------------------------------------
    def last_pass(self, account: str) -> dict[str, Any] | None:
        return self._read(state_key(account, "last_pass.json"))

    def save_last_pass(self, account: str, summary: Mapping[str, Any]) -> None:
        self._write(state_key(account, "last_pass.json"), summary)
