"""Pass memory: peak RSS and wall time of one ``recarchive run --once`` over 10k, 100k and 1M listed calls.

    .venv/bin/python bench/pass_memory.py                       # 10k, 100k, 1M (about 15 minutes)
    .venv/bin/python bench/pass_memory.py --counts 10000 100000 # the issue's two figures
    .venv/bin/python bench/pass_memory.py --tracemalloc 100000  # + what grows, from inside the pass

For each count a fresh vendor simulator (Convirza, in this process) lists that many calls, seven
seconds apart (1M spans 81 days: three 31-day chunks of the vendor's API), and a moto S3 server runs
in a child process. Most calls are listed without a recording (what the vendor lists for unanswered
calls; older than ``no_recording_after``, so final), so the figure is the pass itself — listing,
triage, the ledger, checkpoints — not the media; ``--ready`` recordings (default 200) carry a tiny
WAV and are archived for real (download, SHA-256, probe and decode check, S3 upload,
``metadata.json``, manifests), so the archiving side runs too.

Peak RSS is the sum of VmRSS over the ``recarchive`` process and all its descendants (ffmpeg),
sampled from /proc every 50 ms (``bench._common.TreeSampler``); wall time is the child from start to
exit. The target (issue 16): 100k under 150 MB and within 1.5x of the 10k figure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import MotoServer, TreeSampler, aws_env, table, write_wav
from providers.simulator import Simulator

RECARCHIVE = Path(sys.executable).parent / "recarchive"


@dataclass
class PassFigure:
    listed: int
    archived: int
    peak_mb: float
    seconds: float
    api_calls: int
    top: list[str]

    @property
    def kb_per_listed(self) -> float:
        return self.peak_mb * 1000 / self.listed if self.listed else 0.0


def populate(sim: Simulator, count: int, ready: int, wav: bytes) -> None:
    """``count`` calls seven seconds apart ending 25 hours ago: ``ready`` of them, spread evenly
    through the listing, with media; the rest listed without a recording (unanswered calls)."""
    ready = min(ready, count)
    spacing = timedelta(seconds=7)
    first = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=25) - spacing * count
    stride = count // ready if ready else count + 1
    for index in range(count):
        with_media = ready > 0 and index % stride == stride // 2 and index // stride < ready
        sim.add("convirza", started_at=first + spacing * index, data=wav, seconds=1.0,
                state="ready" if with_media else "no_recording")


def write_config(path: Path, moto: MotoServer, account: dict[str, Any], work: Path) -> None:
    lines = ["[storage]", 'url = "s3://pass-bench/archive"', f'endpoint_url = "{moto.endpoint}"',
             'region = "us-east-1"', f'work_dir = "{work}"', "", "[[accounts]]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in account.items()]
    path.write_text("\n".join(lines) + "\n")


def one_pass(count: int, ready: int, scratch: Path, wav: bytes, concurrency: int,
             tracemalloc_top: int) -> PassFigure:
    folder = scratch / f"pass-{count}"
    folder.mkdir(parents=True, exist_ok=True)
    with Simulator(link_ttl=24 * 3600) as sim, MotoServer() as moto:
        started = time.monotonic()
        populate(sim, count, ready, wav)
        print(f"  simulator holds {count} calls ({time.monotonic() - started:.0f} s to make)", flush=True)
        moto.client().create_bucket(Bucket="pass-bench")
        config = folder / "recarchive.toml"
        write_config(config, moto, sim.account("convirza", name="pass-bench"), folder / "work")
        env = aws_env(sim.environ())
        command = [str(RECARCHIVE), "run", "--once", "--json", "--concurrency", str(concurrency),
                   "--config", str(config)]
        if tracemalloc_top:
            command = [sys.executable, "-X", "tracemalloc=25", "-c", _TRACED, str(tracemalloc_top), *command[1:]]
        started = time.monotonic()
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        sampler = TreeSampler(child.pid).start()
        out, err = child.communicate()
        seconds = time.monotonic() - started
        sampler.stop()
    if child.returncode not in (0, 1):
        raise SystemExit(f"recarchive failed ({child.returncode}):\n{err[-3000:]}")
    account = json.loads(out)["accounts"][0]
    listed = int(account.get("found") or 0)
    if listed != count:
        raise SystemExit(f"recarchive listed {listed} of {count} calls:\n{err[-3000:]}")
    top = [line for line in err.splitlines() if line.startswith("tracemalloc ")]
    return PassFigure(listed, int(account.get("archived") or 0), sampler.peak_kib * 1024 / 1e6, seconds,
                      int(account.get("api_calls") or 0), top)


#: the CLI under tracemalloc, printing the largest allocation sites at the peak of traced memory
_TRACED = """
import sys, tracemalloc
top = int(sys.argv[1]); sys.argv = ["recarchive", *sys.argv[2:]]
from worker.cli import main
try:
    main()
finally:
    snapshot = tracemalloc.take_snapshot()
    current, peak = tracemalloc.get_traced_memory()
    print(f"tracemalloc current {current / 1e6:.1f} MB, peak {peak / 1e6:.1f} MB", file=sys.stderr)
    for stat in snapshot.statistics("lineno")[:top]:
        print(f"tracemalloc {stat.size / 1e6:8.2f} MB {stat.count:>8} blocks  {stat.traceback[0]}", file=sys.stderr)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--ready", type=int, default=200, help="calls per pass with media, archived for real")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--tracemalloc", type=int, default=0, metavar="TOP",
                        help="run the CLI under tracemalloc and print its TOP allocation sites (slower)")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table to this file")
    args = parser.parse_args(argv)

    figures: list[PassFigure] = []
    with tempfile.TemporaryDirectory(prefix="pass-memory-") as folder:
        scratch = Path(folder)
        write_wav(scratch / "tiny.wav", 16_044, unique="pass-memory")
        wav = (scratch / "tiny.wav").read_bytes()
        for count in args.counts:
            print(f"recarchive run --once over {count} listed calls ...", flush=True)
            figure = one_pass(count, args.ready, scratch, wav, args.concurrency, args.tracemalloc)
            figures.append(figure)
            print(f"  peak {figure.peak_mb:.0f} MB, {figure.seconds:.1f} s", flush=True)
            for line in figure.top:
                print("  " + line)
    base = figures[0]
    rows = [[f"{f.listed:,}", f.archived, f.api_calls, f"{f.peak_mb:.0f}", f"{f.peak_mb / base.peak_mb:.2f}",
             f"{f.kb_per_listed:.2f}", f"{f.seconds:.1f}", f"{f.listed / f.seconds:,.0f}"] for f in figures]
    text = table(["listed calls", "archived", "API calls", "peak RSS MB", f"x {base.listed:,}", "KB / listed",
                  "wall s", "listed / s"], rows)
    print()
    print(text)
    verdicts = []
    for f in figures:
        if f.listed == 100_000:
            ok = f.peak_mb < 150 and f.peak_mb <= 1.5 * base.peak_mb
            verdicts.append(f"100k: {f.peak_mb:.0f} MB (target < 150 MB and <= 1.5 x {base.peak_mb:.0f} MB: "
                            f"{'met' if ok else 'NOT met'})")
    print("\n".join(verdicts))
    if args.markdown is not None:
        args.markdown.write_text(text + "\n\n" + "\n".join(verdicts) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
