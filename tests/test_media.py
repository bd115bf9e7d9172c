"""worker.media.inspect against the real ffmpeg binary, on media generated here (lavfi sine/testsrc2, wave)."""

from __future__ import annotations

import struct
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from worker.errors import ConfigError, CorruptMedia, PermanentError
from worker.media import inspect as media
from worker.media._ffmpeg_parse import (
    ErrorLines,
    parse_channels,
    parse_clock,
    parse_ffmpeg_input,
    parse_ffprobe_json,
    parse_progress_time,
)
from worker.media.ffmpeg import find_ffmpeg
from worker.media.inspect import (
    RENDITION_CONTENT_TYPE,
    RENDITION_EXT,
    TranscodeFailed,
    check_decode,
    duration_flag,
    ensure_ffmpeg,
    probe_media,
    render_to_file,
)

FFMPEG = find_ffmpeg().ffmpeg


def _ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-nostdin", "-v", "error", "-y", *args], check=True)


def _sine(seconds: float, rate: int) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={rate}:duration={seconds}"]


def _write_wav(path: Path, seconds: float, rate: int = 8000, channels: int = 1) -> Path:
    frames = int(seconds * rate)
    one = struct.pack("<h", 1000) * channels
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(one * frames)
    return path


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three-second recordings in every container the pipeline sniffs, plus a few oddities."""
    d = tmp_path_factory.mktemp("media")
    _write_wav(d / "a.wav", 3.0)
    _ffmpeg(*_sine(3, 8000), "-c:a", "libmp3lame", "-b:a", "32k", str(d / "a.mp3"))
    _ffmpeg(*_sine(3, 16000), "-ac", "2", "-c:a", "aac", str(d / "a.m4a"))
    _ffmpeg(
        *_sine(3, 44100), "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10:duration=3",
        "-c:a", "aac", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(d / "v.mp4"),
    )  # fmt: skip
    _ffmpeg(*_sine(3, 48000), "-c:a", "libopus", str(d / "a.ogg"))
    _ffmpeg(*_sine(3, 22050), "-c:a", "flac", str(d / "a.flac"))
    _ffmpeg(*_sine(3, 48000), "-ac", "2", "-c:a", "libopus", str(d / "a.webm"))
    # written to a pipe, as a browser's MediaRecorder would: no duration in the header
    with (d / "live.webm").open("wb") as out:
        subprocess.run(
            [FFMPEG, "-hide_banner", "-nostdin", "-v", "error", *_sine(3, 48000), "-c:a", "libopus"]
            + ["-f", "webm", "pipe:1"],
            stdout=out,
            check=True,
        )
    # MP3 with cover art: the picture is a "video" stream that must not make it a video
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x64:duration=1", "-frames:v", "1", str(d / "cover.png"))
    _ffmpeg(
        *_sine(3, 8000), "-i", str(d / "cover.png"), "-map", "0:a", "-map", "1:v", "-c:a", "libmp3lame",
        "-c:v", "png", "-disposition:v", "attached_pic", "-id3v2_version", "3", str(d / "cover.mp3"),
    )  # fmt: skip
    _ffmpeg(*_sine(10, 8000), "-c:a", "libmp3lame", "-b:a", "32k", str(d / "ten.mp3"))
    # a minute of 48 kHz stereo noise: megabytes of FLAC, far more than a pipe buffer holds
    _ffmpeg(
        "-f", "lavfi", "-i", "anoisesrc=sample_rate=48000:duration=60:seed=1", "-ac", "2",
        "-c:a", "pcm_s16le", str(d / "long.wav"),
    )  # fmt: skip
    return d


class _Recorder(subprocess.Popen):  # type: ignore[type-arg]
    started: list[subprocess.Popen] = []  # type: ignore[type-arg]

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        _Recorder.started.append(self)


@pytest.fixture(autouse=True)
def spawned(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[subprocess.Popen]]:  # type: ignore[type-arg]
    """Every process a test starts must be reaped by the time the call returns or raises."""
    _Recorder.started = []
    monkeypatch.setattr(subprocess, "Popen", _Recorder)
    yield _Recorder.started
    for proc in _Recorder.started:
        assert proc.returncode is not None, f"ffmpeg {proc.pid} still running"
        assert not Path(f"/proc/{proc.pid}").exists(), f"ffmpeg {proc.pid} left as a zombie"


# --- probing -------------------------------------------------------------------------------------

CASES = [
    # file, container, codec, sample_rate, channels, video codec
    ("a.wav", "wav", "pcm_s16le", 8000, 1, None),
    ("a.mp3", "mp3", "mp3", 8000, 1, None),
    ("a.m4a", "m4a", "aac", 16000, 2, None),
    ("v.mp4", "mp4", "aac", 44100, 1, "h264"),
    ("a.ogg", "ogg", "opus", 48000, 1, None),
    ("a.flac", "flac", "flac", 22050, 1, None),
    ("a.webm", "webm", "opus", 48000, 2, None),
    ("live.webm", "webm", "opus", 48000, 1, None),
    ("cover.mp3", "mp3", "mp3", 8000, 1, None),
]


@pytest.mark.parametrize(("name", "container", "codec", "rate", "channels", "vcodec"), CASES)
def test_probe_each_container(
    lib: Path, name: str, container: str, codec: str, rate: int, channels: int, vcodec: str | None
) -> None:
    info = probe_media(lib / name)
    assert info.container == container
    assert info.codec == codec
    assert info.sample_rate == rate
    assert info.channels == channels
    assert info.duration_seconds is not None
    assert abs(info.duration_seconds - 3.0) <= 0.1
    assert info.has_video is (vcodec is not None)
    assert info.video_codec == vcodec
    block = info.as_metadata()
    assert block["container"] == container
    assert block["duration_seconds"] == round(info.duration_seconds, 2)
    assert ("has_video" in block) is (vcodec is not None)


def test_video_metadata_block(lib: Path) -> None:
    block = probe_media(lib / "v.mp4").as_metadata()
    assert block["has_video"] is True
    assert block["video_codec"] == "h264"
    assert set(block) == {
        "container", "codec", "sample_rate", "channels", "duration_seconds", "has_video", "video_codec",
    }  # fmt: skip


def test_decode_of_good_files_is_clean(lib: Path) -> None:
    for name in ("a.wav", "a.mp3", "v.mp4", "a.webm", "live.webm"):
        report = check_decode(lib / name)
        assert report.ok, report
        assert report.errors == 0
        assert report.message is None
        assert report.decoded_seconds is not None
        assert abs(report.decoded_seconds - 3.0) <= 0.1
        assert report.as_metadata() == {
            "ok": True, "errors": 0, "decoded_seconds": round(report.decoded_seconds, 2), "message": None,
        }  # fmt: skip


def test_truncated_mp3_is_flagged(lib: Path, tmp_path: Path) -> None:
    data = (lib / "ten.mp3").read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: len(data) // 2])
    info = probe_media(cut)
    report = check_decode(cut)
    assert report.decoded_seconds is not None
    assert report.errors > 0 or report.decoded_seconds < 10.0 - 2.0
    flag = duration_flag(report.decoded_seconds, 10.0, 2.0)
    assert flag is not None
    assert flag["vendor_seconds"] == 10.0
    assert flag["difference_seconds"] < -2.0
    # the header (Xing frame count) still claims the full length: decode is what reveals the cut
    assert duration_flag(report.decoded_seconds, info.duration_seconds, 2.0) is not None


def test_wav_with_lying_header_is_flagged(lib: Path, tmp_path: Path) -> None:
    lying = bytearray((lib / "a.wav").read_bytes())
    claimed = 8000 * 2 * 10  # ten seconds announced, three present
    data_at = lying.find(b"data")
    struct.pack_into("<I", lying, data_at + 4, claimed)
    struct.pack_into("<I", lying, 4, data_at + 8 + claimed - 8)
    path = tmp_path / "lying.wav"
    path.write_bytes(bytes(lying))
    info = probe_media(path)
    # the probe reports what the bytes hold, not what the header claims
    assert info.duration_seconds is not None
    assert abs(info.duration_seconds - 3.0) <= 0.1
    report = check_decode(path)
    assert report.decoded_seconds is not None
    assert abs(report.decoded_seconds - 3.0) <= 0.1
    flag = duration_flag(info.duration_seconds, 10.0, 2.0)  # the vendor believed the header
    assert flag is not None
    assert flag["difference_seconds"] == pytest.approx(-7.0, abs=0.1)


def test_damaged_frames_are_counted_but_recoverable(lib: Path, tmp_path: Path) -> None:
    data = bytearray((lib / "ten.mp3").read_bytes())
    middle = len(data) // 3
    data[middle : middle + 2000] = bytes((i * 37 + 11) % 256 for i in range(2000))
    path = tmp_path / "damaged.mp3"
    path.write_bytes(bytes(data))
    report = check_decode(path)
    assert report.ok
    assert report.errors > 0
    assert report.message is not None
    assert str(tmp_path) not in report.message


@pytest.mark.parametrize(
    "content",
    [
        bytes((i * 131 + 7) % 251 for i in range(50_000)),
        b"<html><body>403 Forbidden</body></html>" * 20,
        b"",
    ],
    ids=["garbage", "html", "empty"],
)
def test_unreadable_bytes_raise_corrupt_media(tmp_path: Path, content: bytes) -> None:
    secret_dir = tmp_path / "work-dir-with-a-long-name"
    secret_dir.mkdir()
    path = secret_dir / "rec.bin"
    path.write_bytes(content)
    with pytest.raises(CorruptMedia) as caught:
        probe_media(path)
    assert caught.value.reason == "corrupt_media"
    assert "rec.bin" in str(caught.value)
    assert str(secret_dir) not in str(caught.value)
    report = check_decode(path)
    assert not report.ok
    assert report.errors > 0
    assert report.message is not None
    assert str(secret_dir) not in report.message


def test_playlist_is_not_followed(lib: Path, tmp_path: Path) -> None:
    """An HLS playlist pointing at a local file opens fine in plain ffmpeg; here it is refused."""
    playlist = tmp_path / "rec.m3u8"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:3.0,\nfile:{lib / 'a.mp3'}\n#EXT-X-ENDLIST\n")
    with pytest.raises(CorruptMedia, match="not an audio or video container"):
        probe_media(playlist)
    assert not check_decode(playlist).ok


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        probe_media(tmp_path / "nope.wav")


def test_decode_timeout_reports_and_reaps(lib: Path) -> None:
    report = check_decode(lib / "ten.mp3", timeout=0.001)  # (PCM WAV needs no ffmpeg: see below)
    assert not report.ok
    assert report.message is not None
    assert "did not finish" in report.message


# --- duration_flag -------------------------------------------------------------------------------


def test_duration_flag() -> None:
    assert duration_flag(181.96, 182.0, 2.0) is None
    assert duration_flag(None, 182.0, 2.0) is None
    assert duration_flag(181.0, None, 2.0) is None
    assert duration_flag(184.0, 182.0, 2.0) is None  # the edge is within tolerance
    assert duration_flag(90.004, 182.0, 2.0) == {
        "vendor_seconds": 182.0, "probed_seconds": 90.0, "difference_seconds": -92.0,
    }  # fmt: skip
    assert duration_flag(10.0, 5.0, 0.0) == {
        "vendor_seconds": 5.0, "probed_seconds": 10.0, "difference_seconds": 5.0,
    }  # fmt: skip


# --- renditions ----------------------------------------------------------------------------------

RENDITION_PROBED = {"mp3": ("mp3", "mp3"), "opus": ("ogg", "opus"), "flac": ("flac", "flac")}


def _consume(path: Path, fmt: str, target: Path, bitrate: str = "32k") -> Path:
    render_to_file(path, fmt, bitrate, target)
    return target


# encoder delay and padding: up to two frames (0.29 s at 8 kHz) of extra silence
RENDITION_TOLERANCE = 0.3


@pytest.mark.parametrize("source", ["a.m4a", "a.wav"])
@pytest.mark.parametrize("fmt", ["mp3", "opus", "flac"])
def test_rendition_decodes_with_same_duration(lib: Path, tmp_path: Path, fmt: str, source: str) -> None:
    original = probe_media(lib / source)
    out = _consume(lib / source, fmt, tmp_path / f"rendition.{RENDITION_EXT[fmt]}")
    info = probe_media(out)
    assert (info.container, info.codec) == RENDITION_PROBED[fmt]
    assert info.has_video is False
    assert duration_flag(info.duration_seconds, original.duration_seconds, RENDITION_TOLERANCE) is None
    report = check_decode(out)
    assert report.ok
    assert report.errors == 0
    assert report.decoded_seconds is not None
    assert duration_flag(report.decoded_seconds, original.duration_seconds, RENDITION_TOLERANCE) is None
    assert RENDITION_CONTENT_TYPE[fmt].startswith("audio/")


def test_video_gets_audio_only_rendition(lib: Path, tmp_path: Path) -> None:
    out = _consume(lib / "v.mp4", "mp3", tmp_path / "rendition.mp3")
    info = probe_media(out)
    assert info.has_video is False
    assert info.codec == "mp3"
    assert duration_flag(info.duration_seconds, 3.0, RENDITION_TOLERANCE) is None


def test_corrupt_input_fails_transcode(tmp_path: Path, spawned: list[subprocess.Popen]) -> None:  # type: ignore[type-arg]
    bad = tmp_path / "bad.wav"
    bad.write_bytes(bytes((i * 131 + 7) % 251 for i in range(20_000)))
    with pytest.raises(TranscodeFailed) as caught:
        _consume(bad, "mp3", tmp_path / "out.mp3")
    assert isinstance(caught.value, PermanentError)
    assert caught.value.reason == "transcode_failed"
    assert str(tmp_path) not in str(caught.value)
    assert len(spawned) == 1
    assert spawned[0].returncode not in (None, 0)


def test_invalid_bitrate_fails_transcode(lib: Path, tmp_path: Path) -> None:
    with pytest.raises(TranscodeFailed, match="opus rendition of a.wav failed"):
        _consume(lib / "a.wav", "opus", tmp_path / "out.opus", bitrate="9999k")


def test_unknown_rendition_format(lib: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        render_to_file(lib / "a.wav", "aac", "32k", tmp_path / "out.aac")


# --- ffmpeg discovery ----------------------------------------------------------------------------


@pytest.fixture
def fresh_ffmpeg_caches() -> Iterator[None]:
    find_ffmpeg.cache_clear()
    ensure_ffmpeg.cache_clear()
    yield
    find_ffmpeg.cache_clear()
    ensure_ffmpeg.cache_clear()


@pytest.mark.usefixtures("fresh_ffmpeg_caches")
def test_ensure_ffmpeg_ok() -> None:
    tools = ensure_ffmpeg()
    assert tools.ffmpeg == FFMPEG
    assert ensure_ffmpeg("opus") == tools
    with pytest.raises(ConfigError, match="rendition"):
        ensure_ffmpeg("aac")


@pytest.mark.usefixtures("fresh_ffmpeg_caches")
def test_ensure_ffmpeg_broken_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\necho 'error while loading shared libraries' >&2\nexit 127\n")
    fake.chmod(0o755)
    monkeypatch.setenv("RECARCHIVE_FFMPEG", str(fake))
    with pytest.raises(ConfigError, match="broken"):
        ensure_ffmpeg()


@pytest.mark.usefixtures("fresh_ffmpeg_caches")
def test_ensure_ffmpeg_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECARCHIVE_FFMPEG", str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match="RECARCHIVE_FFMPEG"):
        ensure_ffmpeg()


def test_media_does_not_import_pydub() -> None:
    """pydub warns on import (audioop) and decodes whole files: worker.media.inspect must stay clear of it."""
    code = "import sys, worker.media.inspect; assert 'pydub' not in sys.modules, 'pydub imported'"
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], cwd=root, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


# --- parsers on captured text --------------------------------------------------------------------

CAPTURED = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'file:/work/x/rec.m4a':
  Metadata:
    major_brand     : M4A
  Duration: 101:02:03.50, start: 0.000000, bitrate: 84 kb/s
  Stream #0:0[0x1](und): Video: mjpeg (Baseline), yuvj420p(pc, bt470bg/unknown/unknown), 300x300, 90k tbn (attached pic)
  Stream #0:1[0x2](eng): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, 5.1(side), fltp, 79 kb/s (default)
    Metadata:
      handler_name    : SoundHandler
At least one output file must be specified
"""


def test_parse_ffmpeg_input() -> None:
    result = parse_ffmpeg_input(CAPTURED)
    assert result is not None
    assert result.format_names == ("mov", "mp4", "m4a", "3gp", "3g2", "mj2")
    assert result.duration == pytest.approx(101 * 3600 + 123.5)
    assert result.video is None  # cover art only
    assert result.audio is not None
    assert (result.audio.codec, result.audio.sample_rate, result.audio.channels) == ("aac", 48000, 6)
    assert parse_ffmpeg_input("Error opening input: Invalid data found\n") is None


@pytest.mark.parametrize(
    ("layout", "count"),
    [("mono", 1), ("stereo", 2), ("5.1(side)", 6), ("7.1.4", 12), ("3 channels", 3), ("quad", 4), ("?", None)],
)
def test_parse_channels(layout: str, count: int | None) -> None:
    assert parse_channels(layout) == count


def test_parse_clock_and_progress() -> None:
    assert parse_clock("00:01:02.25") == 62.25
    assert parse_clock("-00:00:00.50") == -0.5
    assert parse_clock("N/A") is None
    assert parse_progress_time("out_time_us=4901875\n") == pytest.approx(4.901875)
    assert parse_progress_time("out_time_us=N/A") is None
    assert parse_progress_time("out_time=00:00:03.000000") == 3.0
    assert parse_progress_time("progress=end") is None


def test_parse_ffprobe_json() -> None:
    text = """{"streams": [
        {"codec_type": "video", "codec_name": "h264", "disposition": {"attached_pic": 0}},
        {"codec_type": "audio", "codec_name": "opus", "sample_rate": "48000", "channels": 2}],
      "format": {"format_name": "matroska,webm", "duration": "12.345000"}}"""
    result = parse_ffprobe_json(text)
    assert result is not None
    assert result.format_names == ("matroska", "webm")
    assert result.duration == pytest.approx(12.345)
    assert result.video is not None and result.video.codec == "h264"
    assert result.audio is not None and (result.audio.sample_rate, result.audio.channels) == (48000, 2)
    assert parse_ffprobe_json("not json") is None
    assert parse_ffprobe_json('{"format": {"duration": "nan"}}') is None


def test_error_lines_count_repeats_and_hide_paths() -> None:
    lines = ErrorLines(("file:/srv/work/abc/rec.mp3", "/srv/work/abc/rec.mp3"), "rec.mp3", keep=2)
    lines.feed("[mp3float @ 0x55d0] Header missing\n")
    lines.feed("    Last message repeated 4 times\n")
    lines.feed("Error opening input file file:/srv/work/abc/rec.mp3.\n")
    lines.feed("third\n")
    lines.feed("\n")
    assert lines.count == 7
    assert lines.lines == ["Header missing", "Error opening input file rec.mp3."]
    assert lines.first == "Header missing"


def test_probe_uses_ffprobe_json_when_present(lib: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With an ffprobe on hand its JSON is what gets parsed (a stand-in ffprobe prints fixed JSON)."""
    fake = tmp_path / "ffprobe"
    fake.write_text(
        "#!/bin/sh\ncat <<'EOF'\n"
        '{"streams": [{"codec_type": "audio", "codec_name": "pcm_mulaw", "sample_rate": "8000",'
        ' "channels": 1}], "format": {"format_name": "wav", "duration": "2.5"}}\nEOF\n'
    )
    fake.chmod(0o755)
    monkeypatch.setattr(media, "find_ffmpeg", lambda: find_ffmpeg().__class__(FFMPEG, str(fake)))
    info = probe_media(lib / "a.mp3")  # (a PCM WAV is described from its header, without any probe)
    assert (info.container, info.codec, info.duration_seconds) == ("wav", "pcm_mulaw", 2.5)


# --- the PCM WAV decode check without ffmpeg ----------------------------------------------------


def test_pcm_wav_check_agrees_with_ffmpeg(lib: Path, tmp_path: Path) -> None:
    """The structural check of a PCM WAV reports what a full ffmpeg decode reports."""
    from worker.media._wavcheck import inspect_pcm_wav
    from worker.media.inspect import _run_to_null

    for name in ("a.wav", "long.wav"):
        fast = check_decode(lib / name)
        slow = _run_to_null(lib / name, ["-map", "0:a?"], None)
        assert inspect_pcm_wav(lib / name) is not None
        assert fast.ok and fast.errors == 0
        assert fast.decoded_seconds == pytest.approx(slow.seconds, abs=0.05)
    cut = tmp_path / "cut.wav"
    data = (lib / "long.wav").read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    fast = check_decode(cut)
    slow = _run_to_null(cut, ["-map", "0:a?"], None)
    assert fast.errors == 1 and "declares" in (fast.message or "")
    assert fast.decoded_seconds == pytest.approx(slow.seconds, abs=0.05)
    mp3 = lib / "a.mp3"
    assert inspect_pcm_wav(mp3) is None


def test_pcm_wav_probe_agrees_with_ffmpeg(lib: Path, tmp_path: Path) -> None:
    """The header-only description of a PCM WAV equals ffmpeg's."""
    import worker.media.inspect as media

    for name in ("a.wav", "long.wav"):
        fast = probe_media(lib / name)
        original = media.inspect_pcm_wav
        try:
            media.inspect_pcm_wav = lambda path: None  # type: ignore[assignment]
            slow = probe_media(lib / name)
        finally:
            media.inspect_pcm_wav = original
        assert (fast.container, fast.codec, fast.sample_rate, fast.channels, fast.has_video) == \
            (slow.container, slow.codec, slow.sample_rate, slow.channels, slow.has_video)
        assert fast.duration_seconds == pytest.approx(slow.duration_seconds, abs=0.05)


# --- headers that lie, and the [limits] bounds -----------------------------------------------------


def _unfinished(lib: Path, tmp_path: Path, size_field: int) -> Path:
    """a.wav (3 s) as a recorder killed mid-call leaves it: RIFF and data sizes never filled in."""
    data = bytearray((lib / "a.wav").read_bytes())
    at = data.find(b"data")
    struct.pack_into("<I", data, 4, size_field)
    struct.pack_into("<I", data, at + 4, size_field)
    path = tmp_path / f"unfinished-{size_field:x}.wav"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("size_field", [0, 0xFFFFFFFF])
def test_a_wav_never_finalised_is_measured_by_its_bytes_and_flagged(lib: Path, tmp_path: Path,
                                                                    size_field: int) -> None:
    from config.settings import LimitsSettings
    from worker.media.checks import inspect_recording

    path = _unfinished(lib, tmp_path, size_field)
    info = probe_media(path)
    assert info.duration_seconds == pytest.approx(3.0, abs=0.01)  # not 0.0
    report = check_decode(path)
    assert report.ok and report.errors == 0 and report.header_unfinished
    assert report.decoded_seconds == pytest.approx(3.0, abs=0.01)
    checked = inspect_recording(path, hint="wav", vendor_seconds=3.0, tolerance=2.0, limits=LimitsSettings())
    assert checked.media["duration_seconds"] == pytest.approx(3.0, abs=0.01)
    flag = checked.integrity["header_duration_mismatch"]
    assert flag["header_unfinished"] is True and flag["probed_seconds"] == pytest.approx(3.0, abs=0.01)
    assert flag["header_seconds"] == (0.0 if size_field == 0 else None)
    assert "duration_mismatch" not in checked.integrity  # the vendor's 3 s agrees with the bytes
    assert checked.integrity["decode"]["header_unfinished"] is True


def test_an_empty_finished_wav_is_not_flagged_as_unfinished(tmp_path: Path) -> None:
    from worker.media._wavcheck import inspect_pcm_wav

    wav = inspect_pcm_wav(_write_wav(tmp_path / "empty.wav", 0.0))
    assert wav is not None and not wav.unfinished and wav.seconds == 0.0


def test_a_header_that_claims_more_than_the_bytes_is_flagged(lib: Path, tmp_path: Path) -> None:
    from worker.media.checks import inspect_recording

    lying = bytearray((lib / "a.wav").read_bytes())
    at = lying.find(b"data")
    struct.pack_into("<I", lying, at + 4, 8000 * 2 * 10)  # ten seconds announced, three present
    path = tmp_path / "claims-ten.wav"
    path.write_bytes(bytes(lying))
    checked = inspect_recording(path, hint="wav", vendor_seconds=None, tolerance=2.0)
    flag = checked.integrity["header_duration_mismatch"]
    assert flag["difference_seconds"] == pytest.approx(-7.0, abs=0.05)
    assert checked.integrity["decode"]["errors"] == 1


@pytest.mark.parametrize("name", ["a.wav", "a.mp3"])
def test_media_longer_than_the_cap_is_refused_before_it_is_decoded(lib: Path, name: str) -> None:
    from datetime import timedelta

    from config.settings import LimitsSettings
    from worker.errors import TooLarge
    from worker.media.checks import inspect_recording

    limits = LimitsSettings(max_duration=timedelta(seconds=2))
    with pytest.raises(TooLarge, match="max_duration"):
        inspect_recording(lib / name, hint=name[-3:], vendor_seconds=None, tolerance=2.0, limits=limits)


def test_a_decode_cap_stops_a_header_without_duration(lib: Path) -> None:
    """live.webm declares no duration: the probe cannot refuse it, the capped decode does."""
    report = check_decode(lib / "live.webm", max_seconds=1.0)
    assert report.capped and "cap" in (report.message or "")
    assert report.decoded_seconds is not None and report.decoded_seconds < 2.5


def test_a_decode_past_its_timeout_is_refused(lib: Path) -> None:
    from datetime import timedelta

    from config.settings import LimitsSettings
    from worker.errors import TooLarge
    from worker.media.checks import inspect_recording

    limits = LimitsSettings(decode_timeout=timedelta(milliseconds=1))
    with pytest.raises(TooLarge, match="decode_timeout"):
        inspect_recording(lib / "ten.mp3", hint="mp3", vendor_seconds=None, tolerance=2.0, limits=limits)


def test_a_rendition_past_its_timeout_fails_and_is_reaped(lib: Path, tmp_path: Path,
                                                          spawned: list[subprocess.Popen]) -> None:  # type: ignore[type-arg]
    with pytest.raises(TranscodeFailed, match="did not finish"):
        render_to_file(lib / "long.wav", "flac", "32k", tmp_path / "out.flac", timeout=0.001)
    assert all(proc.poll() is not None for proc in spawned)
