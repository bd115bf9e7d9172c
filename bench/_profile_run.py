"""Run the ``recarchive`` CLI with its archiving threads profiled: ``bench/throughput.py --profile FILE``.

    python bench/_profile_run.py OUT.prof run --once --config ...

cProfile sees only the thread it runs in, so each ``archive_recording`` call (one per recording, on
the pass's worker threads) gets its own profiler and all are merged into ``OUT.prof``. The phases of a
recording (download, probe, decode check, uploads, state) are also timed and printed on stderr as a
table of summed wall time: with N workers the sum is about N times the pass's wall time.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

_lock = threading.Lock()
_spent: dict[str, float] = defaultdict(float)
_calls: dict[str, int] = defaultdict(int)
_profiles: list[cProfile.Profile] = []


def _timed(owner: Any, name: str, label: str) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            with _lock:
                _spent[label] += time.perf_counter() - started
                _calls[label] += 1

    setattr(owner, name, wrapper)


def _install() -> None:
    import storage.local
    import storage.s3
    import worker.media.inspect
    import worker.pipeline.download
    import worker.pipeline.passes
    import worker.pipeline.state

    _timed(worker.pipeline.download, "fetch_into", "download (HTTP -> spool, SHA-256)")
    _timed(worker.media.inspect, "probe_media", "ffmpeg probe")
    _timed(worker.media.inspect, "check_decode", "ffmpeg full decode check")
    for backend in (storage.s3.S3Storage, storage.local.LocalStorage):
        _timed(backend, "put_file", "storage put_file (original, rendition)")
        _timed(backend, "put_bytes", "storage put_bytes (metadata.json, state, manifests)")
        _timed(backend, "head", "storage head")
        _timed(backend, "read_bytes", "storage read_bytes")
        _timed(backend, "list", "storage list")
    _timed(worker.pipeline.state.StateStore, "unpark", "state unpark")
    archive: Callable[..., Any] = getattr(worker.pipeline.passes, "archive_recording")  # noqa: B009 - not exported

    def profiled(*args: Any, **kwargs: Any) -> Any:
        profile = cProfile.Profile()
        started = time.perf_counter()
        try:
            return profile.runcall(archive, *args, **kwargs)
        finally:
            with _lock:
                _profiles.append(profile)
                _spent["archive_recording (total)"] += time.perf_counter() - started
                _calls["archive_recording (total)"] += 1

    setattr(worker.pipeline.passes, "archive_recording", profiled)  # noqa: B010 - patched for this process only


def _report(out: Path) -> None:
    if not _profiles:
        return
    stats = pstats.Stats(_profiles[0])
    for profile in _profiles[1:]:
        stats.add(profile)
    stats.dump_stats(str(out))
    print("\nphase (summed over worker threads)          calls   seconds", file=sys.stderr)
    for label, seconds in sorted(_spent.items(), key=lambda item: -item[1]):
        print(f"  {label:<44} {_calls[label]:>5} {seconds:>9.1f}", file=sys.stderr)
    print(f"cProfile of {len(_profiles)} archive_recording calls written to {out}", file=sys.stderr)


def main() -> None:
    out = Path(sys.argv[1])
    sys.argv = ["recarchive", *sys.argv[2:]]
    _install()
    from worker.cli import main as cli

    try:
        cli()
    finally:
        _report(out)


if __name__ == "__main__":
    main()
