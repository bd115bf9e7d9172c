"""Unknown vendor status values are named by ``run`` and by ``status``, never dropped (CONTRACT §4.5)."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from config import settings_from_mapping
from storage.local import LocalStorage
from worker.cli._render import print_summary
from worker.cli.status import account_status
from worker.pipeline.ledger import AccountLedger
from worker.pipeline.passes import PassSummary
from worker.pipeline.state import StateStore


def _settings(tmp_path: Path) -> object:
    return settings_from_mapping({
        "storage": {"url": str(tmp_path / "archive")},
        "accounts": [{"name": "e", "provider": "envoy", "base_url": "https://api.tryenvoy.ai", "token_env": "T",
                      "start": "2026-01-01T00:00:00Z"}],
    }, {"T": "secret-token-value"})


def test_status_names_unknown_status_values(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    storage = LocalStorage(tmp_path / "archive")
    StateStore(storage).save_last_pass("e", {"finished_at": "2026-11-30T08:00:00Z", "not_ready_ids": ["c1", "c2"],
                                             "unknown_statuses": {"QUEUED": 2}})
    row = account_status(settings, storage, "e")  # type: ignore[arg-type]
    [warning] = [w for w in row["warnings"] if w["kind"] == "unknown_status"]
    assert warning["statuses"] == {"QUEUED": 2} and "'QUEUED' x2" in warning["message"]


def test_run_summary_names_unknown_status_values() -> None:
    ledger = AccountLedger("e", "envoy")
    ledger.unknown_statuses["QUEUED"] += 3
    out = io.StringIO()
    print_summary(PassSummary(accounts=[ledger]), Console(file=out, width=200))
    assert "unknown status 'QUEUED' on 3 recording(s)" in out.getvalue()
    assert ledger.as_dict()["unknown_statuses"] == {"QUEUED": 3}
