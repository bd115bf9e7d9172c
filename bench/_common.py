"""What the benchmarks share: cheap WAV files on disk, a moto S3 server in its own process, process-tree
memory sampling from /proc, and plain-text tables. Benchmarks print figures; they are not tests."""

from __future__ import annotations

import math
import os
import shutil
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MB = 1_000_000  # figures are decimal megabytes, as disk and network vendors count them

__all__ = [
    "MB",
    "ROOT",
    "MotoServer",
    "TreeSampler",
    "aws_env",
    "free_disk",
    "table",
    "write_wav",
]


def write_wav(path: Path, size: int, *, unique: str, rate: int = 8000, channels: int = 1) -> float:
    """Write a 16-bit PCM WAV of about ``size`` bytes whose bytes are unique to ``unique``, quickly
    (one second of tone written over and over, the tag in a trailing LIST chunk, exact RIFF sizes);
    returns its duration in seconds. An existing file of the same size and tag is kept."""
    tag = (unique.encode() + b"\0") + (b"\0" if len(unique) % 2 == 0 else b"")
    info = b"INFO" + b"ICMT" + struct.pack("<I", len(tag)) + tag
    tail = b"LIST" + struct.pack("<I", len(info)) + info
    frame = 2 * channels
    data_len = max(frame, (size - 44 - len(tail)) // frame * frame)
    seconds = data_len / (rate * frame)
    total = 44 + data_len + len(tail)
    if path.exists() and path.stat().st_size == total and path.read_bytes()[-len(tail):] == tail:
        return seconds
    second = bytearray()
    freq = 300 + (sum(unique.encode()) % 500)
    for n in range(rate):
        sample = int(8000 * math.sin(2 * math.pi * freq * n / rate))
        second += struct.pack("<h", sample) * channels
    block = bytes(second) * 16  # 16 s per write
    header = b"RIFF" + struct.pack("<I", total - 8) + b"WAVE" + b"fmt " + struct.pack(
        "<IHHIIHH", 16, 1, channels, rate, rate * frame, frame, 16) + b"data" + struct.pack("<I", data_len)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as out:
        out.write(header)
        left = data_len
        while left > 0:
            piece = block[: min(left, len(block))]
            out.write(piece)
            left -= len(piece)
        out.write(tail)
    os.replace(tmp, path)
    return seconds


def free_disk(path: Path) -> int:
    path.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(path).free


def aws_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child that talks to moto: its test credentials and nothing of the user's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")
    env.update(extra or {})
    return env


_MOTO = (
    "import sys\n"
    "from moto.server import ThreadedMotoServer\n"
    "server = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False)\n"
    "server.start()\n"
    "print(server.get_host_and_port()[1], flush=True)\n"
    "sys.stdin.read()\n"
    "server.stop()\n"
)


class MotoServer:
    """moto's S3 server (``ThreadedMotoServer`` on 127.0.0.1, port 0) in a child process of its own,
    so that it does not share a GIL with the simulator serving the media in this process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _MOTO], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=aws_env())
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError("moto server did not start")
        self.endpoint = f"http://127.0.0.1:{int(line)}"

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(request_checksum_calculation="when_required", s3={"addressing_style": "path"}))

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self) -> MotoServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def bucket_summary(client: Any, bucket: str, prefix: str = "") -> tuple[int, int]:
    """(object count, total bytes) under ``prefix``."""
    count = size = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            count += 1
            size += int(item["Size"])
    return count, size


# -- memory of a process tree ---------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found += [int(c) for c in handle.read().split()]
    except OSError:
        pass
    return found


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


@dataclass
class Child:
    pid: int
    cmdline: str
    first_seen: float
    last_seen: float
    peak_kib: int = 0


@dataclass
class TreeSampler:
    """Polls VmRSS of ``pid`` and all its descendants every ``interval`` seconds and keeps the peak of
    their sum; also notes each descendant's command line and the span it was seen alive."""

    pid: int
    interval: float = 0.05
    peak_kib: int = 0
    samples: int = 0
    children: dict[int, Child] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> TreeSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        now = time.monotonic()
        pids, queue = [self.pid], [self.pid]
        while queue:
            kids = _children(queue.pop())
            pids += kids
            queue += kids
        total = 0
        for pid in pids:
            rss = _rss_kib(pid)
            total += rss
            if pid != self.pid and rss:
                child = self.children.get(pid)
                if child is None:
                    child = self.children[pid] = Child(pid, _cmdline(pid), now, now)
                child.last_seen = now
                child.peak_kib = max(child.peak_kib, rss)
        self.peak_kib = max(self.peak_kib, total)
        self.samples += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def span(self, needle: str) -> float:
        """Seconds during which descendants whose command line holds ``needle`` were seen alive."""
        return sum(c.last_seen - c.first_seen for c in self.children.values() if needle in c.cmdline)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table (also valid Markdown)."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
