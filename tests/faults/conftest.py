"""Fixtures of the fault suite: the seed, and the table every scenario adds its row to.

The table is printed by ``pytest_terminal_summary`` at the end of the run (also with ``-q``); each
scenario asserts its own zeros, so a failing row also fails its test.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

import pytest

from tests.faults.invariants import Report

_TABLE = pytest.StashKey["FaultTable"]()


@dataclass
class Row:
    scenario: str
    trials: int
    report: Report
    seconds: float
    notes: str = ""
    recordings: int = 0


@dataclass
class FaultTable:
    seed: int
    rows: list[Row] = field(default_factory=list)

    def add(self, scenario: str, trials: int, report: Report, seconds: float, notes: str = "",
            recordings: int | None = None) -> None:
        """One scenario's row; ``recordings`` = those its trials added (default: all it checked)."""
        self.rows.append(Row(scenario, trials, report, seconds, notes,
                             report.recordings if recordings is None else recordings))

    def render(self) -> list[str]:
        header = ("scenario", "trials", "recordings", *(Report.LABELS.get(c, c) for c in Report.COLUMNS), "seconds")
        body = [(r.scenario, str(r.trials), str(r.recordings), *(str(v) for v in r.report.counts().values()),
                 f"{r.seconds:.1f}") for r in self.rows]
        widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

        def fmt(cells: tuple[str, ...]) -> str:
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        lines = [fmt(header), "  ".join("-" * w for w in widths), *(fmt(b) for b in body)]
        totals = [sum(r.report.counts()[k] for r in self.rows) for k in Report.COLUMNS]
        lines.append(f"seed {self.seed} (RECARCHIVE_FAULT_SEED={self.seed} repeats the random choices); "
                     f"{sum(r.trials for r in self.rows)} trials, "
                     f"{sum(r.recordings for r in self.rows)} recordings, failures: "
                     + ", ".join(f"{Report.LABELS.get(k, k)} {v}" for k, v in zip(Report.COLUMNS, totals)))
        lines.extend(f"  {r.scenario}: {r.notes}" for r in self.rows if r.notes)
        findings = [f"  {r.scenario}: {r.report.open_uploads} multipart uploads left open"
                    for r in self.rows if r.report.open_uploads]
        if findings:
            lines.append("recorded, not failures (see tests/faults/invariants.py):")
            lines.extend(findings)
        return lines


def pytest_configure(config: pytest.Config) -> None:
    text = os.environ.get("RECARCHIVE_FAULT_SEED", "").strip()
    seed = int(text) if text else random.SystemRandom().randrange(1, 10**6)
    config.stash[_TABLE] = FaultTable(seed)


@pytest.fixture(scope="session")
def fault_table(request: pytest.FixtureRequest) -> FaultTable:
    return request.config.stash[_TABLE]


@pytest.fixture(scope="session")
def fault_seed(fault_table: FaultTable) -> int:
    """The suite's seed (``RECARCHIVE_FAULT_SEED`` or a fresh one, printed in the table)."""
    return fault_table.seed


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    table = config.stash.get(_TABLE, None)
    if table is None or not table.rows:
        return
    terminalreporter.section("fault injection: every ready recording archived once, byte-exact")
    for line in table.render():
        terminalreporter.write_line(line)
