"""Real media for the simulator: every recording is bytes a real decoder accepts.

- WAV is synthesised in pure Python: 8 kHz mono 16-bit PCM tones whose pitch depends on the
  recording's id, plus a ``LIST/INFO`` chunk (after ``data``) carrying the id, with exact RIFF sizes.
- MP3, M4A (AAC in an ``M4A `` brand MP4) and MP4 (H.264 64x48 video + AAC audio) are encoded once
  per ``(kind, seconds)`` with the real ffmpeg and cached on disk; each recording's copy is then made
  unique without re-encoding: MP3 gets an ID3v2 tag carrying the id in front (the cached file is
  written without its own ID3 tag), M4A/MP4 get a top-level ``free`` box carrying the id appended at
  the end (ISO BMFF readers skip unknown/free boxes). No per-recording ffmpeg run, so adding hundreds
  of recordings stays fast, yet every recording's SHA-256 differs.
"""

from __future__ import annotations

import array
import hashlib
import math
import os
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from worker.media.ffmpeg import find_ffmpeg

__all__ = ["CONTENT_TYPES", "KINDS", "default_cache_dir", "make_media", "sniff_kind"]

KINDS = ("wav", "mp3", "m4a", "mp4")
CONTENT_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "m4a": "audio/mp4", "mp4": "video/mp4"}
_RATE = 8000
_CACHE_VERSION = "v1"
_locks: dict[tuple[str, str], threading.Lock] = {}
_locks_guard = threading.Lock()


def default_cache_dir() -> Path:
    """A per-user cache under the system temp dir (generated media is reproducible, never precious)."""
    user = str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"recarchive-sim-{user}"


def make_media(kind: str, seconds: float, unique: str, *, cache_dir: Path | None = None) -> bytes:
    """The bytes of a ``kind`` recording of about ``seconds`` seconds, unique to ``unique``."""
    if kind not in KINDS:
        raise ValueError(f"unknown media kind {kind!r}; known: {', '.join(KINDS)}")
    if not 0 < seconds <= 6 * 3600:
        raise ValueError(f"seconds must be in (0, 21600], got {seconds}")
    if kind == "wav":
        return _wav(seconds, unique)
    base = _cached(kind, seconds, cache_dir or default_cache_dir())
    tag = unique.encode("utf-8")
    if kind == "mp3":
        return _id3v2(tag) + base
    payload = b"recarchive-sim:" + tag
    return base + struct.pack(">I", 8 + len(payload)) + b"free" + payload


def sniff_kind(head: bytes) -> str | None:
    """The kind the first bytes announce (used by the tests and the control API)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head[4:8] == b"ftyp":
        return "m4a" if head[8:12] == b"M4A " else "mp4"
    return None


def _seed(unique: str) -> int:
    return int.from_bytes(hashlib.sha256(unique.encode("utf-8")).digest()[:4], "big")


def _wav(seconds: float, unique: str) -> bytes:
    total = max(1, round(seconds * _RATE))
    seed = _seed(unique)
    base = 300 + seed % 600
    blocks: list[bytes] = []
    for step in range(4):  # four one-second tones, repeated: a "chirp" cheap enough for pure Python
        freq = base + step * 75
        amp = 6000 + (seed >> 8) % 4000
        samples = array.array("h", (int(amp * math.sin(2 * math.pi * freq * n / _RATE)) for n in range(_RATE)))
        if sys.byteorder == "big":
            samples.byteswap()
        blocks.append(samples.tobytes())
    pcm = bytearray()
    whole, rest = divmod(total, _RATE)
    for second in range(whole):
        pcm += blocks[second % 4]
    pcm += blocks[whole % 4][: rest * 2]
    comment = unique.encode("utf-8") + b"\0"
    if len(comment) % 2:
        comment += b"\0"
    info = b"INFO" + b"ICMT" + struct.pack("<I", len(comment)) + comment
    fmt = struct.pack("<HHIIHH", 1, 1, _RATE, _RATE * 2, 2, 16)
    body = (
        b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"data" + struct.pack("<I", len(pcm)) + bytes(pcm)
        + b"LIST" + struct.pack("<I", len(info)) + info
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _syncsafe(value: int) -> bytes:
    return bytes(((value >> shift) & 0x7F) for shift in (21, 14, 7, 0))


def _id3v2(tag: bytes) -> bytes:
    """An ID3v2.3 tag with one ``TXXX`` frame carrying the recording's id."""
    frame_body = b"\x00" + b"recarchive-sim\x00" + tag
    frame = b"TXXX" + struct.pack(">I", len(frame_body)) + b"\x00\x00" + frame_body
    return b"ID3\x03\x00\x00" + _syncsafe(len(frame)) + frame


def _lock_for(kind: str, key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault((kind, key), threading.Lock())


def _cached(kind: str, seconds: float, cache_dir: Path) -> bytes:
    key = f"{seconds:.3f}"
    path = cache_dir / f"{kind}-{key}-{_CACHE_VERSION}.{kind}"
    with _lock_for(kind, key):
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{kind}-", suffix=f".{kind}", dir=cache_dir)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            _encode(kind, seconds, tmp)
            os.replace(tmp, path)  # atomic: a concurrent process sees the whole file or none
        finally:
            tmp.unlink(missing_ok=True)
        return path.read_bytes()


def _encode(kind: str, seconds: float, out: Path) -> None:
    duration = f"{seconds:.3f}"
    tone = ["-f", "lavfi", "-i", f"sine=frequency=523:sample_rate={_RATE}:duration={duration}"]
    audio = ["-ac", "1", "-ar", str(_RATE)]
    if kind == "mp3":
        args = [*tone, *audio, "-c:a", "libmp3lame", "-b:a", "16k", "-id3v2_version", "0", "-f", "mp3"]
    elif kind == "m4a":
        args = [*tone, *audio, "-c:a", "aac", "-b:a", "16k", "-f", "ipod"]
    else:
        video = ["-f", "lavfi", "-i", f"testsrc2=size=64x48:rate=4:duration={duration}"]
        args = [
            *video, *tone, "-map", "0:v", "-map", "1:a",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            *audio, "-c:a", "aac", "-b:a", "16k", "-shortest", "-f", "mp4",
        ]
    command = [find_ffmpeg().ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y", *args, str(out)]
    result = subprocess.run(command, capture_output=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg could not generate {kind}: {result.stderr.decode(errors='replace')[-500:]}")
