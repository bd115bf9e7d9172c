"""The provider protocol: what every vendor module implements, and the values it hands out.

A provider knows HTTP and its vendor's JSON, nothing about storage or Celery. It is built per account
with an injected ``VendorClient`` (rate limited, errors already translated) and:

- ``list_recordings(window)`` yields every recording the vendor lists in the window, pages hidden,
  deduplicated by id; records it cannot parse raise ``BadVendorData`` (the account's pass stops);
- ``resolve_media(recording)`` returns a fresh ``MediaLink`` just before download (called again on a
  410/403/expired link); it raises ``NotReady`` or ``NoRecording`` when there is nothing to fetch;
- ``get_recording(recording_id)`` re-reads one recording (manual re-archive by id).

To add a vendor: one module here with a class satisfying ``Provider``, one line in ``PROVIDERS``,
one simulator module under ``providers/simulator/`` and one subclass of the conformance suite.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from config.settings import AccountSettings
    from providers._http import VendorClient

__all__ = ["MediaLink", "Provider", "Readiness", "Recording", "Window"]


class Readiness(StrEnum):
    """What the vendor says about a listed recording."""

    READY = "ready"
    NOT_READY = "not_ready"  # still processing: re-checked on a later pass, not a failure
    NO_RECORDING = "no_recording"  # the call has no recording: reported, not a failure
    DELETED = "deleted"  # deleted at the vendor before we archived it: skipped and reported
    #: the vendor's record of this one recording is unusable (``Recording.problem`` says why): the
    #: pipeline parks it with that reason and the account's pass goes on (PROVIDERS.md general rules)
    INVALID = "invalid"


@dataclass(frozen=True)
class Window:
    """A half-open discovery window ``[since, until)`` in UTC."""

    since: datetime
    until: datetime

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware")

    def contains(self, moment: datetime) -> bool:
        return self.since <= moment < self.until


@dataclass(frozen=True)
class MediaLink:
    """Where to fetch a recording's bytes, right now. Never stored, never logged with its query.

    ``headers`` are sent with the media request (only set when the media host is the API host, e.g.
    a Salesloft ``_href``); ``expected_size`` is the vendor's announced size in bytes, if any.
    """

    url: str
    expires_at: datetime | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    expected_size: int | None = None
    content_type: str | None = None
    is_video: bool = False
    #: the vendor serves a redacted version (Siro): ``metadata.json`` records ``media.redacted``
    redacted: bool = False


@dataclass(frozen=True)
class Recording:
    """One recording as listed by a vendor.

    ``recording_id`` is the vendor's id as text (CONTRACT §3); ``started_at`` decides the storage
    folder; ``listed_at`` is the moment the vendor's list filter uses (created time for most), which
    is what discovery watermarks are kept in. ``source`` is the vendor's record, scrubbed of secrets
    and signed-URL queries, as stored in ``metadata.json``. ``hint`` is private to the provider
    (e.g. a signed URL that came with the listing); it is never stored.
    """

    provider: str
    account: str
    recording_id: str
    started_at: datetime
    listed_at: datetime
    readiness: Readiness = Readiness.READY
    vendor_duration_seconds: float | None = None
    is_video: bool = False
    expires_at: datetime | None = None
    source: Mapping[str, Any] = field(default_factory=dict)
    hint: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: a status value the provider does not know (reported by name by ``run`` and ``status``);
    #: such a recording is ``NOT_READY``, never silently dropped
    unknown_status: str | None = None
    #: why a ``Readiness.INVALID`` record cannot be archived (the parking reason's message)
    problem: str | None = None


class Provider(Protocol):
    """A vendor adapter; one module per vendor, built once per account and pass."""

    name: ClassVar[str]
    #: the vendor's largest page size (discovery benchmarks compare calls with ceil(n / this))
    max_page_size: ClassVar[int]
    #: whether the listing is sorted by ``listed_at``; decides how a crash mid-scan resumes
    listing_sorted: ClassVar[bool]
    #: requests per second when the account sets no ``rate_limit`` (PROVIDERS.md: 5/s unless known)
    default_rate_limit: ClassVar[float]

    @classmethod
    def client_auth(cls, account: AccountSettings) -> tuple[dict[str, str], dict[str, str]]:
        """(headers, query params) that authenticate API calls; sent to the API host only."""
        ...

    def __init__(self, account: AccountSettings, client: VendorClient) -> None: ...

    def list_recordings(self, window: Window) -> Iterator[Recording]:
        """Every recording listed in ``window``, each id once; raise ``BadVendorData`` on bad pages."""
        ...

    def resolve_media(self, recording: Recording, *, refresh: bool = False) -> MediaLink:
        """A fresh link to the bytes. ``refresh`` is set after a 410/403/expired link."""
        ...

    def get_recording(self, recording_id: str) -> Recording:
        """One recording by id (manual re-archive); ``NoRecording`` if the vendor does not know it."""
        ...

    def media_hosts(self) -> list[str]:
        """Hosts this vendor's media may come from by default, besides ``base_url``'s."""
        ...

    #: what the vendor said during the last listing that an operator should read, but that fails
    #: nothing (a Convoso lead it does not know); the pass takes them into its summary and clears them
    notices: list[str]
