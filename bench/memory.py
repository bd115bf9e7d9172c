"""Memory: archiving a 2 GB WAV with an mp3 rendition, against a pydub full decode and the ffmpeg CLI.

    .venv/bin/python bench/memory.py                 # a 2 GB WAV (8 kHz mono 16-bit, about 35 hours)
    .venv/bin/python bench/memory.py --size-mb 200   # a quicker check

The WAV is generated on disk and served by the vendor simulator in this process straight from the
file (``Simulator.add(media_file=...)``: never read into memory), as a Convirza recording. Three runs,
each a child process whose whole tree (ffmpeg included) is sampled from /proc every 50 ms, VmRSS
summed over the tree, the peak kept:

1. ``recarchive run --once`` with ``[transcode] rendition = "mp3"``, into a local folder (default) or
   a moto S3 server in another process (``--s3``): download + SHA-256, probe, full decode check,
   original stored, mp3 rendition piped through ffmpeg and stored, ``metadata.json``;
2. pydub's ``AudioSegment.from_file`` on the same file: the whole audio in memory (capped, and said
   so, when the machine does not have the memory for it);
3. the ffmpeg CLI alone transcoding the same file to mp3 at the same bitrate.

Targets: the archiver's peak RSS <= 150 MB whatever the size; the rendition (its ffmpeg child's
lifetime inside the archiver) <= 1.1x the ffmpeg CLI alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import MB, MotoServer, TreeSampler, aws_env, free_disk, table, write_wav
from providers.simulator import Simulator
from worker.media.ffmpeg import find_ffmpeg

RECARCHIVE = Path(sys.executable).parent / "recarchive"
BITRATE = "32k"
TARGET_RSS_MB = 150
TARGET_RENDITION_RATIO = 1.1


@dataclass
class Run:
    what: str
    peak_mb: float
    bytes: int
    seconds: float
    note: str = ""


def measure(command: list[str], env: dict[str, str] | None = None) -> tuple[TreeSampler, float, str]:
    """Run ``command``, sampling its process tree; (sampler, wall seconds, stdout)."""
    started = time.monotonic()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = TreeSampler(proc.pid).start()
    out, err = proc.communicate()
    seconds = time.monotonic() - started
    sampler.stop()
    if proc.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({proc.returncode}):\n{err[-3000:]}")
    return sampler, seconds, out


def mem_available() -> int:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def archive(sim: Simulator, scratch: Path, use_s3: bool) -> tuple[Run, float]:
    account = sim.account("convirza", name="bench-memory")
    work = scratch / "work"
    with MotoServer() if use_s3 else _nothing() as moto:
        if moto is not None:
            moto.client().create_bucket(Bucket="bench-memory")
            storage = ['url = "s3://bench-memory/archive"', f'endpoint_url = "{moto.endpoint}"',
                       'region = "us-east-1"']
        else:
            storage = [f'url = "{(scratch / "archive").as_uri()}"']
        lines = ["[storage]", *storage, f'work_dir = "{work}"', "", "[transcode]", 'rendition = "mp3"',
                 f'bitrate = "{BITRATE}"', "",
                 # the bench WAV is 8 kHz mono: 2 GB is 35 hours, past the default 12-hour cap
                 "[limits]", 'max_duration = "100h"', 'decode_timeout = "10h"', 'rendition_timeout = "10h"', "",
                 "[[accounts]]"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in account.items()]
        config = scratch / "recarchive.toml"
        config.write_text("\n".join(lines) + "\n")
        sampler, seconds, out = measure([str(RECARCHIVE), "run", "--once", "--json", "--config", str(config)],
                                        env=aws_env(sim.environ()))
    summary = json.loads(out)["accounts"][0]
    if summary["archived"] != 1:
        raise SystemExit(f"the recording was not archived: {summary}")
    rendition = sampler.span("libmp3lame")
    where = "moto S3" if use_s3 else "local folder"
    return Run("recarchive run --once (+ mp3 rendition)", sampler.peak_kib / 1024, summary["bytes"], seconds,
               f"into a {where}; its ffmpeg rendition child ran {rendition:.1f} s"), rendition


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


PYDUB = (
    "import sys, warnings\n"
    "warnings.simplefilter('ignore')\n"
    "from pydub import AudioSegment\n"
    "AudioSegment.converter = sys.argv[2]\n"
    "segment = AudioSegment.from_file(sys.argv[1])\n"
    "print(len(segment.raw_data))\n"
)


def pydub_decode(path: Path, scratch: Path, ffmpeg: str) -> Run:
    size = path.stat().st_size
    budget = int(mem_available() * 0.6)
    note = "AudioSegment.from_file: the whole audio in memory"
    if size * 3 > budget:  # pydub holds the bytes read and the decoded copy
        capped = max(MB, budget // 3)
        target = scratch / "pydub-capped.wav"
        write_wav(target, capped, unique="pydub-capped")
        note += f"; CAPPED to {capped / MB:.0f} MB (the full file needs ~{3 * size / MB:.0f} MB, not available)"
        path = target
    sampler, seconds, _ = measure([sys.executable, "-c", PYDUB, str(path), ffmpeg])
    return Run("pydub AudioSegment.from_file", sampler.peak_kib / 1024, path.stat().st_size, seconds, note)


def ffmpeg_alone(path: Path, scratch: Path, ffmpeg: str) -> Run:
    out = scratch / "alone.mp3"
    command = [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-v", "error", "-i", str(path),
               "-vn", "-sn", "-dn", "-c:a", "libmp3lame", "-b:a", BITRATE, "-f", "mp3", "-y", str(out)]
    sampler, seconds, _ = measure(command)
    return Run("ffmpeg CLI alone (wav -> mp3)", sampler.peak_kib / 1024, path.stat().st_size, seconds,
               f"-c:a libmp3lame -b:a {BITRATE}, to a file")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=2000, help="WAV size in decimal MB (default 2000)")
    parser.add_argument("--s3", action="store_true", help="archive into a moto S3 server instead of a local folder")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "recarchive-bench",
                        help="where the WAV (kept for the next run) and the work files go")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table to this file")
    args = parser.parse_args(argv)

    size = args.size_mb * MB
    needed = 4 * size  # the WAV, the archiver's spool, the stored original, pydub's input if capped
    if free_disk(args.dir) < needed:
        print(f"need about {needed / MB:.0f} MB free under {args.dir} (df says "
              f"{free_disk(args.dir) / MB:.0f} MB)", file=sys.stderr)
        return 2
    ffmpeg = find_ffmpeg().ffmpeg
    wav = args.dir / "media" / f"memory-{args.size_mb}mb.wav"
    print(f"generating {wav} ({size / MB:.0f} MB) ...", flush=True)
    seconds = write_wav(wav, size, unique=wav.name)
    scratch = args.dir / f"memory-run-{int(time.time())}"
    scratch.mkdir(parents=True)
    try:
        with Simulator(link_ttl=24 * 3600) as sim:
            (rec,) = sim.add("convirza", media_file=wav, seconds=seconds)
            _ = rec.sha256  # the simulator hashes the file once, before anything is timed
            print("recarchive run --once with an mp3 rendition ...", flush=True)
            ours, rendition = archive(sim, scratch, args.s3)
        shutil.rmtree(scratch / "archive", ignore_errors=True)
        print("pydub AudioSegment.from_file ...", flush=True)
        pydub = pydub_decode(wav, scratch, ffmpeg)
        print("ffmpeg CLI alone ...", flush=True)
        alone = ffmpeg_alone(wav, scratch, ffmpeg)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    runs = [ours, pydub, alone]
    text = table(["run", "peak RSS (tree) MB", "MB", "seconds", "note"],
                 [[r.what, f"{r.peak_mb:.0f}", f"{r.bytes / MB:.0f}", f"{r.seconds:.1f}", r.note] for r in runs])
    ratio = rendition / alone.seconds if alone.seconds else float("inf")
    verdict = (
        f"archiver peak RSS {ours.peak_mb:.0f} MB (target <= {TARGET_RSS_MB}: "
        f"{'met' if ours.peak_mb <= TARGET_RSS_MB else 'NOT met'}); rendition {rendition:.1f} s vs ffmpeg alone "
        f"{alone.seconds:.1f} s = {ratio:.2f}x (target <= {TARGET_RENDITION_RATIO}: "
        f"{'met' if ratio <= TARGET_RENDITION_RATIO else 'NOT met'})"
    )
    print()
    print(text)
    print(verdict)
    print(f"(WAV: 8 kHz mono 16-bit, {seconds / 3600:.1f} h of audio; {os.cpu_count()} CPUs)")
    if args.markdown is not None:
        args.markdown.write_text(f"{text}\n\n{verdict}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
