"""Observers of the pipeline: a typed base class whose methods do nothing, and the set of them.

Compliance (manifests, the id index), metrics and progress subscribe by subclassing ``ArchiveHooks``
and overriding only what they need (s3transfer's subscribers). The pipeline calls each event through
``Hooks``, which fans out to every installed observer; observers are installed once, when the
context is built, never by event-name strings.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from config.settings import AccountSettings
    from providers.base import Recording
    from worker.errors import ArchiverError

__all__ = ["ArchiveHooks", "Hooks"]


class ArchiveHooks:
    """Override the events you need; each one is called in the thread that caused it."""

    def committing(self, account: AccountSettings, document: dict[str, Any], body: bytes) -> None:
        """A recording's ``metadata.json`` is about to be written (its exact bytes): what must exist
        whatever happens next (the manifest entry, written as an intent) is written here; raising
        stops the commit, which is then retried like any failed write."""

    def committed(self, account: AccountSettings, document: dict[str, Any], body: bytes) -> None:
        """A recording's ``metadata.json`` (``body``, parsed as ``document``) was just written."""

    def parked(self, account: AccountSettings, recording: Recording, error: ArchiverError) -> None:
        """A recording was parked with ``error.reason`` after its retries ran out."""

    def settled(self, account: AccountSettings, watermark: datetime | None, *, now: datetime) -> None:
        """An account's pass (``run``'s or the daemon's discovery) saved its watermark; ``None`` for
        a manual window, which moves no watermark. Manifests close the days that ended here."""


class Hooks(ArchiveHooks):
    """Every installed observer, called in installation order; adding one twice is a no-op."""

    def __init__(self, observers: Iterable[ArchiveHooks] = ()) -> None:
        self._observers: list[ArchiveHooks] = []
        for observer in observers:
            self.install(observer)

    def install(self, observer: ArchiveHooks) -> None:
        if not any(type(existing) is type(observer) for existing in self._observers):
            self._observers.append(observer)

    def __iter__(self) -> Any:
        return iter(self._observers)

    def committing(self, account: AccountSettings, document: dict[str, Any], body: bytes) -> None:
        for observer in self._observers:
            observer.committing(account, document, body)

    def committed(self, account: AccountSettings, document: dict[str, Any], body: bytes) -> None:
        for observer in self._observers:
            observer.committed(account, document, body)

    def parked(self, account: AccountSettings, recording: Recording, error: ArchiverError) -> None:
        for observer in self._observers:
            observer.parked(account, recording, error)

    def settled(self, account: AccountSettings, watermark: datetime | None, *, now: datetime) -> None:
        for observer in self._observers:
            observer.settled(account, watermark, now=now)
