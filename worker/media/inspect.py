"""What a downloaded recording is, whether it decodes, and its optional compact rendition.

Everything runs the ffmpeg binary as a subprocess that reads the local file itself, so memory stays
bounded whatever the recording's size: Python only ever holds ffmpeg's log lines (counted, a few
kept) and, for renditions, the chunk the consumer is reading from the pipe.

- ``probe_media``: ffprobe JSON when a system ffprobe exists, else ``ffmpeg -i`` stderr (the
  imageio-ffmpeg binary has no ffprobe). When the header has no duration (a browser-recorded WebM,
  a FLAC written to a pipe) the audio stream is stream-copied to the null muxer to measure it:
  that reads the file once but decodes nothing.
- ``check_decode``: a full streamed decode of the audio to the null muxer, counting error lines.
- ``render_to_file``: the audio re-encoded to MP3 / Ogg Opus / FLAC into a file.

pydub is deliberately not used (see the README's media section): ``AudioSegment`` decodes a whole
recording into memory, ``pydub.utils.mediainfo_json`` needs ffprobe, and importing pydub warns
(``audioop`` is deprecated, removed in Python 3.13).

Inputs are opened as ``file:<absolute path>`` with ``-protocol_whitelist file`` and a whitelist of
audio/video demuxers, so a served "recording" that is really a playlist (HLS, concat) can make ffmpeg
open neither the network nor other local files, and a file name can never be read as an option.
"""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.errors import ConfigError, CorruptMedia, TranscodeFailed
from worker.media._ffmpeg_parse import (
    ErrorLines,
    ProbeResult,
    parse_ffmpeg_input,
    parse_ffprobe_json,
    parse_progress_time,
)
from worker.media._ffmpeg_proc import Capped, Child
from worker.media._wavcheck import inspect_pcm_wav
from worker.media.ffmpeg import FFmpeg, find_ffmpeg

__all__ = [
    "RENDITION_CONTENT_TYPE",
    "RENDITION_EXT",
    "DecodeReport",
    "MediaInfo",
    "TranscodeFailed",
    "check_decode",
    "duration_flag",
    "ensure_ffmpeg",
    "probe_media",
    "render_to_file",
]

RENDITION_EXT = {"mp3": "mp3", "opus": "opus", "flac": "flac"}
RENDITION_CONTENT_TYPE = {"mp3": "audio/mpeg", "opus": "audio/ogg", "flac": "audio/flac"}
# format -> (encoder, muxer, takes a bitrate)
_RENDITION_ARGS = {
    "mp3": ("libmp3lame", "mp3", True),
    "opus": ("libopus", "ogg", True),
    "flac": ("flac", "flac", False),
}
# Demuxers ffmpeg may use on a recording: the contract's containers plus common telephony/audio ones.
_INPUT_FORMATS = ",".join(
    (
        "wav", "w64", "mp3", "mov", "mp4", "m4a", "ogg", "matroska", "webm", "flac",
        "aiff", "caf", "amr", "amrnb", "amrwb", "aac", "ac3", "wv", "au", "voc", "gsm", "g722",
        "mpeg", "mpegts", "avi", "asf",
    )
)  # fmt: skip
_PROBE_TIMEOUT = 60.0  # reading a header; anything slower is not a recording we can trust
_MEASURE_TIMEOUT = 900.0  # stream copy of a whole file to learn a missing duration
_EXIT_GRACE = 60.0  # after the consumer has read the rendition to its end



@dataclass(frozen=True)
class MediaInfo:
    container: str  # "wav" | "mp3" | "m4a" | "mp4" | "ogg" | "webm" | "flac" | other ffmpeg name
    codec: str | None
    sample_rate: int | None
    channels: int | None
    duration_seconds: float | None
    has_video: bool
    video_codec: str | None

    def as_metadata(self) -> dict[str, Any]:
        """The ``media`` block of metadata.json (CONTRACT §3)."""
        block: dict[str, Any] = {
            "container": self.container,
            "codec": self.codec,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "duration_seconds": _round(self.duration_seconds),
        }
        if self.has_video:
            block["has_video"] = True
            block["video_codec"] = self.video_codec
        return block


@dataclass(frozen=True)
class DecodeReport:
    ok: bool  # ffmpeg decoded to the end and exited 0 (recoverable frame errors are counted, not fatal)
    errors: int  # error lines ffmpeg logged
    decoded_seconds: float | None  # how far the decode got (ffmpeg's progress out_time)
    message: str | None  # first error line, file name only
    #: a PCM WAV whose header disagrees with its bytes: the duration the header declares (None: it
    #: declares none, 0xFFFFFFFF) and whether its sizes were never filled in
    header_seconds: float | None = None
    header_unfinished: bool = False
    #: the decode was stopped at the duration cap (``max_seconds``): longer than allowed
    capped: bool = False
    #: the decode ran past its ``timeout`` and was killed
    timed_out: bool = False

    def as_metadata(self) -> dict[str, Any]:
        block: dict[str, Any] = {
            "ok": self.ok,
            "errors": self.errors,
            "decoded_seconds": _round(self.decoded_seconds),
            "message": self.message,
        }
        if self.header_unfinished:
            block["header_unfinished"] = True
        return block


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _input_args(path: Path) -> list[str]:
    return [
        "-format_whitelist", _INPUT_FORMATS,
        "-protocol_whitelist", "file",
        "-i", f"file:{path.absolute()}",
    ]  # fmt: skip


def _errors_for(path: Path) -> ErrorLines:
    absolute = str(path.absolute())
    return ErrorLines((f"file:{absolute}", absolute, str(path)), path.name)


def _run_probe(cmd: list[str], path: Path, use_stdout: bool) -> tuple[int, str, str]:
    stderr = Capped()
    stdout = Capped()
    child = Child(cmd, stderr_sink=stderr, stdout_sink=stdout if use_stdout else None)
    try:
        if child.wait(_PROBE_TIMEOUT):
            raise CorruptMedia(f"{path.name}: ffmpeg could not read the header within {_PROBE_TIMEOUT:.0f} s")
    finally:
        child.close()
    return child.proc.returncode, stdout.text, stderr.text


def _unreadable(path: Path, stderr: str) -> CorruptMedia:
    errors = _errors_for(path)
    lines = [errors.clean(line) for line in stderr.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("At least one output file")]
    # ffmpeg's verdict ("Error opening input: Invalid data ...") beats the demuxer chatter before it
    verdict = [line for line in lines if line.startswith("Error opening input:")]
    detail = (verdict or lines or ["ffmpeg found no media in it"])[0]
    if "not on whitelist" in stderr:
        detail = "not an audio or video container recarchive accepts"
    return CorruptMedia(f"{path.name}: {detail}")


@dataclass
class _NullRun:
    killed: bool
    returncode: int
    seconds: float | None
    errors: ErrorLines


def _run_to_null(path: Path, output_args: list[str], timeout: float | None) -> _NullRun:
    """Run ffmpeg on ``path`` into the null muxer, following its ``-progress`` output."""
    errors = _errors_for(path)
    last: list[float] = []

    def on_progress(line: str) -> None:
        seconds = parse_progress_time(line)
        if seconds is not None:
            last[:] = [seconds]

    cmd = [
        find_ffmpeg().ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-v", "error",
        "-progress", "pipe:1", *_input_args(path), *output_args, "-f", "null", "-",
    ]  # fmt: skip
    child = Child(cmd, stderr_sink=errors.feed, stdout_sink=on_progress)
    try:
        killed = child.wait(timeout)
    finally:
        child.close()
    return _NullRun(killed, child.proc.returncode, last[0] if last else None, errors)


def _ebml_doctype(path: Path) -> str | None:
    """The Matroska DocType ("webm" / "matroska") from the EBML header in the first bytes."""
    with path.open("rb") as handle:
        head = handle.read(256)
    index = head.find(b"\x42\x82")
    if index < 0 or index + 3 > len(head) or not head[index + 2] & 0x80:
        return None
    size = head[index + 2] & 0x7F
    return head[index + 3 : index + 3 + size].decode("ascii", "replace").rstrip("\x00") or None


def _container(result: ProbeResult, has_video: bool, hint: str | None, path: Path) -> str:
    names = result.format_names
    if "mp4" in names or "mov" in names:
        # ISO-BMFF: the pipeline's extension rule is m4a for audio-only, mp4 when there is video
        return "mp4" if has_video else "m4a"
    if "matroska" in names or "webm" in names:
        if hint in ("webm", "matroska"):
            return hint
        return "matroska" if _ebml_doctype(path) == "matroska" else "webm"
    if hint and hint in names:
        return hint
    return names[0]


def probe_media(path: Path, *, hint: str | None = None) -> MediaInfo:
    """Describe ``path``; ``hint`` is the sniffed extension, used only to pick among the names of one
    ffmpeg demuxer. Raises ``CorruptMedia`` when ffmpeg cannot open it as audio/video at all."""
    if not path.is_file():
        raise FileNotFoundError(f"{path.name}: no such file to probe")
    wav = inspect_pcm_wav(path)
    if wav is not None:  # a plain PCM WAV describes itself in its header: no process to start
        return MediaInfo(container="wav", codec=wav.codec, sample_rate=wav.sample_rate, channels=wav.channels,
                         duration_seconds=wav.seconds, has_video=False, video_codec=None)
    tools = find_ffmpeg()
    result: ProbeResult | None = None
    if tools.ffprobe:
        cmd = [
            tools.ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
            *_input_args(path),
        ]  # fmt: skip
        returncode, out, err = _run_probe(cmd, path, use_stdout=True)
        result = parse_ffprobe_json(out) if returncode == 0 else None
    else:
        cmd = [tools.ffmpeg, "-hide_banner", "-nostdin", *_input_args(path)]
        _returncode, _out, err = _run_probe(cmd, path, use_stdout=False)  # exits 1: no output given
        result = parse_ffmpeg_input(err)
    if result is None:
        raise _unreadable(path, err)
    audio, video = result.audio, result.video
    if audio is None and video is None:
        raise CorruptMedia(f"{path.name}: no audio or video stream")
    duration = result.duration
    if duration is None and audio is not None:
        run = _run_to_null(path, ["-map", "0:a:0", "-c", "copy"], _MEASURE_TIMEOUT)
        duration = run.seconds if run.returncode == 0 and not run.killed else None
    return MediaInfo(
        container=_container(result, video is not None, hint, path),
        codec=audio.codec if audio else None,
        sample_rate=audio.sample_rate if audio else None,
        channels=audio.channels if audio else None,
        duration_seconds=duration,
        has_video=video is not None,
        video_codec=video.codec if video else None,
    )


def check_decode(path: Path, *, timeout: float | None = None, max_seconds: float | None = None) -> DecodeReport:
    """Decode every audio stream to the end, in a streaming ffmpeg, and report what happened.

    No ``-xerror``: stopping at the first damaged frame would hide how much of the recording is
    intact. ffmpeg itself exits non-zero when it cannot open the file or when most frames fail
    (its ``-max_error_rate``), which is what ``ok=False`` means; a few bad frames leave ``ok`` True
    with ``errors`` > 0. A truncated file decodes "fine" but short: compare ``decoded_seconds`` with
    the probed or vendor duration through ``duration_flag``. ``timeout`` bounds the process;
    ``max_seconds`` stops the decode there (``capped``): media beyond the cap is never decoded for hours.
    """
    wav = inspect_pcm_wav(path)
    if wav is not None:  # PCM: decoding is reading; the structure is the whole check
        message = None
        if wav.unfinished:
            message = (f"{path.name}: header never finalised (data size {wav.declared_data:#x}); "
                       f"{wav.available_data} bytes measured")
        elif not wav.complete:
            message = f"{path.name}: data chunk declares {wav.declared_data} bytes, {wav.available_data} present"
        return DecodeReport(
            ok=True,
            errors=0 if wav.complete else 1,
            decoded_seconds=wav.seconds,
            message=message,
            header_seconds=wav.declared_seconds if wav.header_disagrees else None,
            header_unfinished=wav.unfinished,
            capped=max_seconds is not None and wav.seconds > max_seconds,
        )
    cap = ["-t", f"{max_seconds + 1:.3f}"] if max_seconds is not None else []
    run = _run_to_null(path, ["-map", "0:a?", *cap], timeout)
    message = run.errors.first
    capped = max_seconds is not None and run.seconds is not None and run.seconds > max_seconds
    if capped:
        message = f"{path.name}: longer than the {max_seconds:g} s cap; decode stopped there"
    elif run.killed:
        message = f"{path.name}: decode did not finish within {timeout:g} s"
    elif run.returncode != 0 and message is None:
        message = f"{path.name}: ffmpeg exited with status {run.returncode}"
    return DecodeReport(
        ok=run.returncode == 0 and not run.killed,
        errors=run.errors.count,
        decoded_seconds=run.seconds,
        message=message,
        capped=capped,
        timed_out=run.killed and not capped,
    )


def duration_flag(probed: float | None, vendor: float | None, tolerance: float) -> dict[str, Any] | None:
    """None when the two durations agree within ``tolerance`` seconds or either is unknown; else the
    discrepancy to record. ``difference_seconds`` is signed: negative means shorter than the vendor says."""
    if probed is None or vendor is None:
        return None
    difference = probed - vendor
    if abs(difference) <= tolerance:
        return None
    return {
        "vendor_seconds": round(vendor, 2),
        "probed_seconds": round(probed, 2),
        "difference_seconds": round(difference, 2),
    }


def render_to_file(path: Path, fmt: str, bitrate: str, out: Path, *, timeout: float | None = None) -> None:
    """Encode ``path``'s audio (video dropped) as ``fmt`` straight into the file ``out``.

    What the pipeline uses: ffmpeg writing a file runs as fast as the ffmpeg CLI alone, while
    reading its stdout through a pipe measured 6-14 % slower on 2 cores. ``TranscodeFailed`` when
    ffmpeg fails or runs past ``timeout`` seconds; the process is always reaped. ``bitrate`` is
    ignored for FLAC.
    """
    encoder, muxer, takes_bitrate = _rendition_args(fmt)
    cmd = [
        find_ffmpeg().ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-v", "error",
        *_input_args(path), "-vn", "-sn", "-dn", "-c:a", encoder,
        *(["-b:a", bitrate] if takes_bitrate else []), "-f", muxer, "-y", f"file:{out.absolute()}",
    ]  # fmt: skip
    errors = _errors_for(path)
    child = Child(cmd, stderr_sink=errors.feed)
    try:
        killed = child.wait(timeout)
    finally:
        child.close()
    if killed:
        raise TranscodeFailed(f"{fmt} rendition of {path.name} did not finish within {timeout:g} s")
    if child.proc.returncode != 0:
        detail = errors.first or f"exited with status {child.proc.returncode}"
        raise TranscodeFailed(f"{fmt} rendition of {path.name} failed: {detail}")


def _rendition_args(fmt: str) -> tuple[str, str, bool]:
    try:
        return _RENDITION_ARGS[fmt]
    except KeyError:
        raise ConfigError(f"rendition format must be one of mp3, opus, flac, got {fmt!r}") from None


@functools.cache
def ensure_ffmpeg(rendition: str | None = None) -> FFmpeg:
    """Start-up check: find ffmpeg and run it once (``-version``); with ``rendition`` ("mp3", "opus",
    "flac"), also check that its encoder is built in. ``ConfigError`` names what is wrong."""
    tools = find_ffmpeg()
    try:
        done = subprocess.run([tools.ffmpeg, "-hide_banner", "-version"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"ffmpeg at {tools.ffmpeg} cannot run: {exc}") from exc
    if done.returncode != 0 or not done.stdout.startswith(b"ffmpeg version"):
        raise ConfigError(
            f"ffmpeg at {tools.ffmpeg} is broken (`ffmpeg -version` exited {done.returncode}); "
            "install ffmpeg or the imageio-ffmpeg wheel, or set RECARCHIVE_FFMPEG"
        )
    if rendition and rendition != "none":
        if rendition not in _RENDITION_ARGS:
            raise ConfigError(f"transcode.rendition must be none, mp3, opus or flac, got {rendition!r}")
        encoder = _RENDITION_ARGS[rendition][0]
        listing = subprocess.run(
            [tools.ffmpeg, "-hide_banner", "-encoders"], capture_output=True, timeout=30, check=False
        )
        if f" {encoder} ".encode() not in listing.stdout:
            raise ConfigError(f"ffmpeg at {tools.ffmpeg} lacks the {encoder} encoder needed for {rendition}")
    return tools
