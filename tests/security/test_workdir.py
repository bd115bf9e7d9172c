"""The work dir (issue 14, item 4): created 0700, an existing one must be ours and closed to others,
and what is uploaded is the very spool file whose bytes were hashed."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from providers.simulator import Simulator
from tests.security._support import FAST, outcomes, sim_settings
from worker.compliance.session import open_context
from worker.errors import ChecksumMismatch, ConfigError
from worker.pipeline.passes import run_pass
from worker.pipeline.workdir import WorkDir


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_work_dir_is_created_0700(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        work = WorkDir(tmp_path / "a" / "work")
    finally:
        os.umask(old)
    assert mode(work.path) == 0o700


def test_the_default_work_dir_is_per_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    work = WorkDir()
    assert work.path == tmp_path / f"recarchive-work-{os.geteuid()}" and mode(work.path) == 0o700


def test_an_open_work_dir_of_ours_is_narrowed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    folder.chmod(0o777)
    with caplog.at_level(logging.WARNING):
        WorkDir(folder)
    assert mode(folder) == 0o700
    assert "narrowed to 0700" in caplog.text


def test_a_work_dir_of_another_user_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.chown(folder, 65534, 65534)
    else:  # not root: a directory root owns stands for "another user"
        folder = Path("/usr")
    with pytest.raises(ConfigError, match=f"work dir {folder} belongs to uid"):
        WorkDir(folder)


def test_a_work_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        WorkDir(tmp_path / "file")


def test_the_upload_reads_the_file_that_was_written(tmp_path: Path) -> None:
    work = WorkDir(tmp_path / "work")
    with work.temp_file() as path:
        assert mode(path) == 0o600
        path.write_bytes(b"hashed bytes")
        source = work.upload_source(path, len(b"hashed bytes"))
        swapped = tmp_path / "work" / "swap"
        swapped.write_bytes(b"other bytes!")
        os.replace(swapped, path)  # the name now points elsewhere; the held descriptor does not
        assert source.read_bytes() == b"hashed bytes"


@pytest.mark.parametrize("change", ["replace", "append", "link", "chmod"])
def test_a_spool_changed_after_hashing_is_not_uploaded(tmp_path: Path, change: str) -> None:
    work = WorkDir(tmp_path / "work")
    with work.temp_file() as path:
        path.write_bytes(b"hashed bytes")
        if change == "replace":
            other = tmp_path / "work" / "other"
            other.write_bytes(b"hashed bytez")
            os.replace(other, path)
        elif change == "append":
            with open(path, "ab") as handle:
                handle.write(b"+")
        elif change == "link":
            os.link(path, tmp_path / "outside")
        else:
            path.chmod(0o644)
        with pytest.raises(ChecksumMismatch, match="changed since its bytes were hashed"):
            work.upload_source(path, len(b"hashed bytes"))


class SwappingWorkDir(WorkDir):
    """A work dir where "another process" replaces each spool after it was hashed and checked."""

    def upload_source(self, path: Path, size: int) -> Path:
        other = path.with_name(path.name + ".evil")
        other.write_bytes(b"RIFF" + b"\0" * (size - 4))
        os.replace(other, path)
        return super().upload_source(path, size)


def test_the_pipeline_parks_a_recording_whose_spool_was_swapped(sim: Simulator, tmp_path: Path) -> None:
    (rec,) = sim.add("envoy", seconds=1.0)
    settings = sim_settings(sim, tmp_path, ("envoy",))
    ctx = open_context(settings, retry=FAST)
    ctx.workdir = SwappingWorkDir(tmp_path / "work")
    try:
        summary = run_pass(ctx, settings.accounts, concurrency=1)
    finally:
        ctx.close()
    assert outcomes(summary) == {rec.id: ("parked", "checksum_mismatch")}
    assert not [p for p in (tmp_path / "archive").rglob("original.*")]
