"""The real ``recarchive verify`` / ``show`` commands over a local-folder archive of many tiny recordings.

    .venv/bin/python bench/audit_local.py                      # 100,000 recordings = 200,000 objects
    .venv/bin/python bench/audit_local.py --recordings 500000  # 1,000,000 objects (about 4 GB of inodes)

Complements ``bench/audit_memory.py`` (the audit functions over a synthetic store) with the commands
themselves as an auditor runs them: a config holding only ``[storage]`` (no account, no token),
``recarchive verify --json`` (it finds the account in the store and re-hashes every object) and
``recarchive show`` of the last recording by id. The tree is written once under
``$TMPDIR/recarchive-bench/audit-local-N`` (the same bytes ``audit_memory.SyntheticArchive``
generates) and kept for the next run. Peak RSS is the command's own ``ru_maxrss`` (``os.wait4``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.audit_memory import ACCOUNT, PROVIDER, ROOT, SyntheticArchive

RECARCHIVE = Path(sys.executable).parent / "recarchive"
TARGET_MB = 200


def build(root: Path, recordings: int, days: int) -> None:
    """The archive as files (and the last recording's id-index entry), unless already complete."""
    marker = root / ".complete"
    if marker.exists():
        return
    store = SyntheticArchive(recordings, days)
    for info in store.list(ROOT):
        path = root / info.key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(store.read_bytes(info.key))
    last = f"{recordings - 1:09d}"
    day = store._day_of(recordings - 1)
    entry = root / "_index" / PROVIDER / ACCOUNT / last / f"{day:%Y-%m-%d}"
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_text(json.dumps({"schema": "recarchive.index/1", "folder": store._folder(recordings - 1),
                                 "recording_id": last}))
    marker.write_text("ok\n")


def run(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(seconds, peak RSS MB, stdout) of one command."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.DEVNULL, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return time.monotonic() - started, usage.ru_maxrss / 1024, out.read().decode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recordings", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "recarchive-bench")
    args = parser.parse_args(argv)
    root = args.dir / f"audit-local-{args.recordings}"
    started = time.monotonic()
    build(root, args.recordings, args.days)
    print(f"archive: {root} ({args.recordings:,} recordings, {args.recordings * 2:,} objects), "
          f"ready in {time.monotonic() - started:.0f} s")
    config = args.dir / f"audit-local-{args.recordings}.toml"
    config.write_text(f'[storage]\nurl = "file://{root}"\n')
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(args.dir)}  # no token, no AWS
    seconds, peak, out = run([str(RECARCHIVE), "verify", "--json", "--config", str(config)], env)
    report = json.loads(out)
    print(f"recarchive verify: {seconds:.0f} s, peak RSS {peak:.1f} MB, {report['recordings']:,} recordings, "
          f"{report['objects']:,} objects, ok={report['ok']}, unconfigured={report['unconfigured_accounts']}")
    last = f"{args.recordings - 1:09d}"
    seconds, peak, out = run([str(RECARCHIVE), "show", "--json", "--account", ACCOUNT, "--id", last,
                              "--config", str(config)], env)
    shown = json.loads(out)
    print(f"recarchive show:   {seconds:.1f} s, peak RSS {peak:.1f} MB, found by {shown['found_by']}")
    verdict = "met" if report["ok"] and peak < TARGET_MB else "NOT met"
    print(f"target: under {TARGET_MB} MB: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
