"""Siro: two APIs, two credentials, and the redacted audio (docs.siro.ai, read 2026-11-30).

Pages this module follows (stored copies read through the project's search tool):

- "Get recordings" (docs.siro.ai/api-references/get-recordings): ``GET
  https://functions.siro.ai/api-externalApi/v1/core/recordings`` with the organisation token as
  ``Authorization: Bearer``, answering ``{"data": [{"id", "organizationId", "userId", "title",
  "durationInMilliseconds", "latitude", "longitude", "createdAt", "updatedAt", "links": {"web":
  {"self"}}, "rootDataPurgedAt", "isProcessingDone", "isEntityExtractionDone", "isSummaryDone"}],
  "cursor"}``; "poll the list endpoint with the updatedAt filters". "Get recording" (…/get-recording):
  the same item for one id, unwrapped.
- "Download redacted recording audio (signed URL)" (…/post-recording-audio-signed-url): ``POST
  https://api.siro.ai/v1/core/recordings/{id}/signedUrl`` with an empty body and the user-scoped OAuth
  access token in ``x-siro-auth-token`` ("not the organization API key") returns "a short-lived signed
  URL to download the redacted recording audio (typically .m4a)".
- "Create a new OAuth access token for a given OAuth app" (…/create-an-oauth-access-token) and
  "Phones integration: getting started": ``POST …/api-externalApi/v1/core/oauth/apps/{clientId}/
  access-token`` with the organisation token and ``{"clientSecret", "userId", "scope"}`` answers
  ``{"accessTokenId", "accessToken"}``; the token "expires after 16 hours" (``_siro_token``).

So the organisation token goes only to ``base_url``'s origin (listing and minting), the OAuth token
only to the gateway's (``media_api_url``, default ``https://api.siro.ai``), and nothing to the media
host (the signed URL carries its own authority; default media host ``storage.googleapis.com``).

What the pages leave open, and what we assume:

- list query parameters: ``pageSize=100`` and ``updatedAt:gte=<since>`` (the spelling a public client
  of this API uses; the page names "the updatedAt filters"). A recording created in the window was
  updated at or after its creation, so the filter never hides one we want; recordings updated later
  come back too and our own window filter on ``createdAt`` drops them. The order is not documented
  (``listing_sorted`` is false); the cursor ends the listing when null or when a page is empty.
- the signedUrl answer's shape is not shown: we read ``data.signedUrl`` (else ``data.url``,
  ``data.downloadUrl``, the same keys at the top level, or ``data`` as a bare string) and an optional
  ``expiresAt``. The minted token's ``scope`` is ``read`` (the getting-started example's).

Readiness (list item, or the gateway's detailed record where a field of it is present):
``rootDataPurgedAt`` set, ``deleted`` or ``deletedPermanently`` → deleted (skipped and reported; an
archived copy is never removed); ``isProcessingDone`` true → ready, false → not ready; a value that is
no boolean → not ready with that value reported (``unknown_status``); without ``isProcessingDone``,
``processingStatus`` ``complete`` / ``in-progress`` / ``error`` (the last is "no recording" once older
than ``no_recording_after``). A record with a usable id but unreadable fields is ``INVALID`` (that one
recording is parked); an id-less item or a page that is not a page stops the account's pass.

Media (``resolve_media``), one gateway call per recording (plus a mint per 16 h per process): the
signedUrl ``POST``. A 401 mints a new token and tries once more (a second 401 stops the account); a
403 parks the recording, naming the user the token is bound to; a 404 re-reads the recording on the
external API to tell purged (deleted), still processing (not ready) and no audio (no recording)
apart. What is archived is the redacted audio: ``MediaLink.redacted`` is set, and the pipeline records
``media.redacted: true``. Siro video is not reachable through this API: a video recording's archived
file is its redacted audio.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlsplit

from providers._classify import Action
from providers._paging import CursorPaginator, Page, in_window_once, iso_utc, paginate
from providers._parse import as_bool, as_float, as_list, as_mapping, as_text, optional_time, parse_vendor_time
from providers._siro_token import AccessTokens
from providers._source import source_of
from providers._vendor import VendorBase, time_or
from providers.base import MediaLink, Readiness, Recording, Window
from worker.errors import (
    AccountError,
    AuthError,
    BadVendorData,
    Deleted,
    NoRecording,
    NotReady,
    PermanentError,
)

if TYPE_CHECKING:
    from config.settings import AccountSettings
    from providers._http import VendorClient

__all__ = ["DEFAULT_GATEWAY", "SiroProvider", "signed_url_of"]

#: the API gateway that signs media URLs, unless the account sets ``media_api_url``
DEFAULT_GATEWAY = "https://api.siro.ai"
#: Google Cloud Storage: where the signed media URLs point
MEDIA_HOSTS = ("storage.googleapis.com",)
AUTH_HEADER = "x-siro-auth-token"  # the OAuth access token goes here, on the gateway only
SCOPE = "read"
LIST_PATH = "v1/core/recordings"
PAGE_SIZE = 100
#: the list filter: recordings updated at or after the window's start (see the module docstring)
SINCE_PARAM = "updatedAt:gte"
_URL_KEYS = ("signedUrl", "url", "downloadUrl")
_ONE_OVERRIDES: Mapping[int, Action] = {404: Action.NO_RECORDING}
#: what an access token may hold to go in an ``Authorization`` header: visible ASCII, no spaces
_BEARER_TOKEN = re.compile(r"[\x21-\x7e]+")
#: answers of the signedUrl call this module handles itself (401: re-mint; 403/404: see above);
#: a 400 concerns that one recording, not the account
_SIGN_OVERRIDES: Mapping[int, Action] = {400: Action.PARK, 401: Action.OK, 403: Action.OK, 404: Action.OK}
_MINT_OVERRIDES: Mapping[int, Action] = {404: Action.FAIL_ACCOUNT, 422: Action.FAIL_ACCOUNT}


class SiroProvider(VendorBase):
    """Siro field-sales recordings: listed with the organisation token, fetched as redacted audio."""

    name: ClassVar[str] = "siro"
    max_page_size: ClassVar[int] = PAGE_SIZE
    #: "1000 requests per api token per minute" (siroai.notion.site "Core CRUD API Documentation")
    default_rate_limit: ClassVar[float] = 15.0

    def __init__(self, account: AccountSettings, client: VendorClient) -> None:
        super().__init__(account, client)
        self.gateway = client.sibling(account.media_api_url or DEFAULT_GATEWAY)
        self.tokens = AccessTokens(self._mint)

    def media_hosts(self) -> list[str]:
        return list(MEDIA_HOSTS)

    def check_credentials(self) -> str:
        """``recarchive doctor``'s probe: both credentials, each where it is used — the organisation
        token by one listing page of the last hour, the OAuth app by minting an access token (kept,
        never shown). Raises ``AuthError`` naming which one was refused."""
        now = datetime.now(UTC)
        next(iter(self.list_recordings(Window(now - timedelta(hours=1), now))), None)
        self.tokens.get()
        return "organisation token listed; OAuth app minted a user-scoped access token"

    # -- listing -------------------------------------------------------------------------------

    def list_recordings(self, window: Window) -> Iterator[Recording]:
        return in_window_once(self._all_pages(window), window)

    def _all_pages(self, window: Window) -> Iterator[Recording]:
        if window.since >= window.until:
            return
        base = {"pageSize": PAGE_SIZE, SINCE_PARAM: iso_utc(window.since)}

        def fetch(cursor: str | None) -> Page:
            body = as_mapping(self.client.get_json(LIST_PATH, {**base, "cursor": cursor}),
                              "siro recordings response")
            if "data" not in body:
                raise BadVendorData("siro recordings response: no data array")
            items = as_list(body.get("data"), "siro recordings response: data")
            return Page(items=items, next=body.get("cursor"))

        for page in paginate(fetch, CursorPaginator(what="siro recordings")):
            for raw in page.items:
                yield self._recording(raw, fallback=window.since)

    def _recording(self, raw: Any, *, fallback: datetime) -> Recording:
        """One list item (or one read recording): an id-less item stops the pass, any other bad field
        makes this one recording ``INVALID``."""
        record = as_mapping(raw, "siro recording")
        recording_id = as_text(record.get("id"), "siro recording: id")
        assert recording_id is not None
        at = time_or(_created(record), fallback)
        return self.parsed_or_invalid(recording_id, lambda: self._parse(recording_id, record), at=at,
                                      source=source_of(record))

    def _parse(self, recording_id: str, record: Mapping[str, Any]) -> Recording:
        where = f"siro recording {recording_id}"
        created = parse_vendor_time(_created(record), f"{where}: createdAt")
        duration_ms = as_float(record.get("durationInMilliseconds"), f"{where}: durationInMilliseconds")
        readiness, unknown = self._readiness(record, where, created)
        return Recording(
            provider=self.name,
            account=self.account.name,
            recording_id=recording_id,
            started_at=created,
            listed_at=created,
            readiness=readiness,
            vendor_duration_seconds=None if duration_ms is None else duration_ms / 1000,
            source=source_of(record, "rawAudioPath", "processedAudioPath", "rawVideoPath", "lastProcessedAudio"),
            unknown_status=unknown,
        )

    def _readiness(self, record: Mapping[str, Any], where: str,
                   created: datetime) -> tuple[Readiness, str | None]:
        purged = record.get("rootDataPurgedAt")
        if purged not in (None, "", False):
            return Readiness.DELETED, None
        for key in ("deleted", "deletedPermanently"):
            if as_bool(record.get(key), f"{where}: {key}"):
                return Readiness.DELETED, None
        if "isProcessingDone" in record:
            done = record.get("isProcessingDone")
            try:
                return (Readiness.READY if as_bool(done, "isProcessingDone") else Readiness.NOT_READY), None
            except BadVendorData:
                return Readiness.NOT_READY, f"isProcessingDone={str(done)[:40]}"
        status = as_text(record.get("processingStatus"), f"{where}: processingStatus", required=False)
        word = (status or "").strip().lower()
        if word == "complete":
            return Readiness.READY, None
        if word == "in-progress":
            return Readiness.NOT_READY, None
        if word == "error":
            return self.no_recording_yet(created), None
        return Readiness.NOT_READY, f"processingStatus={status[:40] if status else '(missing)'}"

    # -- one recording -------------------------------------------------------------------------

    def get_recording(self, recording_id: str) -> Recording:
        """``GET /v1/core/recordings/{id}`` on the external API (page "Get recording"): the list item
        of one recording, bare (as the page shows it) or wrapped in ``data``."""
        path = f"{LIST_PATH}/{quote(recording_id, safe='')}"
        body = as_mapping(self.client.get_json(path, overrides=_ONE_OVERRIDES, recording_id=recording_id),
                          f"siro recording {recording_id}")
        data = body.get("data")
        if isinstance(data, Mapping):
            return self._recording(data, fallback=datetime.now(UTC))
        if "id" in body:
            return self._recording(body, fallback=datetime.now(UTC))
        raise BadVendorData(f"siro recording {recording_id}: the answer holds no recording")

    # -- media ---------------------------------------------------------------------------------

    def resolve_media(self, recording: Recording, *, refresh: bool = False) -> MediaLink:
        rid = recording.recording_id
        url = self.gateway.url_for(f"{LIST_PATH}/{quote(rid, safe='')}/signedUrl")
        for attempt in (1, 2):
            token = self.tokens.get()
            response = self.gateway.request("POST", url, overrides=_SIGN_OVERRIDES, recording_id=rid,
                                            credentials={AUTH_HEADER: token})
            if response.status_code != 401:
                break
            self.tokens.invalidate(token)  # expired or revoked early: mint once more, then give up
            if attempt == 2:
                raise AuthError("siro: the API gateway refused a freshly minted OAuth access token (401); "
                                f"check that oauth_user_id {self.account.oauth_user_id!r} is an active user")
        if response.status_code == 403:
            raise PermanentError(
                f"siro: the API gateway refused to sign this recording's audio for user "
                f"{self.account.oauth_user_id!r} (403): that user must be able to see every recording of "
                "the organisation", recording_id=rid)
        if response.status_code == 404:
            raise self._why_no_media(recording)
        document = self.gateway.parse_json(response, url, recording_id=rid)
        signed, expires = signed_url_of(document, rid)
        return MediaLink(url=signed, expires_at=expires, redacted=True)

    def _why_no_media(self, recording: Recording) -> Exception:
        """The gateway has no audio to sign: ask the external API why (purged, processing, none)."""
        rid = recording.recording_id
        try:
            fresh = self.get_recording(rid)
        except NoRecording:
            return Deleted("siro: the recording is gone from the vendor", recording_id=rid)
        if fresh.readiness is Readiness.DELETED:
            return Deleted("siro: the recording was deleted or purged at the vendor before it was archived",
                           recording_id=rid)
        if fresh.readiness is Readiness.NOT_READY:
            return NotReady("siro is still processing this recording", recording_id=rid)
        if self.no_recording_yet(fresh.started_at) is Readiness.NOT_READY:
            return NotReady("siro has no redacted audio for this recording yet", recording_id=rid)
        return NoRecording("siro has no redacted audio for this recording", recording_id=rid)

    def _mint(self) -> str:
        """A new OAuth access token (page "Create a new OAuth access token for a given OAuth app")."""
        client_id = self.account.oauth_client_id or ""
        path = f"v1/core/oauth/apps/{quote(client_id, safe='')}/access-token"
        url = self.client.url_for(path)
        body = {"clientSecret": self.account.oauth_client_secret.get_secret_value(),
                "userId": self.account.oauth_user_id, "scope": SCOPE}
        try:
            response = self.client.request("POST", url, overrides=_MINT_OVERRIDES, json_body=body)
            document = as_mapping(self.client.parse_json(response, url), "siro access-token answer")
            data = document.get("data")
            found = data if isinstance(data, Mapping) else document
            token = as_text(found.get("accessToken"), "siro access-token answer: accessToken")
            if token is not None and not _BEARER_TOKEN.fullmatch(token):
                raise BadVendorData("siro access-token answer: accessToken holds spaces or non-ASCII "
                                    "characters, which no HTTP header can carry")
        except AccountError as exc:
            raise AuthError(f"siro: minting an OAuth access token for app {client_id!r} and user "
                            f"{self.account.oauth_user_id!r} failed: {exc.message} (check oauth_client_id, "
                            "oauth_client_secret_env and oauth_user_id)") from None
        assert token is not None
        return token


def signed_url_of(document: Any, recording_id: str) -> tuple[str, datetime | None]:
    """The signed URL (and its expiry, if given) in a signedUrl answer; a bad answer parks the
    recording (it says nothing about the account)."""
    where = "siro signedUrl answer"
    if not isinstance(document, Mapping):
        raise PermanentError(f"{where}: not a JSON object", recording_id=recording_id)
    data = document.get("data")
    places = [data] if isinstance(data, Mapping) else []
    places.append(document)
    url: Any = data if isinstance(data, str) else None
    expires: Any = None
    for place in places:
        for key in _URL_KEYS:
            if url is None and isinstance(place.get(key), str) and place.get(key):
                url = place[key]
        if expires is None:
            expires = place.get("expiresAt")
    try:
        scheme = urlsplit(url).scheme.lower() if isinstance(url, str) else ""
    except ValueError:  # e.g. an unclosed IPv6 bracket: not a URL we can follow
        scheme = ""
    if scheme not in ("http", "https"):
        raise PermanentError(f"{where}: no http(s) URL in it", recording_id=recording_id)
    try:
        expires_at = optional_time(expires, f"{where}: expiresAt")
    except BadVendorData:
        expires_at = None
    return url, expires_at


def _created(record: Mapping[str, Any]) -> Any:
    """The creation time: ``createdAt`` (list item), else ``dateCreated`` (the detailed record)."""
    value = record.get("createdAt")
    return record.get("dateCreated") if value in (None, "") else value
