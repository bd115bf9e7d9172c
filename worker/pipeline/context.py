"""Everything one archiving process shares: settings, storage, HTTP clients, per-account providers.

Built once per ``recarchive`` command or Celery worker process and passed to the pipeline functions
(s3transfer's ``TransferManager(client, config)`` style: inject, never reach for globals).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from config.settings import AccountSettings, Settings
from providers import make_provider
from providers._http import VendorClient
from providers._ratelimit import RateLimiter, TokenBucket
from providers.base import Provider
from storage import Storage, open_storage
from worker.pipeline.hooks import Hooks
from worker.pipeline.http import make_http_client
from worker.pipeline.mediapolicy import MediaPolicy
from worker.pipeline.state import StateStore
from worker.pipeline.workdir import WorkDir

__all__ = ["AccountHandle", "ArchiveContext", "RetryPolicy", "build_context"]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one pass tries a recording before parking it."""

    max_attempts: int = 6  # transient failures (5xx, timeouts, 429) per recording
    max_refreshes: int = 3  # link re-resolutions after 410/403/expired page
    max_resumes: int = 20  # Range resumptions, as long as each one makes progress
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 120.0  # a longer Retry-After is left to a later pass / task retry
    park_on_exhaustion: bool = True  # the daemon's tasks set False and let Celery retry


@dataclass
class AccountHandle:
    account: AccountSettings
    client: VendorClient
    provider: Provider
    policy: MediaPolicy


@dataclass
class ArchiveContext:
    settings: Settings
    storage: Storage
    http: httpx.Client
    workdir: WorkDir
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    limiter_factory: Callable[[AccountSettings, float], RateLimiter] | None = None
    hooks: Hooks = field(default_factory=Hooks)
    check_media: bool = True
    max_bytes: int | None = None
    _accounts: dict[str, AccountHandle] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def state(self) -> StateStore:
        return StateStore(self.storage)

    def handle(self, account: AccountSettings) -> AccountHandle:
        """The account's provider, vendor client and media policy, built once per context."""
        with self._lock:
            existing = self._accounts.get(account.name)
            if existing is not None:
                return existing
            from providers import get_provider

            cls = get_provider(account.provider)
            headers, params = cls.client_auth(account)
            rate = account.rate_limit.per_second if account.rate_limit else cls.default_rate_limit
            limiter = (self.limiter_factory or _local_limiter)(account, rate)
            client = VendorClient(
                account.base_url, http=self.http, auth_headers=headers, auth_params=params,
                limiter=limiter, sleep=self.sleep, max_retry_after=self.retry.max_retry_after,
            )
            provider = make_provider(account, client)
            policy = MediaPolicy.for_account(
                account.base_url, account.media_base_url, provider.media_hosts(), account.allowed_media_hosts
            )
            handle = AccountHandle(account, client, provider, policy)
            self._accounts[account.name] = handle
            return handle

    def api_calls(self, account_name: str) -> int:
        """Vendor API requests sent for an account so far (0 if it was never contacted)."""
        handle = self._accounts.get(account_name)
        return handle.client.calls if handle is not None else 0

    def close(self) -> None:
        self.http.close()
        self.storage.close()


def _local_limiter(account: AccountSettings, rate: float) -> RateLimiter:
    return TokenBucket(rate)


def build_context(settings: Settings, *, concurrency: int = 4, storage: Storage | None = None,
                  **options: Any) -> ArchiveContext:
    """The pipeline's context, with no observers: callers above the pipeline install theirs
    (``worker.compliance.session.open_context`` adds manifests and the id index)."""
    store = storage or open_storage(settings.storage)
    ctx = ArchiveContext(
        settings=settings,
        storage=store,
        http=make_http_client(settings.http, concurrency),  # [http]: CA bundle, proxy, timeouts
        workdir=WorkDir(settings.storage.work_dir),
        **options,
    )
    return ctx
