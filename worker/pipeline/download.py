"""Downloading one recording with bounded retries: the one place a download is retried.

``fetch_into`` (``fetch.py``) makes one attempt over HTTP; this loop decides what to do with its
errors, per DESIGN.md: a 410/403/expired link or an error page is resolved again, a cut body is
resumed with ``Range`` while it makes progress, 429 waits ``Retry-After``, 5xx backs off, and a
body that is not what the vendor announced is fetched again — each a bounded number of times
(``RetryPolicy``), after which the last error is raised for the caller to park.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from providers.base import MediaLink, Recording
from worker.errors import (
    ChecksumMismatch,
    Interrupted,
    LinkExpired,
    NotMedia,
    RateLimited,
    Unavailable,
    backoff_delay,
)
from worker.pipeline.context import AccountHandle, ArchiveContext
from worker.pipeline.fetch import DEFAULT_MAX_BYTES, Spool, fetch_into
from worker.pipeline.sniff import Sniffed, sniff

__all__ = ["Downloaded", "download_recording"]


@dataclass(frozen=True)
class Downloaded:
    sha256: str
    size: int
    sniffed: Sniffed
    link: MediaLink
    #: base64 MD5 of the spooled bytes (hashed as they arrived) where the store checks Content-MD5
    content_md5: str | None = None


def download_recording(ctx: ArchiveContext, handle: AccountHandle, recording: Recording, path: Path) -> Downloaded:
    """Fetch the recording into ``path`` with bounded retries; raise the last error when exhausted."""
    policy = ctx.retry
    rid = recording.recording_id
    attempts = refreshes = resumes = 0
    refreshed_for_not_media = False
    link: MediaLink | None = None
    refresh = False
    last_size = -1
    max_bytes = ctx.max_bytes or DEFAULT_MAX_BYTES

    def head_check(head: bytes) -> None:
        sniff(head, recording_id=rid)

    with Spool(path, head_check=head_check, md5=ctx.storage.upload_digest == "md5") as spool:
        while True:
            try:
                if link is None or refresh:
                    link = handle.provider.resolve_media(recording, refresh=refresh)
                    refresh = False
                    if link.expected_size:
                        ctx.workdir.ensure_space(link.expected_size - spool.size)
                fetch_into(ctx.http, link, spool, handle.policy, max_bytes=max_bytes, recording_id=rid)
                spool.check_head()
                sniffed = sniff(bytes(spool.head), recording_id=rid)
                sha = spool.finish()
                if link.expected_size is not None and spool.size != link.expected_size:
                    raise ChecksumMismatch(
                        f"received {spool.size} bytes, the vendor announced {link.expected_size}", recording_id=rid)
                return Downloaded(sha, spool.size, sniffed, link, spool.content_md5)
            except NotMedia:
                # an expired-link page served with 200 looks like this too: one fresh link, then park
                if refreshed_for_not_media:
                    raise
                refreshed_for_not_media = True
                spool.reset()
                refresh = True
            except ChecksumMismatch:
                attempts += 1
                if attempts >= policy.max_attempts:
                    raise
                spool.reset()
                refresh = True
            except LinkExpired:
                refreshes += 1
                if refreshes > policy.max_refreshes:
                    raise
                refresh = True
            except Interrupted:
                resumes += 1
                progressed = spool.size > last_size
                last_size = spool.size
                if resumes > policy.max_resumes or (not progressed and resumes > 3):
                    raise
                if not progressed:
                    ctx.sleep(backoff_delay(resumes, policy.backoff_base, policy.backoff_max))
            except RateLimited as exc:
                attempts += 1
                wait = exc.retry_after if exc.retry_after is not None else backoff_delay(
                    attempts, policy.backoff_base, policy.backoff_max)
                if attempts >= policy.max_attempts or wait > policy.max_retry_after:
                    raise
                ctx.sleep(wait)
            except Unavailable:
                attempts += 1
                if attempts >= policy.max_attempts:
                    raise
                ctx.sleep(backoff_delay(attempts, policy.backoff_base, policy.backoff_max))
