#!/usr/bin/env python3
"""The two commands of the README, with all set-up included (only Python 3.11+ needed).

    python3 dev.py demo     # create .venv, install recarchive, run `recarchive demo`
    python3 dev.py test     # create .venv, install recarchive[test], run ruff, mypy and pytest

Anything after the command is passed on (to `recarchive demo` or to pytest).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".recarchive-installed"


def ensure_env() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs on whatever python3 the user has
        sys.exit(f"recarchive needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if PY.exists() and STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    if not PY.exists():
        print(f"creating virtualenv in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    print("installing recarchive and its test tools (pip)", flush=True)
    subprocess.run([str(PY), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=False)
    subprocess.run([str(PY), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[test]"], check=True)
    STAMP.write_text(wanted)


def run(*command: str) -> int:
    print("+ " + " ".join(command), flush=True)
    return subprocess.run(command, cwd=ROOT, check=False).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test"):
        print(__doc__)
        return 2
    ensure_env()
    command, rest = argv[0], argv[1:]
    if command == "demo":
        return run(str(BIN / "recarchive"), "demo", *rest)
    failures = 0
    failures += run(str(BIN / "ruff"), "check", ".") != 0
    failures += run(str(BIN / "mypy")) != 0
    code = run(str(PY), "-m", "pytest", "-q", "-p", "no:cacheprovider", *rest)
    return 1 if failures or code else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
