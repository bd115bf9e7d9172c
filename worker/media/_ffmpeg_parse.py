"""Pure parsers for what ffmpeg prints, kept apart from the process plumbing in ``worker/media/inspect.py``
so they can be tested on captured text.

Three sources:

- ``ffmpeg -hide_banner -i FILE`` stderr: the only probe the imageio-ffmpeg binary offers (it ships
  no ffprobe). Its layout is meant for humans, so the parser is tolerant: it reads the ``Input #0``
  line, ``Duration:`` and the ``Stream #0:N: Audio|Video:`` lines and ignores everything else.
- ``ffprobe -print_format json`` output, used when a system ffprobe exists (stable, machine-made).
- ``-progress pipe:1`` key=value blocks, whose ``out_time_us`` says how far a decode got.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ErrorLines",
    "ProbeResult",
    "StreamInfo",
    "parse_channels",
    "parse_clock",
    "parse_ffmpeg_input",
    "parse_ffprobe_json",
    "parse_progress_time",
]


@dataclass(frozen=True)
class StreamInfo:
    kind: str  # "audio", "video", "subtitle", "data", "attachment"
    codec: str | None
    sample_rate: int | None = None
    channels: int | None = None
    # Cover art in MP3/M4A shows up as a one-frame video stream; it does not make a file a video.
    attached_pic: bool = False


@dataclass(frozen=True)
class ProbeResult:
    format_names: tuple[str, ...]  # ffmpeg's demuxer name split on commas: ("mov", "mp4", "m4a", ...)
    duration: float | None
    streams: tuple[StreamInfo, ...]

    @property
    def audio(self) -> StreamInfo | None:
        return next((s for s in self.streams if s.kind == "audio"), None)

    @property
    def video(self) -> StreamInfo | None:
        return next((s for s in self.streams if s.kind == "video" and not s.attached_pic), None)


_INPUT_RE = re.compile(r"^Input #0, (?P<fmt>\S+), from ")
_DURATION_RE = re.compile(r"^\s+Duration: (?P<value>N/A|[\d:.]+)")
_STREAM_RE = re.compile(r"^\s+Stream #0:\d+\S*: (?P<kind>\w+): (?P<rest>.*)$")
_CLOCK_RE = re.compile(r"^(?P<sign>-?)(?P<h>\d+):(?P<m>\d{1,2}):(?P<s>\d{1,2}(?:\.\d+)?)$")
_HZ_RE = re.compile(r"^(\d+) Hz$")
_N_CHANNELS_RE = re.compile(r"^(\d+) channels\b")
_DOTTED_LAYOUT_RE = re.compile(r"^(\d+(?:\.\d+)+)(?:\(.*\))?$")
# libavutil's named layouts that are not written as "front.lfe[.top]"
_NAMED_LAYOUTS = {
    "mono": 1,
    "stereo": 2,
    "downmix": 2,
    "binaural": 2,
    "quad": 4,
    "quad(side)": 4,
    "hexagonal": 6,
    "octagonal": 8,
    "cube": 8,
    "hexadecagonal": 16,
}
_NON_VIDEO_DISPOSITIONS = ("(attached pic)", "(timed thumbnails)")


def parse_clock(text: str) -> float | None:
    """``HH:MM:SS.ff`` (hours may exceed 99, a leading ``-`` is kept) to seconds; ``N/A`` to None."""
    match = _CLOCK_RE.match(text.strip())
    if not match:
        return None
    seconds = int(match["h"]) * 3600 + int(match["m"]) * 60 + float(match["s"])
    return -seconds if match["sign"] else seconds


def parse_channels(layout: str) -> int | None:
    """Channel count from ffmpeg's layout word: ``mono``, ``stereo``, ``5.1(side)``, ``7.1.4``,
    ``3 channels`` / ``3 channels (FL+FR+LFE)``. Dotted layouts add up (5.1 is six channels)."""
    layout = layout.strip()
    if layout in _NAMED_LAYOUTS:
        return _NAMED_LAYOUTS[layout]
    match = _N_CHANNELS_RE.match(layout)
    if match:
        return int(match[1])
    match = _DOTTED_LAYOUT_RE.match(layout)
    if match:
        return sum(int(part) for part in match[1].split("."))
    return None


def _split_top_level(text: str) -> list[str]:
    """Split on ", " outside parentheses/brackets: ``yuvj420p(pc, bt470bg/unknown/unknown)`` is one
    field of a video stream line."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char in "([":
            depth += 1
        elif char in ")]":
            depth = max(0, depth - 1)
        if depth == 0 and text.startswith(", ", i):
            parts.append("".join(current))
            current = []
            i += 2
            continue
        current.append(char)
        i += 1
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _codec_name(field: str) -> str | None:
    word = field.split(" ", 1)[0].strip()
    return word or None


def _parse_stream(kind_word: str, rest: str) -> StreamInfo:
    kind = kind_word.lower()
    fields = _split_top_level(rest)
    codec = _codec_name(fields[0]) if fields else None
    if kind != "audio":
        attached = any(mark in rest for mark in _NON_VIDEO_DISPOSITIONS)
        return StreamInfo(kind=kind, codec=codec, attached_pic=attached)
    sample_rate: int | None = None
    channels: int | None = None
    for index, field in enumerate(fields[1:], start=1):
        hz = _HZ_RE.match(field)
        if hz:
            sample_rate = int(hz[1])
            if index + 1 < len(fields):
                channels = parse_channels(fields[index + 1])
            break
    return StreamInfo(kind="audio", codec=codec, sample_rate=sample_rate, channels=channels)


def parse_ffmpeg_input(stderr: str) -> ProbeResult | None:
    """Parse the ``Input #0`` section that ``ffmpeg -i`` prints; None when there is none (ffmpeg
    could not open the file as media at all)."""
    format_names: tuple[str, ...] | None = None
    duration: float | None = None
    streams: list[StreamInfo] = []
    for line in stderr.splitlines():
        if format_names is None:
            match = _INPUT_RE.match(line)
            if match:
                format_names = tuple(n for n in match["fmt"].split(",") if n)
            continue
        if line.startswith(("Input #", "Output #", "Stream mapping")):
            break  # only the first input matters; we never pass more than one
        match = _DURATION_RE.match(line)
        if match:
            duration = parse_clock(match["value"])
            continue
        match = _STREAM_RE.match(line)
        if match:
            streams.append(_parse_stream(match["kind"], match["rest"]))
    if format_names is None:
        return None
    return ProbeResult(format_names=format_names, duration=duration, streams=tuple(streams))


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float_or_none(value: Any) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None  # NaN / inf are not durations


def parse_ffprobe_json(text: str) -> ProbeResult | None:
    """Parse ``ffprobe -v error -print_format json -show_format -show_streams`` output."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("format"), dict):
        return None
    fmt: dict[str, Any] = data["format"]
    names = tuple(n for n in str(fmt.get("format_name") or "").split(",") if n)
    if not names:
        return None
    streams: list[StreamInfo] = []
    for raw in data.get("streams") or []:
        if not isinstance(raw, dict):
            continue
        kind = str(raw.get("codec_type") or "")
        codec = raw.get("codec_name")
        codec = str(codec) if codec else None
        disposition = raw.get("disposition")
        if not isinstance(disposition, dict):
            disposition = {}
        attached = bool(disposition.get("attached_pic")) or bool(disposition.get("timed_thumbnails"))
        if kind == "audio":
            streams.append(
                StreamInfo(
                    kind="audio",
                    codec=codec,
                    sample_rate=_int_or_none(raw.get("sample_rate")),
                    channels=_int_or_none(raw.get("channels")),
                )
            )
        else:
            streams.append(StreamInfo(kind=kind, codec=codec, attached_pic=attached))
    return ProbeResult(format_names=names, duration=_float_or_none(fmt.get("duration")), streams=tuple(streams))


def parse_progress_time(line: str) -> float | None:
    """Seconds from one ``-progress`` line (``out_time_us=...`` or ``out_time=HH:MM:SS.us``), else None.

    ``out_time_us`` is preferred: ``out_time_ms`` is also microseconds (a historic ffmpeg misnomer)."""
    key, sep, value = line.strip().partition("=")
    if not sep:
        return None
    if key == "out_time_us":
        micros = _int_or_none(value)
        return None if micros is None else micros / 1_000_000
    if key == "out_time":
        return parse_clock(value)
    return None


_CONTEXT_PREFIX_RE = re.compile(r"^(?:\[[^\]]* @ 0x[0-9a-fA-F]+\]\s*)+")
_REPEATED_RE = re.compile(r"^\s*Last message repeated (\d+) times?")


class ErrorLines:
    """Counts the lines ffmpeg logs at ``-v error`` and keeps the first one, in bounded memory.

    Fed line by line from a drain thread, so a file that makes ffmpeg print millions of errors
    costs a counter, not a buffer. ``Last message repeated N times`` adds N (ffmpeg collapses
    identical consecutive messages). Paths are reduced to the file's name before anything is kept.
    """

    def __init__(self, path_forms: tuple[str, ...], name: str, keep: int = 5, width: int = 300) -> None:
        # longest first, so "file:/a/b.mp3" is replaced before "/a/b.mp3"
        self._path_forms = tuple(sorted((p for p in path_forms if p), key=len, reverse=True))
        self._name = name
        self._keep = keep
        self._width = width
        self.count = 0
        self.lines: list[str] = []

    def clean(self, line: str) -> str:
        for form in self._path_forms:
            line = line.replace(form, self._name)
        line = _CONTEXT_PREFIX_RE.sub("", line.strip())
        return line[: self._width]

    def feed(self, line: str) -> None:
        if not line.strip():
            return
        repeated = _REPEATED_RE.match(line)
        if repeated:
            self.count += int(repeated[1])
            return
        self.count += 1
        if len(self.lines) < self._keep:
            self.lines.append(self.clean(line))

    @property
    def first(self) -> str | None:
        return self.lines[0] if self.lines else None
