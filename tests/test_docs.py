"""The documentation: the site builds with ``mkdocs build --strict`` (every page in the nav, every
link and anchor resolves), the README links only to files that exist, what the docs tell people to
type works, and the licence is declared the way packaging tools read it.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
#: SHA-256 of the Apache License 2.0 text as the ASF publishes it (LICENSE-2.0.txt)
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"


def test_mkdocs_builds_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="mkdocs builds the documentation (test extra)")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(REPO / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
                          capture_output=True, text=True, timeout=120, check=False, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    built = {path.parent.name or "index" for path in (tmp_path / "site").rglob("index.html")}
    pages = {path.stem for path in DOCS.glob("*.md")}
    assert pages - {"index"} <= built, f"pages not built: {pages - built}"


def test_every_doc_page_is_in_the_nav() -> None:
    text = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    listed = set(re.findall(r":\s*(\S+\.md)\s*$", text, re.M))
    assert listed == {path.name for path in DOCS.glob("*.md")}


def test_readme_links_resolve_and_keep_the_newcomer_essentials() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme):
        if "://" in target:
            continue
        assert (REPO / target).exists(), f"README links to {target}, which does not exist"
    for essential in ("python3 dev.py demo", "python3 dev.py test", "[storage]", "[[accounts]]", "changelog"):
        assert essential in readme, essential
    assert len(readme.splitlines()) < 150, "the README is for newcomers; the rest belongs in docs/"


def test_no_page_is_left_unfinished() -> None:
    for path in [REPO / "README.md", REPO / "SECURITY.md", *DOCS.glob("*.md")]:
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        found = re.search(r"\b(TODO|TBD|FIXME|XXX|lorem ipsum|placeholder)\b", text, re.I)
        assert found is None, f"{path.name}: {found.group(0) if found else ''}"


def test_licence_is_an_spdx_expression_with_its_text() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "Apache-2.0"
    assert project.get("license-files") == ["LICENSE"]
    text = (REPO / "LICENSE").read_bytes()
    assert hashlib.sha256(text).hexdigest() == APACHE_2_SHA256, "LICENSE is not the Apache License 2.0 text"


def test_documented_shell_completion_works() -> None:
    recarchive = Path(sys.executable).with_name("recarchive")
    if not recarchive.exists():
        pytest.skip("the recarchive console script is not installed in this environment")
    env = {**os.environ, "_RECARCHIVE_COMPLETE": "bash_source"}
    done = subprocess.run([str(recarchive)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and "complete -o nosort -F _recarchive_completion recarchive" in done.stdout
    env = {**os.environ, "_RECARCHIVE_COMPLETE": "bash_complete", "COMP_WORDS": "recarchive ve", "COMP_CWORD": "1"}
    done = subprocess.run([str(recarchive)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert "plain,verify" in done.stdout.splitlines()
    documented = (DOCS / "operations.md").read_text(encoding="utf-8")
    assert "_RECARCHIVE_COMPLETE=bash_source recarchive" in documented
