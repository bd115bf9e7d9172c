"""Fixity: re-read every archived object and prove it is still the bytes that were archived.

``verify_archive`` walks the recording folders (only the day folders of a window, if given), reads
each ``metadata.json`` and streams every object it lists through SHA-256 (never whole in memory),
comparing size and hash. What it reports, and why each is a failure or a warning:

- failure: an object listed in ``metadata.json`` is missing, or its size or SHA-256 differs; a
  ``metadata.json`` that cannot be read; with ``deep``, media that no longer decodes or whose decoded
  duration differs from the archived probe; with ``manifests``, a broken manifest chain, an archived
  object absent from every manifest or different from its manifest line, a manifest line whose object
  is gone (a whole recording deleted, ``metadata.json`` included); an object under Object Lock
  retention or legal hold that the folder's ``metadata.json`` does not list (the marker was edited);
  with ``[retention]`` configured, any archived object without it (the lock was removed, never stuck,
  or the recording was archived before retention was configured: the next pass, the daemon's
  discovery or ``rearchive`` locks it, and verify fails until then).
- warning: orphans — objects no ``metadata.json`` lists, and folders with objects but no
  ``metadata.json``. These are what an interrupted attempt leaves (the original is stored before the
  commit; since 0.2 already locked, as every write is); they were never archived, so no archived
  content is changed by them.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config.settings import Settings
from config.units import utc_stamp
from storage.base import Storage
from worker.compliance._manifest_join import ManifestJoin
from worker.compliance.manifests import load_manifests
from worker.compliance.walker import (
    AccountRef,
    ArchivedObject,
    Folder,
    folders,
    named_accounts,
    objects_of,
    parse_iso,
    stored_accounts,
    window_days,
)
from worker.pipeline.workdir import WorkDir

__all__ = ["Finding", "VerifyReport", "audit_targets", "verify_archive"]

Progress = Callable[[str, Any], None]
_MEDIA_ROLES = ("original", "rendition")


@dataclass(frozen=True)
class Finding:
    """One problem with one stored key. ``problem`` says it in words; ``expected`` and ``found`` carry
    the values compared (sizes, SHA-256, durations, retention) for scripts, ``None`` when no value was
    compared (a missing object: ``found`` is ``None``)."""

    account: str
    key: str
    problem: str
    expected: str | None = None
    found: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"account": self.account, "key": self.key, "problem": self.problem, "expected": self.expected,
                "found": self.found}


@dataclass
class _Seen:
    sha256: str | None
    size: int | None
    started_at: str | None


@dataclass
class _FolderResult:
    recordings: int = 0
    objects: int = 0
    bytes: int = 0
    failures: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    seen: dict[str, _Seen] = field(default_factory=dict)


@dataclass
class VerifyReport:
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    recordings: int = 0
    objects: int = 0
    bytes: int = 0
    deep: bool = False
    failures: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: every account checked, and those among them found in storage but not named by the config
    accounts: list[str] = field(default_factory=list)
    unconfigured: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def merge(self, part: _FolderResult) -> None:
        self.recordings += part.recordings
        self.objects += part.objects
        self.bytes += part.bytes
        self.failures.extend(part.failures)
        self.warnings.extend(part.warnings)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "started_at": utc_stamp(self.started_at), "deep": self.deep,
            "recordings": self.recordings, "objects": self.objects, "bytes": self.bytes,
            "failures": [f.as_dict() for f in self.failures], "warnings": [w.as_dict() for w in self.warnings],
            "manifests": self.manifests, "accounts": self.accounts, "unconfigured_accounts": self.unconfigured,
        }


@dataclass(frozen=True)
class _Job:
    storage: Storage
    settings: Settings
    account: AccountRef
    since: datetime | None
    until: datetime | None
    deep: bool
    workdir: WorkDir | None
    keep_seen: bool


def audit_targets(storage: Storage, settings: Settings, progress: Progress | None = None, *,
                  thorough: bool = True) -> tuple[list[AccountRef], list[str]]:
    """The accounts an audit of the whole store covers: every configured account, then every
    ``{provider}/{account}/`` the store holds that the config does not name (an auditor's config
    may list none at all). Returns (accounts, names of the unconfigured ones).

    ``thorough``: found by a streamed listing of the whole store (what a full verify costs anyway);
    otherwise (a windowed verify) from the archiver's own records, a few requests per account."""
    from providers import PROVIDERS

    emit = progress or (lambda event, payload: None)
    configured: list[AccountRef] = list(settings.accounts)
    known = {(a.provider, a.name) for a in settings.accounts}
    stored = stored_accounts(storage, lambda keys: emit("discover", keys)) if thorough else \
        named_accounts(storage, sorted(PROVIDERS))
    extra = [a for a in stored if (a.provider, a.name) not in known]
    return configured + extra, [f"{a.provider}/{a.name}" for a in extra]


def verify_archive(
    storage: Storage, settings: Settings, accounts: Sequence[AccountRef], *,
    since: datetime | None = None, until: datetime | None = None, deep: bool = False,
    manifests: bool = False, progress: Progress | None = None, concurrency: int = 4,
    now: datetime | None = None,
) -> VerifyReport:
    """Check every archived recording of ``accounts`` whose ``started_at`` is in ``[since, until)``."""
    report = VerifyReport(deep=deep)
    emit = progress or (lambda event, payload: None)
    workdir = WorkDir(settings.storage.work_dir) if deep else None
    days = window_days(since, until)
    for account in accounts:
        report.accounts.append(account.name)
        job = _Job(storage, settings, account, since, until, deep, workdir, manifests)
        with contextlib.ExitStack() as stack:
            # what was seen is joined with the manifest lines on disk: neither side fits in memory
            join = stack.enter_context(ManifestJoin(_spool_dir(settings))) if manifests else None
            for part in _run(job, folders(storage, account, days), concurrency):
                report.merge(part)
                if join is not None:
                    for key, seen in part.seen.items():
                        join.seen(key, seen.sha256, seen.size, seen.started_at)
                emit("folder", part)
            if join is not None:
                _check_manifests(job, join, report, now)
    return report


def _spool_dir(settings: Settings) -> Path | None:
    folder = Path(settings.storage.work_dir) if settings.storage.work_dir else None
    return folder if folder is not None and folder.is_dir() else None


def _run(job: _Job, items: Iterator[Folder], concurrency: int) -> Iterator[_FolderResult]:
    """Folders checked by a small pool, at most ``2 * concurrency`` in flight (memory stays bounded)."""
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="verify") as pool:
        window: list[Future[_FolderResult]] = []
        for folder in items:
            window.append(pool.submit(_check_folder, job, folder))
            while len(window) >= 2 * max(1, concurrency):
                yield window.pop(0).result()
        for future in window:
            yield future.result()


def _check_folder(job: _Job, folder: Folder) -> _FolderResult:
    out = _FolderResult()
    name = job.account.name
    storage = job.storage
    if folder.stray:
        out.warnings.append(Finding(name, storage.full_key(folder.prefix), "stray object outside any recording folder"))
        return out
    covered: set[str] = set()
    metadata_keys = folder.metadata_keys
    for meta in metadata_keys:
        covered.add(meta)
        _check_recording(job, folder, meta, covered, out)
    for key in folder.listed:
        if key not in covered:
            _orphan(job, key, bool(metadata_keys), out)
    return out


def _check_recording(job: _Job, folder: Folder, meta: str, covered: set[str], out: _FolderResult) -> None:
    name = job.account.name
    storage = job.storage
    from storage.metadata import load_metadata

    try:
        body = storage.read_bytes(meta)
    except FileNotFoundError:
        out.failures.append(Finding(name, storage.full_key(meta), "metadata.json missing"))
        return
    try:
        document = load_metadata(body)
        objects = objects_of(storage, meta, document)
    except ValueError as exc:
        out.failures.append(Finding(name, storage.full_key(meta), f"metadata.json unreadable: {exc}"))
        covered.update(folder.listed)  # its objects are not orphans: the commit marker is what broke
        return
    started = parse_iso(document.get("started_at"))
    if started is not None and not _in_window(started, job.since, job.until):
        covered.update(k for k in folder.listed if k.startswith(meta.rsplit("/", 1)[0] + "/"))
        return
    started_text = document.get("started_at") if isinstance(document.get("started_at"), str) else None
    out.recordings += 1
    out.objects += 1
    out.bytes += len(body)
    if job.keep_seen:
        out.seen[storage.full_key(meta)] = _Seen(hashlib.sha256(body).hexdigest(), len(body), started_text)
    for obj in objects:
        covered.add(obj.key)
        _check_object(job, obj, document, started_text, out)
    _check_lock(job, [meta], document, out)


def _check_object(job: _Job, obj: ArchivedObject, document: dict[str, Any], started: str | None,
                  out: _FolderResult) -> None:
    name = job.account.name
    keep = job.deep and obj.role in _MEDIA_ROLES and job.workdir is not None
    try:
        if keep:
            assert job.workdir is not None
            with job.workdir.temp_file(".verify", expected_size=obj.size) as path:
                sha, size = _hash_into(job.storage, obj.key, path)
                if (sha, size) == (obj.sha256, obj.size):
                    _deep(job, obj, document, path, out)
        else:
            sha, size = _hash_into(job.storage, obj.key, None)
    except FileNotFoundError:
        out.failures.append(Finding(name, obj.full_key, "missing", expected=f"{obj.size} bytes"))
        if job.keep_seen:
            out.seen[obj.full_key] = _Seen(None, None, started)
        return
    out.objects += 1
    out.bytes += size
    if job.keep_seen:
        out.seen[obj.full_key] = _Seen(sha, size, started)
    if size != obj.size:
        out.failures.append(Finding(name, obj.full_key, f"altered: {size} bytes, metadata.json says {obj.size}",
                                    expected=f"{obj.size} bytes", found=f"{size} bytes"))
    elif sha != obj.sha256:
        out.failures.append(Finding(name, obj.full_key, f"altered: SHA-256 {sha}, metadata.json says {obj.sha256}",
                                    expected=f"sha256:{obj.sha256}", found=f"sha256:{sha}"))
    _check_lock(job, [obj.key], document, out)


def _hash_into(storage: Storage, key: str, path: Path | None) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    chunks = storage.iter_bytes(key)
    if path is None:
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size
    with open(path, "wb") as handle:
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            handle.write(chunk)
    return digest.hexdigest(), size


def _deep(job: _Job, obj: ArchivedObject, document: dict[str, Any], path: Path, out: _FolderResult) -> None:
    """Decode to the end; compare the decoded duration with the duration probed at archive time."""
    from worker.media.inspect import check_decode

    name = job.account.name
    decoded = check_decode(path)
    integrity = document.get("integrity")
    known_bad = obj.role == "original" and isinstance(integrity, dict) and bool(integrity.get("decode_errors"))
    if not decoded.ok:
        finding = Finding(name, obj.full_key, f"does not decode: {decoded.message or 'ffmpeg failed'}")
        (out.warnings if known_bad else out.failures).append(finding)
        return
    media = document.get("media")
    expected = media.get("duration_seconds") if isinstance(media, dict) else None
    tolerance = job.settings.transcode.duration_tolerance
    if isinstance(expected, int | float) and decoded.decoded_seconds is not None and \
            abs(decoded.decoded_seconds - float(expected)) > tolerance:
        out.failures.append(Finding(name, obj.full_key, f"decodes to {decoded.decoded_seconds:.2f} s, "
                                                        f"archived as {float(expected):.2f} s",
                                    expected=f"{float(expected):.2f} s", found=f"{decoded.decoded_seconds:.2f} s"))


def _check_lock(job: _Job, keys: list[str], document: dict[str, Any], out: _FolderResult) -> None:
    """With ``[retention]`` configured, every object must carry it: an object without is a failure,
    whether its ``metadata.json`` records a retention (the lock was removed, or never stuck) or not
    (archived before retention was configured: the next pass locks it)."""
    retention = job.settings.retention
    if retention is None:
        return
    recorded = document.get("retention")
    recorded = recorded if isinstance(recorded, dict) else None
    for key in keys:
        info = job.storage.head(key)
        if info is None:
            continue
        full = job.storage.full_key(key)
        if info.retention is None:
            if recorded is not None:
                out.failures.append(Finding(job.account.name, full, "no Object Lock retention, though metadata.json "
                                                                    f"records {recorded.get('mode')} until "
                                                                    f"{recorded.get('retain_until')}",
                                            expected=f"{recorded.get('mode')} until {recorded.get('retain_until')}"))
            else:
                out.failures.append(Finding(job.account.name, full, "no Object Lock retention (archived before "
                                                                    "[retention]; the next pass locks it)"))
        elif recorded is not None and recorded.get("legal_hold") and not info.legal_hold:
            out.warnings.append(Finding(job.account.name, full, "legal hold recorded at archiving is lifted"))


def _orphan(job: _Job, key: str, committed: bool, out: _FolderResult) -> None:
    info = job.storage.head(key)
    full = job.storage.full_key(key)
    if committed and info is not None and (info.retention is not None or info.legal_hold):
        # in a committed folder every object the commit made is listed: this one was edited out
        out.failures.append(Finding(job.account.name, full, "retained object not listed by any metadata.json "
                                                             "(commit marker removed or edited)"))
    elif committed:
        out.warnings.append(Finding(job.account.name, full, "orphan: not listed by any metadata.json"))
    else:
        out.warnings.append(Finding(job.account.name, full, "orphan: folder has no metadata.json "
                                                            "(an interrupted attempt)"))


def _in_window(moment: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or moment >= since) and (until is None or moment < until)


def _check_manifests(job: _Job, join: ManifestJoin, report: VerifyReport, now: datetime | None) -> None:
    name = job.account.name
    chain = load_manifests(job.storage, name, now=now, sink=join.line)
    for problem in chain.problems:
        report.failures.append(Finding(name, problem["key"], problem["problem"]))
    for warning in chain.warnings:
        report.warnings.append(Finding(name, warning["key"], warning["problem"]))
    for key, text, expected, found in join.problems(job.since, job.until):
        report.failures.append(Finding(name, key, text, expected=expected, found=found))
    report.manifests[name] = {"manifests": len(chain.manifests), "head": chain.manifests[-1] if chain.manifests
                              else None, "head_sha256": chain.head_sha256, "pending_entries": join.pending_lines()}
