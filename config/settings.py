"""Typed settings for recarchive, validated with pydantic (CONTRACT §2).

Every model forbids unknown keys, so a typo is a configuration error naming the key rather than a
silently ignored setting. Secrets never live here as plain strings: ``AccountSettings.token`` is a
``SecretStr`` read from the environment variable named by ``token_env`` when the file is loaded.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

from config.units import RateLimit, parse_duration, parse_rate, parse_timestamp

__all__ = [
    "AccountSettings",
    "BrokerSettings",
    "HttpSettings",
    "LimitsSettings",
    "RetentionSettings",
    "ScheduleSettings",
    "Settings",
    "StorageSettings",
    "TranscodeSettings",
]

_ACCOUNT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_HOST_PATTERN = re.compile(r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d+)?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _http_url(value: str, key: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{key} must be an http(s) URL with a host, got {value!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{key} must not carry a query, fragment or credentials")
    return value.rstrip("/")


class StorageSettings(_Strict):
    url: str
    endpoint_url: str | None = None
    region: str | None = None
    storage_class: str | None = None
    sse: Literal["AES256", "aws:kms"] | None = None
    kms_key_id: str | None = None
    work_dir: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value:
            raise ValueError("url must not be empty")
        scheme = urlsplit(value).scheme
        if scheme == "s3":
            if not urlsplit(value).netloc:
                raise ValueError(f"url {value!r} names no bucket")
        elif scheme not in ("", "file") and not re.match(r"^[A-Za-z]:[\\/]", value):
            raise ValueError(f"url scheme {scheme!r} is not supported (use s3://, file:// or a path)")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value, "endpoint_url")

    @model_validator(mode="after")
    def _kms(self) -> StorageSettings:
        if self.kms_key_id and self.sse != "aws:kms":
            raise ValueError('kms_key_id needs sse = "aws:kms"')
        return self

    @property
    def is_s3(self) -> bool:
        return urlsplit(self.url).scheme == "s3"


class RetentionSettings(_Strict):
    mode: Literal["COMPLIANCE", "GOVERNANCE"] = "COMPLIANCE"
    days: Annotated[int, Field(ge=1, le=36500)]
    legal_hold: bool = False

    def retain_until(self, now: datetime | None = None) -> datetime:
        return (now or datetime.now(UTC)) + timedelta(days=self.days)


class TranscodeSettings(_Strict):
    rendition: Literal["none", "mp3", "opus", "flac"] = "none"
    bitrate: str = "32k"
    duration_tolerance: Annotated[float, Field(ge=0)] = 2.0

    @field_validator("bitrate")
    @classmethod
    def _bitrate(cls, value: str) -> str:
        if not re.fullmatch(r"\d{1,4}k", value):
            raise ValueError(f"bitrate must look like '32k', got {value!r}")
        return value


class BrokerSettings(_Strict):
    url: str = "redis://127.0.0.1:6379/0"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("redis", "rediss", "memory"):
            raise ValueError(f"url must be a redis:// URL, got {value!r}")
        return value


class ScheduleSettings(_Strict):
    discover_every: timedelta = timedelta(minutes=5)
    lookback: timedelta = timedelta(hours=2)

    @field_validator("discover_every", "lookback", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value


class HttpSettings(_Strict):
    """How vendor APIs and media are reached in real networks (a TLS-inspecting proxy, a private CA).

    ``ca_bundle`` is a PEM file trusted instead of the system's; ``proxy`` an http(s) proxy URL. Without
    them the standard ``SSL_CERT_FILE``, ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` variables apply.
    """

    ca_bundle: str | None = None
    proxy: str | None = None
    connect_timeout: Annotated[float, Field(gt=0, le=600)] = 10.0
    read_timeout: Annotated[float, Field(gt=0, le=3600)] = 60.0

    @field_validator("proxy")
    @classmethod
    def _proxy(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https", "socks5") or not parts.hostname:
            raise ValueError(f"proxy must be an http(s):// or socks5:// URL with a host, got {value!r}")
        return value


class LimitsSettings(_Strict):
    """Bounds on one recording's checks, the same in ``run`` and the daemon."""

    max_duration: timedelta = timedelta(hours=12)  # longer media is parked, never decoded for hours
    decode_timeout: timedelta = timedelta(hours=1)  # the decode check of one recording
    rendition_timeout: timedelta = timedelta(hours=2)  # one rendition

    @field_validator("max_duration", "decode_timeout", "rendition_timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value


class AccountSettings(_Strict):
    name: str
    provider: str
    base_url: str
    token_env: str
    start: datetime
    media_base_url: str | None = None
    lead_ids: list[str] | None = None
    timezone: str | None = None
    organization_id: str | None = None
    media_api_url: str | None = None
    oauth_client_id: str | None = None
    oauth_client_secret_env: str | None = None
    oauth_user_id: str | None = None
    allowed_media_hosts: list[str] = Field(default_factory=list)
    rate_limit: RateLimit | None = None
    no_recording_after: timedelta = timedelta(hours=24)
    token: SecretStr = SecretStr("")
    oauth_client_secret: SecretStr = SecretStr("")

    @field_validator("provider")
    @classmethod
    def _provider(cls, value: str) -> str:
        # the one provider list is the registry (names only: importing it loads no vendor module)
        from providers import PROVIDERS

        if value not in PROVIDERS:
            raise ValueError(f"provider {value!r} is not one of {', '.join(PROVIDERS)}")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _ACCOUNT_NAME.fullmatch(value) or len(value) > 63:
            raise ValueError(f"name {value!r} must match [a-z0-9][a-z0-9-]* (at most 63 characters)")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return _http_url(value, "base_url")

    @field_validator("media_base_url")
    @classmethod
    def _media_base_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value, "media_base_url") + "/"

    @field_validator("media_api_url")
    @classmethod
    def _media_api_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value, "media_api_url")

    @field_validator("no_recording_after", mode="before")
    @classmethod
    def _no_recording_after(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("token_env", "oauth_client_secret_env")
    @classmethod
    def _env_name(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"{info.field_name} {value!r} is not an environment variable name")
        return value

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_timestamp(value)
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @field_validator("lead_ids", mode="before")
    @classmethod
    def _lead_ids(cls, value: object) -> object:
        if isinstance(value, list):
            return [str(item) for item in value]
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"timezone {value!r} is not a known IANA zone") from exc
        return value

    @field_validator("allowed_media_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if not _HOST_PATTERN.fullmatch(host):
                raise ValueError(f"allowed_media_hosts entry {host!r} is not a host name or *.domain")
            name, _, port = host.partition(":")
            if port and not 1 <= int(port) <= 65535:
                raise ValueError(f"allowed_media_hosts entry {host!r}: port {port} is not 1-65535")
            if name.startswith("*.") and len(name[2:].rstrip(".").split(".")) < 2:
                # "*.com" would allow every host of a top-level domain
                raise ValueError(f"allowed_media_hosts entry {host!r}: a wildcard needs at least two labels "
                                 f"after '*.' (e.g. \"*.example.com\")")
        return [host.lower() for host in value]

    @field_validator("rate_limit", mode="before")
    @classmethod
    def _rate(cls, value: object) -> object:
        return parse_rate(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _per_provider(self) -> AccountSettings:
        if self.provider == "convoso" and self.timezone is None:
            raise ValueError("timezone: a convoso account needs the IANA zone of its naive times "
                             "(e.g. \"America/New_York\")")
        if self.lead_ids is not None and not self.lead_ids:
            raise ValueError("lead_ids: an empty list archives nothing; leave it out to archive the whole account")
        only: dict[str, tuple[str, ...]] = {
            "convoso": ("lead_ids", "media_base_url"),
            "envoy": ("organization_id",),
            "siro": ("media_api_url", "oauth_client_id", "oauth_client_secret_env", "oauth_user_id"),
        }
        for provider, keys in only.items():
            for key in keys:
                if self.provider != provider and getattr(self, key) is not None:
                    raise ValueError(f"{key} is only for {provider} accounts")
        if self.provider == "siro":
            oauth = (self.oauth_client_id, self.oauth_client_secret_env, self.oauth_user_id)
            if any(value is None for value in oauth):
                raise ValueError("oauth_client_id: a siro account needs oauth_client_id, oauth_client_secret_env "
                                 "and oauth_user_id (its media is signed only for a user-scoped OAuth token)")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone or "UTC")


class Settings(_Strict):
    storage: StorageSettings
    retention: RetentionSettings | None = None
    transcode: TranscodeSettings = TranscodeSettings()
    http: HttpSettings = HttpSettings()
    limits: LimitsSettings = LimitsSettings()
    broker: BrokerSettings = BrokerSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    accounts: list[AccountSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_accounts(self) -> Settings:
        seen: set[str] = set()
        for account in self.accounts:
            if account.name in seen:
                raise ValueError(f"accounts: duplicate account name {account.name!r}")
            seen.add(account.name)
        return self

    def account(self, name: str) -> AccountSettings:
        for account in self.accounts:
            if account.name == name:
                return account
        raise KeyError(name)
