"""A racing archiver for ``test_races.py``: one process that runs a pass whenever it is told to, at an
instant given by the test, so that two of them start their passes together.

Protocol on stdin/stdout (one JSON line each way): ``{"at": <epoch seconds>, "since": <ISO time>}`` →
the process sleeps until that instant, runs ``run_pass`` over its accounts (window from ``since``)
and answers ``{"outcomes": {...}}`` (or
``{"error": "..."}``); ``{"quit": true}`` ends it. The configuration (a settings mapping) is read once
from the JSON file named by the first argument; vendor tokens come from the environment.

Why persistent processes and a start instant: a new interpreter per trial costs seconds of imports,
which would spread the two starts apart; here both are warm and released by the same clock.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from datetime import datetime

from config import settings_from_mapping
from worker.compliance.session import open_context
from worker.pipeline.context import RetryPolicy
from worker.pipeline.passes import run_pass


def main(config_path: str) -> int:
    with open(config_path, encoding="utf-8") as handle:
        mapping = json.load(handle)
    settings = settings_from_mapping(mapping, dict(os.environ))
    ctx = open_context(settings, retry=RetryPolicy(backoff_base=0.01, backoff_max=0.05))
    try:
        for line in sys.stdin:
            order = json.loads(line)
            if order.get("quit"):
                break
            time.sleep(max(0.0, float(order["at"]) - time.time()))
            try:
                since = datetime.fromisoformat(order["since"].replace("Z", "+00:00")) if order.get("since") else None
                summary = run_pass(ctx, list(settings.accounts), since=since, concurrency=2)
                outcomes = Counter(str(r.outcome) for ledger in summary.accounts for r in ledger.results)
                answer: dict[str, object] = {"outcomes": dict(outcomes)}
            except Exception as exc:  # reported to the test, which fails the trial with it
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(answer), flush=True)
    finally:
        ctx.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
