"""Throughput: ``recarchive run --once`` against ``rclone copy`` on the same files, same server, same S3.

    .venv/bin/python bench/throughput.py            # 300 x 1 MB + 4 x 200 MB WAVs (about 1.1 GB)
    .venv/bin/python bench/throughput.py --small    # 30 x 1 MB + 2 x 20 MB, a quick check

One run does both, one after the other, at the same concurrency:

- the vendor simulator (in this process) serves the WAVs from disk twice: as Convirza recordings
  behind its API and signed links, and as a plain HTTP directory listing at ``/files/``;
- a moto S3 server runs in a child process (its own GIL), with one bucket for each tool;
- ``rclone copy`` (``--transfers N``) copies the listing into bucket A through an on-the-fly ``http``
  remote and an ``s3`` remote (provider ``Other``), configured by environment variables only;
- a *Python floor* (``bench/_floor.py``): httpx GET streamed into one boto3 PUT per file, nothing
  else (no hash, no check, no metadata): the least any Python copier does, into bucket C;
- ``recarchive run --once --concurrency N`` discovers the same files through the Convirza API and
  archives them into bucket B, which also means: SHA-256 of every byte, sniffing, an ffmpeg probe and
  a full decode check of each recording, ``metadata.json`` and the state files.

It prints wall time, MB/s (decimal MB) and the ratios to rclone (recarchive's target <= 0.9), then the
vendor API calls each provider needs to list N recordings against the minimum ceil(N / page size).
Needs rclone: ``apt-get install -y rclone`` (Debian/Ubuntu) or https://rclone.org/install/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import MB, MotoServer, aws_env, bucket_summary, free_disk, table, write_wav
from bench._floor import run_floor
from providers.simulator import VENDORS, Simulator
from providers.simulator.listing import file_name

RECARCHIVE = Path(sys.executable).parent / "recarchive"
SIZES = {"full": [(300, 1 * MB), (4, 200 * MB)], "small": [(30, 1 * MB), (2, 20 * MB)]}


@dataclass
class Result:
    tool: str
    files: int
    bytes: int
    seconds: float
    note: str = ""
    cpu: dict[str, float] | None = None

    @property
    def mb_per_s(self) -> float:
        return self.bytes / MB / self.seconds if self.seconds else 0.0


class CpuMeter:
    """CPU seconds spent during one tool's run: by the tool (with its children, e.g. ffmpeg), by the
    moto server and by this process (the simulator serving the media). On 2 cores this shows what is
    spent where when the machine, not the network, is the bound."""

    def __init__(self, moto_pid: int) -> None:
        self.moto_pid = moto_pid

    def __enter__(self) -> CpuMeter:
        self._children = _rusage(resource.RUSAGE_CHILDREN)
        self._self = _rusage(resource.RUSAGE_SELF)
        self._moto = _proc_cpu(self.moto_pid)
        return self

    def __exit__(self, *exc: object) -> None:
        self.result = {
            "tool": _rusage(resource.RUSAGE_CHILDREN) - self._children,
            "moto": _proc_cpu(self.moto_pid) - self._moto,
            "simulator": _rusage(resource.RUSAGE_SELF) - self._self,
        }


def _rusage(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_files(folder: Path, plan: list[tuple[int, int]]) -> list[tuple[Path, float]]:
    files = []
    for count, size in plan:
        for index in range(count):
            path = folder / f"bench-{size // MB:04d}mb-{index:04d}.wav"
            files.append((path, write_wav(path, size, unique=path.name)))
    return files


def run_rclone(rclone: str, source_url: str, moto: MotoServer, bucket: str, transfers: int,
               scratch: Path) -> float:
    config = scratch / "rclone.conf"
    config.write_text("")  # nothing from the user's own rclone config
    env = aws_env({
        "RCLONE_CONFIG": str(config),
        "RCLONE_CONFIG_SRC_TYPE": "http", "RCLONE_CONFIG_SRC_URL": source_url,
        "RCLONE_CONFIG_DST_TYPE": "s3", "RCLONE_CONFIG_DST_PROVIDER": "Other",
        "RCLONE_CONFIG_DST_ENDPOINT": moto.endpoint, "RCLONE_CONFIG_DST_ACCESS_KEY_ID": "testing",
        "RCLONE_CONFIG_DST_SECRET_ACCESS_KEY": "testing", "RCLONE_CONFIG_DST_REGION": "us-east-1",
        "RCLONE_CONFIG_DST_FORCE_PATH_STYLE": "true",
    })
    command = [rclone, "copy", "src:", f"dst:{bucket}", "--transfers", str(transfers), "--stats", "0"]
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"rclone failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def write_config(path: Path, moto: MotoServer, bucket: str, account: dict[str, Any], work: Path) -> None:
    lines = ["[storage]", f'url = "s3://{bucket}/archive"', f'endpoint_url = "{moto.endpoint}"',
             'region = "us-east-1"', f'work_dir = "{work}"', "", "[[accounts]]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in account.items()]
    path.write_text("\n".join(lines) + "\n")


def run_recarchive(sim: Simulator, moto: MotoServer, bucket: str, concurrency: int,
                   scratch: Path, profile: Path | None, py_spy: Path | None = None) -> tuple[float, dict[str, Any]]:
    config = scratch / "recarchive.toml"
    write_config(config, moto, bucket, sim.account("convirza", name="bench-convirza"), scratch / "work")
    env = aws_env(sim.environ())
    command = [str(RECARCHIVE), "run", "--once", "--json", "--concurrency", str(concurrency), "--config", str(config)]
    if profile is not None:
        command = [sys.executable, str(Path(__file__).with_name("_profile_run.py")), str(profile), *command[1:]]
    if py_spy is not None:  # sampled, every thread, waits included: where the wall time goes
        idle = [] if os.environ.get("PY_SPY_CPU") else ["--idle"]  # PY_SPY_CPU=1: on-CPU samples only
        command = [str(Path(sys.executable).parent / "py-spy"), "record", *idle, "--threads", "--subprocesses",
                   "--rate", "50", "--format", "raw", "-o", str(py_spy), "--", *command]
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"recarchive failed ({done.returncode}):\n{done.stderr[-3000:]}")
    if profile is not None:
        print(done.stderr, file=sys.stderr)
    return seconds, json.loads(done.stdout)


def discovery_calls(count: int) -> list[list[Any]]:
    """Vendor API calls to list ``count`` recordings, per provider, against ceil(count / page size)."""
    from config import settings_from_mapping
    from providers.base import Window
    from worker.compliance.session import open_context

    rows = []
    with Simulator(link_ttl=3600) as sim, tempfile.TemporaryDirectory() as scratch:
        tiny = _tiny_wav()
        for vendor in VENDORS:
            sim.add(vendor, count, seconds=0.1, data=tiny)
        accounts = [sim.account(vendor, name=f"d-{vendor}") for vendor in VENDORS]
        settings = settings_from_mapping({"storage": {"url": scratch}, "accounts": accounts}, sim.environ())
        ctx = open_context(settings)
        try:
            now = datetime.now(UTC)
            for account in settings.accounts:
                handle = ctx.handle(account)
                listed = len(list(handle.provider.list_recordings(Window(account.start, now + timedelta(minutes=1)))))
                page = type(handle.provider).max_page_size
                leads = len(account.lead_ids or []) if account.provider == "convoso" else 1
                minimum = leads * math.ceil(count / page)
                rows.append([account.provider, listed, page, handle.client.calls, minimum,
                             "yes" if handle.client.calls <= minimum else "no"])
        finally:
            ctx.close()
    return rows


def _tiny_wav() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tiny.wav"
        write_wav(path, 1644, unique="tiny")
        return path.read_bytes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="30 x 1 MB + 2 x 20 MB instead of 300 x 1 MB + 4 x 200 MB")
    parser.add_argument("--concurrency", type=int, default=4, help="recarchive --concurrency and rclone --transfers")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "recarchive-bench",
                        help="where the generated WAVs and work files go (kept for the next run)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="also write a cProfile of every recarchive thread to this file (slower)")
    parser.add_argument("--py-spy", type=Path, default=None,
                        help="also record recarchive with py-spy (raw folded stacks, idle included) to this file")
    parser.add_argument("--plan", default=None, help="files as COUNTxMB[,COUNTxMB...], e.g. 300x1,4x200")
    parser.add_argument("--skip-rclone", action="store_true", help="recarchive alone (while tuning; no ratio)")
    parser.add_argument("--skip-floor", action="store_true", help="leave out the Python floor (bench/_floor.py)")
    parser.add_argument("--discovery-count", type=int, default=304, help="recordings per vendor for the API-call table")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the tables to this file")
    args = parser.parse_args(argv)

    rclone = shutil.which("rclone")
    if rclone is None and not args.skip_rclone:
        print("rclone is not installed: `apt-get install -y rclone` (Debian/Ubuntu), `brew install rclone` "
              "(macOS) or see https://rclone.org/install/", file=sys.stderr)
        return 2
    plan = SIZES["small" if args.small else "full"]
    if args.plan:
        plan = [(int(count), int(float(mb) * MB)) for count, mb in (item.split("x") for item in args.plan.split(","))]
    total = sum(count * size for count, size in plan)
    if free_disk(args.dir) < 3 * total:
        print(f"need about {3 * total / MB:.0f} MB free under {args.dir}", file=sys.stderr)
        return 2
    print(f"generating {sum(c for c, _ in plan)} WAV files ({total / MB:.0f} MB) in {args.dir / 'media'} ...",
          flush=True)
    files = make_files(args.dir / "media", plan)
    scratch = args.dir / f"run-{int(time.time())}"
    scratch.mkdir(parents=True)
    try:
        with Simulator(link_ttl=24 * 3600) as sim, MotoServer() as moto:
            for path, seconds in files:
                sim.add("convirza", media_file=path, seconds=seconds)
            for rec in sim.recordings("convirza"):
                _ = rec.sha256  # hashed now, so neither tool's timing includes the simulator's one-off hashing
            s3 = moto.client()
            for bucket in ("bench-rclone", "bench-floor", "bench-recarchive"):
                s3.create_bucket(Bucket=bucket)
            rclone_s, rclone_count, rclone_bytes = 0.0, len(files), total_bytes(files)
            with CpuMeter(moto.proc.pid) as rclone_cpu:
                if rclone is not None and not args.skip_rclone:
                    print(f"rclone copy --transfers {args.concurrency} ...", flush=True)
                    rclone_s = run_rclone(rclone, f"{sim.url}/files/", moto, "bench-rclone", args.concurrency,
                                          scratch)
                    rclone_count, rclone_bytes = bucket_summary(s3, "bench-rclone")
            floor_s, floor_count, floor_bytes = 0.0, 0, 0
            with CpuMeter(moto.proc.pid) as floor_cpu:
                if not args.skip_floor:
                    print(f"python floor (httpx GET -> boto3 PUT) x {args.concurrency} ...", flush=True)
                    names = [file_name(rec) for rec in sim.recordings("convirza")]
                    floor_s = run_floor(f"{sim.url}/files/", names, _floor_client(moto), "bench-floor",
                                        args.concurrency)
                    floor_count, floor_bytes = bucket_summary(s3, "bench-floor")
            print(f"recarchive run --once --concurrency {args.concurrency} ...", flush=True)
            with CpuMeter(moto.proc.pid) as ours_cpu:
                ours_s, summary = run_recarchive(sim, moto, "bench-recarchive", args.concurrency, scratch,
                                                 args.profile, args.py_spy)
            account = summary["accounts"][0]
            originals = sum(1 for key in _keys(s3, "bench-recarchive") if "/original." in key)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    n = len(files)
    if rclone_count != n or account["archived"] != n or originals != n or account["bytes"] != total_bytes(files):
        print(f"MISMATCH: rclone stored {rclone_count}, recarchive archived {account['archived']} "
              f"({originals} originals, {account['bytes']} bytes) of {n}", file=sys.stderr)
        return 1
    if not args.skip_floor and (floor_count != n or floor_bytes != total_bytes(files)):
        print(f"MISMATCH: the Python floor stored {floor_count} files, {floor_bytes} bytes", file=sys.stderr)
        return 1
    results = [
        Result("rclone copy", rclone_count, rclone_bytes, rclone_s, "copy only", rclone_cpu.result),
        *([] if args.skip_floor else [
            Result("python floor", floor_count, floor_bytes, floor_s, "GET -> PUT only, in this process",
                   floor_cpu.result)]),
        Result("recarchive run --once", account["archived"], account["bytes"], ours_s,
               "SHA-256, sniff, probe + decode check, metadata.json", ours_cpu.result),
    ]
    ratio = ours_s / rclone_s if rclone_s else float("nan")
    print()
    text = table(["tool", "files", "MB", "wall s", "MB/s", "CPU s: tool / moto / simulator", "does"],
                 [[r.tool, r.files, f"{r.bytes / MB:.0f}", f"{r.seconds:.1f}", f"{r.mb_per_s:.1f}",
                   " / ".join(f"{(r.cpu or {}).get(k, 0.0):.1f}" for k in ("tool", "moto", "simulator")), r.note]
                  for r in results])
    print(text)
    verdict = (f"ratio recarchive / rclone wall time: {ratio:.2f} (target <= 0.90: "
               f"{'met' if ratio <= 0.9 else 'NOT met'}); concurrency {args.concurrency}, {os.cpu_count()} CPUs")
    if floor_s and rclone_s:
        verdict += (f"\npython floor / rclone: {floor_s / rclone_s:.2f} (the least any Python copier costs here); "
                    f"recarchive / python floor: {ours_s / floor_s:.2f} (what recarchive's own work costs)")
    page = 200
    discovery = (f"discovery for this run (convirza): {account['api_calls']} API calls for {n} recordings; "
                 f"minimum ceil({n} / {page}) = {math.ceil(n / page)}")
    calls = table(["provider", "listed", "max page", "API calls", "minimum", "at minimum"],
                  discovery_calls(args.discovery_count))
    print(f"\n{verdict}\n{discovery}")
    print(f"\nAPI calls to list {args.discovery_count} recordings per vendor (simulator, in process):\n{calls}")
    if args.markdown is not None:
        args.markdown.write_text(f"{text}\n\n{verdict}\n\n{discovery}\n\nAPI calls to list "
                                 f"{args.discovery_count} recordings per vendor:\n\n{calls}\n")
    return 0


def _floor_client(moto: MotoServer) -> Any:
    """boto3 configured as recarchive's own client is (no payload hashing for the signature)."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", endpoint_url=moto.endpoint, region_name="us-east-1", aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(request_checksum_calculation="when_required", response_checksum_validation="when_required",
                      max_pool_connections=32, s3={"addressing_style": "path", "payload_signing_enabled": False}))


def total_bytes(files: list[tuple[Path, float]]) -> int:
    return sum(path.stat().st_size for path, _ in files)


def _keys(client: Any, bucket: str) -> list[str]:
    return [item["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for item in page.get("Contents", [])]


if __name__ == "__main__":
    sys.exit(main())
