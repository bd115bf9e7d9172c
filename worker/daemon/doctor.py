"""``recarchive doctor``: is this set-up able to archive? Every check, without archiving anything.

Each check answers one question an operator would otherwise learn from a failed night: does the
config load, does each vendor accept its token (one cheap call: the first page of a one-hour
listing), are ffmpeg and the rendition's encoder there, can the store be written, does it refuse to
overwrite (conditional writes), has the bucket Object Lock when ``[retention]`` asks for it, does
the broker answer. A check never raises: it becomes one ``Check`` line, ``ok``, ``FAIL`` or ``skip``.

Writes are bounded: one probe object, ``_state/doctor-probe``, created once and kept, then only
offered again as a no-overwrite write, which a sound store refuses. It is never deleted: under a
bucket's default retention it could not be, and one fixed key means one small object for good.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from config import Settings
from providers.base import Window
from storage import Retention, Storage
from worker.errors import AccountError, ArchiverError, AuthError, ConfigError, ObjectExists, StorageError
from worker.redact import mask_secrets

__all__ = ["PROBE_KEY", "Check", "check_broker", "check_conditional_writes", "check_credentials",
           "check_media", "check_object_lock", "check_storage", "check_upload_digest", "fail", "ok", "run_checks",
           "skip"]

log = logging.getLogger(__name__)

#: the object the conditional-write check offers twice (relative to the storage prefix)
PROBE_KEY = "_state/doctor-probe"
#: the listing window of the credentials check: recent and short, so it is one cheap page
CREDENTIALS_WINDOW = timedelta(hours=1)
BROKER_TIMEOUT = 3.0


@dataclass(frozen=True)
class Check:
    """One line of the doctor's answer. ``status`` is ``ok``, ``FAIL`` or ``skip`` (not applicable)."""

    name: str
    status: str
    detail: str
    #: what a script may key on: the account, the encoder, the bucket (``None`` when not applicable)
    target: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == "FAIL"

    def line(self) -> str:
        what = f"{self.name} {self.target}" if self.target else self.name
        return f"{self.status:<4}  {what}: {mask_secrets(self.detail)}"

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.name, "target": self.target, "status": self.status, "ok": not self.failed,
                "detail": mask_secrets(self.detail)}


def ok(name: str, detail: str, target: str | None = None) -> Check:
    return Check(name, "ok", detail, target)


def fail(name: str, detail: str, target: str | None = None) -> Check:
    return Check(name, "FAIL", detail, target)


def skip(name: str, detail: str, target: str | None = None) -> Check:
    return Check(name, "skip", detail, target)


# ------------------------------------------------------------------------------------- vendors


def check_credentials(settings: Settings, storage: Storage, *, names: set[str] | None = None) -> Iterator[Check]:
    """One cheap call per account: the first recording (or the end) of a one-hour listing.

    ``names``: the accounts whose token was read (the others already failed as config lines). A
    refused token is an ``AccountError`` (401/403); a vendor that does not answer is ``Unavailable``
    after two tries, not five: the doctor reports, it does not wait out an outage."""
    from worker.pipeline.context import RetryPolicy, build_context

    ctx = build_context(settings, concurrency=1, storage=storage,
                        retry=RetryPolicy(max_attempts=2, backoff_base=0.2, backoff_max=1.0, max_retry_after=5.0))
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        for account in settings.accounts:
            if names is not None and account.name not in names:
                continue
            yield _one_account(ctx, account, Window(now - CREDENTIALS_WINDOW, now))
    finally:
        ctx.http.close()  # the storage is the caller's


def _one_account(ctx: Any, account: Any, window: Window) -> Check:
    """A provider may offer a narrower probe, ``check_credentials() -> str`` (what it proved, e.g. a
    minted OAuth token besides the listing token); without one, the listing's first page is the probe."""
    where = f"{account.provider} at {account.base_url}"
    try:
        handle = ctx.handle(account)
        handle.client.max_attempts = 2
        probe = getattr(handle.provider, "check_credentials", None)
        if callable(probe):
            proved = str(probe())
        else:
            first = next(iter(handle.provider.list_recordings(window)), None)
            proved = "a recording listed" if first is not None else "no recording in the last hour"
    except AuthError as exc:
        return fail("credentials", f"{where} refused: {exc}", account.name)
    except AccountError as exc:  # a listing it cannot read: the token works, the account cannot be archived
        return fail("credentials", f"{where} answered with what cannot be read: {exc}", account.name)
    except ArchiverError as exc:
        return fail("credentials", f"{where} did not answer: {exc}", account.name)
    return ok("credentials", f"{where} accepted the token ({proved})", account.name)


# --------------------------------------------------------------------------------------- media


def check_media(rendition: str) -> list[Check]:
    """ffmpeg runs; with a rendition, its encoder is built in (``ensure_ffmpeg``'s own checks)."""
    from worker.media.inspect import ensure_ffmpeg

    try:
        tools = ensure_ffmpeg()
    except ConfigError as exc:
        return [fail("ffmpeg", str(exc))]
    checks = [ok("ffmpeg", f"{tools.ffmpeg} runs" + ("" if tools.ffprobe else " (no ffprobe: probing with ffmpeg)"))]
    if rendition == "none":
        checks.append(skip("encoder", "transcode.rendition is none: no rendition is made"))
        return checks
    try:
        ensure_ffmpeg(rendition)
    except ConfigError as exc:
        checks.append(fail("encoder", str(exc), rendition))
    else:
        checks.append(ok("encoder", f"ffmpeg can encode {rendition} renditions", rendition))
    return checks


# ------------------------------------------------------------------------------------- storage


def check_storage(storage: Storage) -> Check:
    """Reachable (``Storage.check(write=False)``: no probe object of its own) and listable (every
    pass lists day folders and state)."""
    try:
        storage.check(write=False)
        next(iter(storage.list("_state/")), None)
    except StorageError as exc:
        return fail("storage", str(exc), storage.url)
    return ok("storage", "reachable and listable", storage.url)


def check_conditional_writes(storage: Storage) -> Check:
    """Writable, and a no-overwrite write of a key that exists is refused (``ObjectExists``).

    A store that ignores ``If-None-Match`` overwrites instead: then nothing stops two workers from
    replacing each other's recordings, and the never-overwrite guarantee does not hold. A write
    refused outright is the storage permissions' failure, named as such (one cause, one line)."""
    try:
        if storage.head(PROBE_KEY) is None:
            # another doctor may make it in between: it exists then, which is all the next step needs
            with contextlib.suppress(ObjectExists):
                storage.put_bytes(PROBE_KEY, _probe_body(), content_type="text/plain")
    except StorageError as exc:
        return fail("storage writes", f"cannot write under _state/: {exc}", storage.url)
    try:
        storage.put_bytes(PROBE_KEY, _probe_body(), content_type="text/plain")
    except ObjectExists:
        try:
            storage.read_bytes(PROBE_KEY)
        except (StorageError, FileNotFoundError) as exc:
            return fail("storage reads", f"the probe object cannot be read back: {exc}", storage.url)
        return ok("conditional writes", "writable and readable, and a second no-overwrite write of one key "
                  "was refused", storage.url)
    except StorageError as exc:
        return fail("storage writes", f"the second probe write failed: {exc}", storage.url)
    return fail("conditional writes", f"the store overwrote {PROBE_KEY} although the write was conditional "
                "(If-None-Match ignored): archived objects could be replaced", storage.url)


_DIGEST_WORDS = {
    "sha256": "the store checks each upload's SHA-256 checksum (x-amz-checksum-sha256): the hash recorded "
              "in metadata.json is the hash the store verified",
    "md5": "the store checks each upload's Content-MD5 (originals are hashed with MD5 as well)",
    "none": "the store checks no upload digest (neither x-amz-checksum-sha256 nor Content-MD5): bytes "
            "changed in transit would go unnoticed until `recarchive verify` re-reads them",
}


def check_upload_digest(storage: Storage) -> Check:
    """Which digest of an upload the store checks (``storage._s3digest``). A store that checks none
    is a warning worth a line, not a failure: ``verify`` still proves fixity end to end."""
    if not storage.enforces_retention:
        return skip("upload checksums", "a local folder: copies are checked by `recarchive verify`", storage.url)
    try:
        digest = storage.probe_upload_digest()
    except StorageError as exc:
        return fail("upload checksums", f"the checksum probe failed: {exc}", storage.url)
    return ok("upload checksums", f"{digest}: {_DIGEST_WORDS[digest]}", storage.url)


def _probe_body() -> bytes:
    return f"recarchive doctor probe {datetime.now(UTC).isoformat()}\n".encode()


def check_object_lock(settings: Settings, storage: Storage) -> Check:
    """With ``[retention]``: the bucket has Object Lock (else retention could not be enforced), and
    its default retention, if any, is named (recarchive sets each object's retention itself)."""
    if settings.retention is None:
        return skip("object lock", "no [retention] configured", storage.url)
    wanted = f"{settings.retention.mode} {settings.retention.days} days"
    if not storage.enforces_retention:
        return skip("object lock", f"a local folder records retention ({wanted}) but cannot enforce it",
                    storage.url)
    try:
        storage.check(need_object_lock=True, write=False)
    except StorageError as exc:
        return fail("object lock", f"{exc} (create the bucket with Object Lock enabled)", storage.url)
    try:
        if storage.head(PROBE_KEY) is not None:  # written by the conditional-write check
            # proves the permission to set retention; one day, so the probe is never locked for long
            storage.set_retention(PROBE_KEY, Retention(settings.retention.mode, datetime.now(UTC) + timedelta(days=1)))
    except StorageError as exc:
        return fail("object lock", f"enabled, but retention cannot be set: {exc}", storage.url)
    return ok("object lock", f"enabled, retention can be set; {_default_retention(storage)}; recarchive sets "
              f"{wanted} per object", storage.url)


def _default_retention(storage: Storage) -> str:
    read: Callable[..., Any] | None = getattr(storage, "_lock_configuration", None)
    if read is None:
        return "default retention unknown"
    try:
        rule = ((read(required=False) or {}).get("Rule") or {}).get("DefaultRetention") or {}
    except StorageError:
        return "default retention unreadable"
    if not rule:
        return "no bucket default retention"
    span = f"{rule['Days']} days" if rule.get("Days") else f"{rule.get('Years')} years"
    return f"bucket default retention {rule.get('Mode')} {span}"


# -------------------------------------------------------------------------------------- broker


def check_broker(settings: Settings, *, timeout: float = BROKER_TIMEOUT) -> Check:
    """The daemon's Redis answers a PING within ``timeout``; skipped without a ``[broker]`` section
    (``recarchive run`` needs none)."""
    url = settings.broker.url
    if "broker" not in settings.model_fields_set:
        return skip("broker", "no [broker] in the config (only the daemon needs one)")
    if url.startswith("memory://"):
        return skip("broker", "in-memory broker (tests only)")
    import redis

    from worker.redact import redact_url

    shown = redact_url(url)
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    except redis.RedisError as exc:
        return fail("broker", f"no answer to PING within {timeout:g}s: {exc}", shown)
    finally:
        client.close()
    return ok("broker", "answers PING", shown)


# ----------------------------------------------------------------------------------------- all


def run_checks(settings: Settings, storage: Storage, *, token_accounts: set[str] | None = None,
               broker_timeout: float = BROKER_TIMEOUT) -> Iterator[Check]:
    """Every check after the config's, in CONTRACT §1's order: the vendors, the media tools, the
    store, the broker. A store that cannot be reached skips the store's next
    checks (one cause, one line)."""
    if settings.accounts:
        yield from check_credentials(settings, storage, names=token_accounts)
    else:
        yield skip("credentials", "no [[accounts]] configured")
    yield from check_media(settings.transcode.rendition)
    reachable = check_storage(storage)
    yield reachable
    if reachable.failed:
        for name in ("conditional writes", "upload checksums", "object lock"):
            yield skip(name, "storage unreachable", storage.url)
    else:
        yield check_conditional_writes(storage)
        yield check_upload_digest(storage)
        yield check_object_lock(settings, storage)
    yield check_broker(settings, timeout=broker_timeout)
