"""Daemon worker throughput: recordings per second of one real Celery worker, from discovery to commit.

    .venv/bin/python bench/daemon_worker.py                          # 300 x 1 MB WAV, threads x 4
    .venv/bin/python bench/daemon_worker.py --count 100 --concurrency 1 4 8

What runs, all real and on loopback: the vendor simulator (Convirza, in this process) serving WAV
files from disk, a moto S3 server in a child process, a ``redis-server`` of its own on a free port
(no persistence), and one ``celery -A worker worker`` process (``--pool threads``, queues
``discover,download,transcode``) reading the config file, exactly as ``docker compose`` runs it. The
bench sends one ``recarchive.discover`` task (what beat sends every ``discover_every``) and counts the
committed ``metadata.json`` until every recording is archived; the worker's own discovery at start is
switched off (``RECARCHIVE_DISCOVER_AT_START=0``) so the clock starts with the task.

Each task resolves its recording's media link again (signed URLs never go to Redis), one vendor API
call per recording, so the worker is bound by the account's ``rate_limit`` (5 requests/s by default,
shared by every worker through Redis): ``--rate-limit 50/s`` shows the worker's own capacity.

Figures: recordings per second over the whole run (discovery, enqueue, download, SHA-256, checks,
upload, ``metadata.json``, manifest entry, id index) and between the 10th and the 90th percentile of
commits (the steady rate, without the discovery in front and the tail), the worker's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import MB, ROOT, MotoServer, TreeSampler, aws_env, table, write_wav
from providers.simulator import Simulator

BUCKET = "bench-daemon"


@dataclass
class WorkerFigure:
    concurrency: int
    count: int
    seconds: float
    steady_per_s: float
    peak_mb: float

    @property
    def per_s(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Redis:
    """A ``redis-server`` of the bench's own: free port, no persistence, stopped by its PID."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (apt-get install -y redis-server)")
        self.port = free_port()
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(folder)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise SystemExit("redis-server did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def write_config(path: Path, moto: MotoServer, redis_url: str, account: dict[str, Any], work: Path) -> None:
    lines = ["[storage]", f'url = "s3://{BUCKET}/archive"', f'endpoint_url = "{moto.endpoint}"',
             'region = "us-east-1"', f"work_dir = {json.dumps(str(work))}", "",
             "[broker]", f'url = "{redis_url}"', "", "[schedule]", 'discover_every = "1h"', 'lookback = "2h"', "",
             "[[accounts]]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in account.items()]
    path.write_text("\n".join(lines) + "\n")


def committed(client: Any) -> int:
    count = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="archive/convirza/"):
        count += sum(1 for item in page.get("Contents", ()) if item["Key"].endswith("/metadata.json"))
    return count


def one_worker(files: list[tuple[Path, float]], concurrency: int, scratch: Path,
               rate_limit: str | None = None) -> WorkerFigure:
    folder = scratch / f"worker-{concurrency}"
    folder.mkdir(parents=True, exist_ok=True)
    redis = Redis(folder)
    try:
        with Simulator(link_ttl=24 * 3600) as sim, MotoServer() as moto:
            for path, seconds in files:
                sim.add("convirza", media_file=path, seconds=seconds)
            for rec in sim.recordings("convirza"):
                _ = rec.sha256  # hashed now, not while the worker downloads
            s3 = moto.client()
            s3.create_bucket(Bucket=BUCKET)
            config = folder / "recarchive.toml"
            account = sim.account("convirza", name="bench-daemon")
            if rate_limit:
                account["rate_limit"] = rate_limit
            write_config(config, moto, redis.url, account, folder / "work")
            env = aws_env({**sim.environ(), "RECARCHIVE_CONFIG": str(config), "RECARCHIVE_DISCOVER_AT_START": "0",
                           "PYTHONUNBUFFERED": "1"})
            log_path = folder / "worker.log"
            with open(log_path, "wb") as log:
                worker = subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "worker", "worker", "--pool", "threads", "--concurrency",
                     str(concurrency), "-Q", "discover,download,transcode", "-n", f"bench{concurrency}@localhost",
                     "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                    cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            sampler = TreeSampler(worker.pid).start()
            try:
                return _measure(worker, sampler, config, env, s3, len(files), concurrency, log_path)
            finally:
                sampler.stop()
                worker.terminate()
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
    finally:
        redis.stop()


def _measure(worker: subprocess.Popen[bytes], sampler: TreeSampler, config: Path, env: dict[str, str], s3: Any,
             count: int, concurrency: int, log_path: Path) -> WorkerFigure:
    ready = _wait_ready(worker, env)
    if not ready:
        raise SystemExit(f"the worker did not start:\n{log_path.read_text()[-3000:]}")
    sent = subprocess.run([sys.executable, "-c", _SEND], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)
    started = time.monotonic()
    if sent.returncode != 0:
        raise SystemExit(f"could not send the discover task:\n{sent.stderr[-3000:]}")
    marks: list[tuple[float, int]] = []
    done = 0
    deadline = started + 1800
    while done < count:
        if worker.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"worker stopped or timed out at {done}/{count}:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.5)
        done = committed(s3)
        marks.append((time.monotonic() - started, done))
    seconds = marks[-1][0]
    low = next(t for t, n in marks if n >= 0.1 * count)
    high = next(t for t, n in marks if n >= 0.9 * count)
    steady = 0.8 * count / (high - low) if high > low else 0.0
    return WorkerFigure(concurrency, count, seconds, steady, sampler.peak_kib * 1024 / 1e6)


def _wait_ready(worker: subprocess.Popen[bytes], env: dict[str, str], timeout: float = 60) -> bool:
    """The worker answers a ping (its broker connection and consumers are up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and worker.poll() is None:
        pong = subprocess.run([sys.executable, "-c", _PING], cwd=ROOT, env=env, capture_output=True, check=False)
        if pong.returncode == 0:
            return True
        time.sleep(0.5)
    return False


#: the discover task as beat sends it, from a client app built from the same config
_SEND = """
from tasks.app import app_settings, create_app, send
app = create_app()
for account in app_settings(app).accounts:
    send(app, "recarchive.discover", args=[account.name])
app.close()
"""
_PING = """
import sys
from tasks.app import create_app
app = create_app()
sys.exit(0 if app.control.ping(timeout=1.0) else 1)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=300, help="recordings (WAV files) to archive")
    parser.add_argument("--size-mb", type=float, default=1.0, help="size of each WAV (decimal MB)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4], help="worker --concurrency (threads)")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "recarchive-bench",
                        help="where the generated WAVs go (kept for the next run)")
    parser.add_argument("--rate-limit", default=None,
                        help="the account's vendor API budget, e.g. 50/s (default: the provider's, 5/s)")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table to this file")
    args = parser.parse_args(argv)

    size = int(args.size_mb * MB)
    media = args.dir / "media"
    print(f"generating {args.count} WAV files of {size / MB:g} MB in {media} ...", flush=True)
    files = [(path, write_wav(path, size, unique=path.name)) for path in
             (media / f"daemon-{size // 1000:06d}kb-{i:04d}.wav" for i in range(args.count))]
    figures = []
    with tempfile.TemporaryDirectory(prefix="daemon-bench-", dir=args.dir) as scratch:
        for concurrency in args.concurrency:
            print(f"one worker, --pool threads --concurrency {concurrency} ...", flush=True)
            figures.append(one_worker(files, concurrency, Path(scratch), args.rate_limit))
    text = table(["worker threads", "recordings", "MB each", "wall s", "rec/s (whole run)", "rec/s (steady 10-90 %)",
                  "MB/s", "peak RSS MB"],
                 [[f.concurrency, f.count, f"{size / MB:g}", f"{f.seconds:.1f}", f"{f.per_s:.1f}",
                   f"{f.steady_per_s:.1f}", f"{f.count * size / MB / f.seconds:.1f}", f"{f.peak_mb:.0f}"]
                  for f in figures])
    print()
    print(text)
    budget = args.rate_limit or "the default 5/s"
    print(f"\nvendor API budget: {budget}; {os.cpu_count()} CPUs; every recording: download, SHA-256, sniff, "
          "WAV structure check, S3 upload, metadata.json, manifest entry, id index")
    if args.markdown is not None:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
