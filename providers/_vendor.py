"""What most providers share: the constructor, Bearer auth, no extra media hosts, 5 requests/s.

A provider subclasses ``VendorBase`` and overrides only what its vendor does differently (Convoso's
token in the query string, Envoy's organisation header, Convirza's media hosts, Siro's budget).

It also holds the rule for one bad record (PROVIDERS.md general rules): a record whose id is usable
but whose other fields are not becomes ``Readiness.INVALID`` with the reason in ``problem`` (the
pipeline parks it, the account's pass goes on, the watermark moves past it) via ``parsed_or_invalid``;
only a record without a usable id, or a page that is not a page, still raises ``BadVendorData``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urljoin, urlsplit

from providers._parse import parse_vendor_time
from providers.base import Readiness, Recording
from worker.errors import BadVendorData, PermanentError
from worker.redact import mask_secrets, scrub_record

if TYPE_CHECKING:
    from config.settings import AccountSettings
    from providers._http import VendorClient

__all__ = ["VendorBase", "join_url", "media_url", "no_recording_yet", "time_or"]


class VendorBase:
    name: ClassVar[str]
    max_page_size: ClassVar[int]
    listing_sorted: ClassVar[bool] = False
    #: PROVIDERS.md: 5 requests/s per account unless the vendor's limit is known
    default_rate_limit: ClassVar[float] = 5.0

    def __init__(self, account: AccountSettings, client: VendorClient) -> None:
        self.account = account
        self.client = client
        self.notices: list[str] = []

    @classmethod
    def client_auth(cls, account: AccountSettings) -> tuple[dict[str, str], dict[str, str]]:
        """``Authorization: Bearer`` — sent to the API host only (``VendorClient`` sees to that)."""
        return {"Authorization": f"Bearer {account.token.get_secret_value()}"}, {}

    def media_hosts(self) -> list[str]:
        """Media hosts allowed by default besides ``base_url``'s and ``media_base_url``'s."""
        return []

    def no_recording_yet(self, started_at: datetime, *, now: datetime | None = None) -> Readiness:
        """A call the vendor lists without a recording: final (``NO_RECORDING``) only once it is older
        than the account's ``no_recording_after``; before that the vendor may still add one, so it is
        ``NOT_READY`` and listed again (PROVIDERS.md general rules)."""
        return no_recording_yet(started_at, self.account.no_recording_after.total_seconds(), now=now)

    def invalid(self, recording_id: str, problem: str, *, at: datetime,
                source: Mapping[str, Any] | None = None) -> Recording:
        """A ``Readiness.INVALID`` recording: listed (so the pipeline parks it and reports ``problem``)
        at ``at``, its best-known time, both as start and listing time."""
        return Recording(
            provider=self.name, account=self.account.name, recording_id=recording_id, started_at=at,
            listed_at=at, readiness=Readiness.INVALID, source=scrub_record(dict(source or {})),
            problem=mask_secrets(problem)[:300],
        )

    def parsed_or_invalid(self, recording_id: str, parse: Callable[[], Recording], *, at: datetime,
                          source: Mapping[str, Any] | None = None) -> Recording:
        """``parse()``, or, when it finds the vendor's record unusable (``BadVendorData``), that record
        as ``INVALID`` at ``at``: one bad record parks one recording, never the account's pass."""
        try:
            return parse()
        except BadVendorData as exc:
            return self.invalid(recording_id, str(exc), at=at, source=source)


def no_recording_yet(started_at: datetime, after_seconds: float, *, now: datetime | None = None) -> Readiness:
    age = ((now or datetime.now(UTC)) - started_at).total_seconds()
    return Readiness.NO_RECORDING if age >= after_seconds else Readiness.NOT_READY


def time_or(value: Any, fallback: datetime, *, zone: tzinfo = UTC) -> datetime:
    """The vendor time ``value``, or ``fallback`` when it is missing or unreadable (the time an
    ``INVALID`` record is listed at: inside the window being listed, so the watermark passes it)."""
    try:
        return parse_vendor_time(value, "time", zone=zone)
    except BadVendorData:
        return fallback


def join_url(base: str, reference: str, *, what: str, recording_id: str) -> str:
    """``urljoin(base, reference)`` for a URL the vendor handed out; one that cannot be parsed (a bad
    port, an unclosed ``[``) is ``BadVendorData`` for that recording, never a ``ValueError``."""
    try:
        joined = urljoin(base, reference)
        urlsplit(joined).port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise BadVendorData(f"{what}: not a valid URL", recording_id=recording_id) from None
    return joined


def media_url(path: str, media_base_url: str | None, *, what: str, recording_id: str) -> str:
    """A vendor's media ``path`` resolved against the account's ``media_base_url`` (PROVIDERS.md,
    Convoso and Siro); an absolute http(s) URL is kept as is, any other scheme is refused. ``what``
    names the vendor field in errors."""
    try:
        parts = urlsplit(path)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise PermanentError(f"{what}: not a valid URL or path", recording_id=recording_id) from None
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return path
    if scheme or path.startswith("//"):
        raise PermanentError(f"{what}: scheme {scheme or '//'!r} is not http(s)", recording_id=recording_id)
    if not media_base_url:
        raise PermanentError(f"media_base_url: not configured, and {what} is a relative path",
                             recording_id=recording_id)
    return urljoin(media_base_url, path)
