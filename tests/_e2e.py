"""Helpers the end-to-end suites share: running a pass, reading the archive back, driving the CLI.

Used by ``test_pipeline_e2e.py``, ``test_cli_e2e.py`` and ``test_conformance.py``; kept here so the
suites check the archive the same way (the metadata document is the commit marker, the original's
bytes are compared by SHA-256).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from config import Settings
from storage import Storage
from worker.compliance.session import open_context
from worker.pipeline.context import ArchiveContext, RetryPolicy
from worker.pipeline.passes import PassSummary, Reporter, run_pass

__all__ = [
    "BIN",
    "FAST",
    "cli",
    "listing",
    "metadata_docs",
    "one_pass",
    "run_once",
    "stored_original",
    "write_config",
]

#: retries without real waiting worth the name: tests assert behaviour, not patience
FAST = RetryPolicy(backoff_base=0.01, backoff_max=0.05)
BIN = Path(sys.executable).parent / "recarchive"


def run_once(
    settings: Settings,
    *,
    retry: RetryPolicy = FAST,
    concurrency: int = 3,
    since: datetime | None = None,
    until: datetime | None = None,
    report: Reporter | None = None,
    **context_options: Any,
) -> tuple[PassSummary, ArchiveContext]:
    """One ``run_pass`` over every account in a fresh context; the context comes back (HTTP closed)
    so that a test can read ``ctx.api_calls(account)`` and ``ctx.storage`` afterwards."""
    ctx = open_context(settings, retry=retry, **context_options)
    try:
        summary = run_pass(ctx, settings.accounts, since=since, until=until, concurrency=concurrency,
                           report=report)
        return summary, ctx
    finally:
        ctx.http.close()


def one_pass(settings: Settings, **kw: Any) -> tuple[PassSummary, Storage]:
    summary, ctx = run_once(settings, **kw)
    return summary, ctx.storage


def listing(storage: Storage) -> dict[str, tuple[int, str | None]]:
    return {o.key: (o.size, o.etag) for o in storage.list("") if not o.key.startswith("_state/")}


def metadata_docs(storage: Storage) -> dict[str, dict[str, Any]]:
    docs = {}
    for info in storage.list(""):
        if info.key.endswith("/metadata.json") and not info.key.startswith("_"):
            doc = json.loads(storage.read_bytes(info.key))
            docs[doc["recording_id"]] = doc
    return docs


def stored_original(storage: Storage, doc: dict[str, Any]) -> bytes:
    original = next(o for o in doc["objects"] if o["role"] == "original")
    folder = f"{doc['provider']}/{doc['account']}/{doc['started_at'][:4]}/{doc['started_at'][5:7]}/" \
             f"{doc['started_at'][8:10]}/"
    key = next(o.key for o in storage.list(folder) if o.key.endswith("/" + original["key"].rsplit("/", 1)[-1])
               and f"/{doc['recording_id']}/" in o.key or o.key.endswith(original["key"].split("/", 1)[-1]))
    return b"".join(storage.iter_bytes(key))


def write_config(path: Path, storage: dict[str, Any], accounts: list[dict[str, Any]]) -> Path:
    """A ``recarchive.toml`` with ``[storage]``, a 2 h lookback and one ``[[accounts]]`` per mapping."""
    def value(v: Any) -> str:
        return json.dumps(v)

    lines = ["[storage]"] + [f"{k} = {value(v)}" for k, v in storage.items()]
    lines += ["", "[schedule]", 'lookback = "2h"']
    for account in accounts:
        lines += ["", "[[accounts]]"] + [f"{k} = {value(v)}" for k, v in account.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``recarchive ARGS`` as a separate process (the installed entry point)."""
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env, timeout=300)
