"""``verify --manifests`` in bounded memory: what was verified, joined with every manifest line, on disk.

Checking the manifests means a join: each archived object verified against its manifest line(s),
and each manifest line against the objects found. Held in dicts, both sides grow with the archive (a
million recordings are three million lines: well over a gigabyte of Python objects). Here both sides
are spilled as they stream by into a temporary SQLite file (the standard library's; a few MB of page
cache), indexed once, and the three questions are asked as queries whose answers stream back:

- an object verified but in no manifest line: "not in any manifest";
- an object whose every manifest line has another SHA-256 or size: "differs from its manifest line";
- a manifest line (in the audit's window) whose object was not found: "listed in manifest … but not
  archived".
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from types import TracebackType

from worker.compliance._manifest_read import ManifestLine
from worker.compliance.walker import parse_iso

__all__ = ["ManifestJoin"]

_BATCH = 10_000
Problem = tuple[str, str, str | None, str | None]  # key, problem, expected, found


class ManifestJoin:
    """``with ManifestJoin(folder) as join``: ``seen(...)`` while verifying, ``line(...)`` while
    reading the chain, then ``problems(since, until)``. The file is removed on exit."""

    def __init__(self, directory: Path | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="recarchive-verify-", dir=directory)
        self._db = sqlite3.connect(Path(self._tmp.name) / "join.sqlite", check_same_thread=False)
        self._db.executescript("""
            PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA temp_store = FILE;
            CREATE TABLE seen (key TEXT PRIMARY KEY, sha TEXT, size INTEGER, started TEXT);
            CREATE TABLE lines (key TEXT, sha TEXT, size INTEGER, manifest TEXT, started TEXT);
        """)
        self._seen: list[tuple[str, str | None, int | None, str | None]] = []
        self._lines: list[tuple[str, str, int, str, str | None]] = []

    def __enter__(self) -> ManifestJoin:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._db.close()
        self._tmp.cleanup()

    def seen(self, key: str, sha256: str | None, size: int | None, started_at: str | None) -> None:
        """An archived object as verify found it (``sha256`` None: it is missing)."""
        self._seen.append((key, sha256, size, started_at))
        if len(self._seen) >= _BATCH:
            self._flush()

    def line(self, line: ManifestLine) -> None:
        self._lines.append((line.key, line.sha256, line.size, line.manifest, line.started_at))
        if len(self._lines) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO seen VALUES (?, ?, ?, ?)", self._seen)
            self._db.executemany("INSERT INTO lines VALUES (?, ?, ?, ?, ?)", self._lines)
        self._seen.clear()
        self._lines.clear()

    def pending_lines(self) -> int:
        self._flush()
        return int(self._db.execute("SELECT COUNT(*) FROM lines WHERE manifest = 'pending'").fetchone()[0])

    def problems(self, since: datetime | None, until: datetime | None) -> Iterator[Problem]:
        """Every disagreement, objects first (in key order), then lines without their object."""
        self._flush()
        self._db.execute("CREATE INDEX IF NOT EXISTS lines_key ON lines (key)")
        objects = self._db.execute("""
            SELECT s.key, s.sha, s.size, COUNT(l.key), COALESCE(SUM(l.sha = s.sha AND l.size = s.size), 0),
                   GROUP_CONCAT(DISTINCT l.manifest), MIN(l.sha)
            FROM seen s LEFT JOIN lines l ON l.key = s.key
            WHERE s.sha IS NOT NULL GROUP BY s.key ORDER BY s.key""")
        for key, sha, _size, count, matching, manifests, line_sha in objects:
            if count == 0:
                yield key, "not in any manifest", None, None
            elif matching == 0:
                where = ", ".join(sorted(set(str(manifests).split(","))))
                yield key, f"differs from its manifest line ({where})", f"sha256:{line_sha}", f"sha256:{sha}"
        yield from self._unarchived(since, until)

    def _unarchived(self, since: datetime | None, until: datetime | None) -> Iterator[Problem]:
        rows = self._db.execute("""
            SELECT l.key, l.manifest, l.started FROM lines l
            WHERE NOT EXISTS (SELECT 1 FROM seen s WHERE s.key = l.key) ORDER BY l.key""")
        current: str | None = None
        where: set[str] = set()
        for key, manifest, started in rows:
            if key != current:
                if current is not None and where:
                    yield _unarchived_problem(current, where)
                current, where = key, set()
            if _in_scope(started, since, until):
                where.add(str(manifest))
        if current is not None and where:
            yield _unarchived_problem(current, where)


def _unarchived_problem(key: str, where: set[str]) -> Problem:
    return key, f"listed in manifest ({', '.join(sorted(where))}) but not archived", None, None


def _in_scope(started_at: str | None, since: datetime | None, until: datetime | None) -> bool:
    if since is None and until is None:
        return True
    moment = parse_iso(started_at)
    return moment is not None and (since is None or moment >= since) and (until is None or moment < until)


#: a ``load_manifests`` sink
LineSink = Callable[[ManifestLine], None]
