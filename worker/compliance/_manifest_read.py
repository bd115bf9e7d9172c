"""Reading a manifest chain back and checking it (``verify --manifests``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from storage.base import Storage
from worker.compliance._manifest_layout import DAY_FILE, MANIFEST_SCHEMA, closable_until, root

__all__ = ["ManifestLine", "ManifestSet", "load_manifests"]


@dataclass(frozen=True)
class ManifestLine:
    manifest: str  # "2026-02-14.jsonl", or "pending" for an entry of a day not closed yet
    key: str
    sha256: str
    size: int
    started_at: str | None


@dataclass
class ManifestSet:
    """Every manifest and pending entry of one account, and what is wrong with the chain."""

    account: str
    manifests: list[str] = field(default_factory=list)
    lines: dict[str, list[ManifestLine]] = field(default_factory=dict)
    problems: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    head_sha256: str | None = None
    #: when set, each line goes here instead of into ``lines`` (``verify --manifests`` spills them
    #: to disk: an archive's lines do not fit in memory)
    sink: Callable[[ManifestLine], None] | None = None

    def add(self, line: ManifestLine) -> None:
        if self.sink is not None:
            self.sink(line)
            return
        self.lines.setdefault(line.key, []).append(line)


def load_manifests(storage: Storage, account: str, *, now: datetime | None = None,
                   sink: Callable[[ManifestLine], None] | None = None) -> ManifestSet:
    """Read and check an account's chain: each header's ``prev``/``prev_sha256`` against the actual
    previous manifest, consecutive days, well-formed lines; collect every line and pending entry
    (into ``lines``, or handed to ``sink`` one by one). One manifest is in memory at a time."""
    result = ManifestSet(account, sink=sink)
    days: list[tuple[date, str]] = []
    entries: list[str] = []
    for info in storage.list(root(account)):
        rest = info.key[len(root(account)):]
        match = DAY_FILE.match(rest)
        if match:
            days.append((date.fromisoformat(match.group(1)), info.key))
        elif rest.startswith("pending/"):
            entries.append(info.key)
        else:
            result.warnings.append({"key": storage.full_key(info.key), "problem": "unexpected object in manifests"})
    previous: tuple[date, str, str] | None = None
    for day, key in sorted(days):
        body = storage.read_bytes(key)
        name = f"{day:%Y-%m-%d}.jsonl"
        _check_manifest(storage, result, key, name, day, body, previous)
        previous = (day, name, hashlib.sha256(body).hexdigest())
        result.manifests.append(name)
    result.head_sha256 = previous[2] if previous else None
    _check_open_days(storage, result, previous[0] if previous else None, now or datetime.now(UTC))
    for key in entries:
        _read_pending(storage, result, key)
    return result


def _check_manifest(storage: Storage, result: ManifestSet, key: str, name: str, day: date, body: bytes,
                    previous: tuple[date, str, str] | None) -> None:
    where = storage.full_key(key)
    lines = body.decode("utf-8", "replace").splitlines()
    try:
        header = json.loads(lines[0]) if lines else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("schema") != MANIFEST_SCHEMA:
        result.problems.append({"key": where, "problem": "manifest header unreadable"})
        header = {}
    if header and header.get("day") != f"{day:%Y-%m-%d}":
        result.problems.append({"key": where, "problem": f"header names day {header.get('day')!r}"})
    expected_prev = (previous[1], previous[2]) if previous else (None, None)
    if header and (header.get("prev"), header.get("prev_sha256")) != expected_prev:
        if previous is None:
            detail = f"chain broken: names {header.get('prev')!r} as previous, but no earlier manifest exists"
        elif header.get("prev") != previous[1]:
            detail = f"chain broken: names {header.get('prev')!r} as previous, the previous is {previous[1]}"
        else:
            detail = (f"chain broken: prev_sha256 does not match the actual SHA-256 of {previous[1]} "
                      "(it was changed after it was closed)")
        result.problems.append({"key": where, "problem": detail})
    if previous and day != previous[0] + timedelta(days=1):
        result.problems.append({"key": where, "problem": f"chain gap: no manifest for the days after {previous[1]}"})
    count = 0
    for number, text in enumerate(lines[1:], start=2):
        try:
            item = json.loads(text)
            line = ManifestLine(name, str(item["key"]), str(item["sha256"]).lower(), int(item["size"]),
                                item.get("started_at"))
        except (ValueError, KeyError, TypeError):
            result.problems.append({"key": where, "problem": f"line {number} unreadable"})
            continue
        count += 1
        result.add(line)
    if header and header.get("objects") != count:
        result.problems.append({"key": where, "problem": f"header counts {header.get('objects')} objects, "
                                                         f"the manifest has {count} lines"})


def _check_open_days(storage: Storage, result: ManifestSet, last: date | None, now: datetime) -> None:
    cutoff = closable_until(now)
    if last is not None and last < cutoff:
        result.warnings.append({"key": storage.full_key(root(result.account)),
                                "problem": f"days after {last:%Y-%m-%d} are not closed yet (no pass since?)"})


def _read_pending(storage: Storage, result: ManifestSet, key: str) -> None:
    try:
        document = json.loads(storage.read_bytes(key))
        lines: Iterable[Any] = document["lines"]
        for item in lines:
            result.add(ManifestLine("pending", str(item["key"]), str(item["sha256"]).lower(), int(item["size"]),
                                    item.get("started_at")))
    except FileNotFoundError:
        return  # closed and cleaned up between the listing and this read
    except (ValueError, KeyError, TypeError):
        result.problems.append({"key": storage.full_key(key), "problem": "pending manifest entry unreadable"})
