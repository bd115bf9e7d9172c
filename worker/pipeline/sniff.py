"""Telling media from error pages by the first bytes, never by URL, header or the vendor's claim.

Vendors serve HTML error pages with status 200, JSON errors, empty bodies, and WAV bytes behind a
``.mp3`` URL. The extension recarchive stores comes from the bytes: RIFF/WAVE, an MP3 frame or ID3 tag,
ISO-BMFF ``ftyp`` (``m4a`` for audio-only brands, ``mp4`` otherwise — the probe refines it), OggS,
fLaC, EBML (WebM). Anything else is refused as ``NotMedia`` and nothing is stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.errors import NotMedia

__all__ = ["CONTENT_TYPES", "SNIFF_BYTES", "Sniffed", "sniff"]

#: how many leading bytes ``sniff`` wants (it decides with fewer when the body is shorter)
SNIFF_BYTES = 4096

CONTENT_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "mp4": "video/mp4",
    "ogg": "audio/ogg",
    "webm": "video/webm",
    "flac": "audio/flac",
}

_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
_MP3_BITRATE_INDEX_BAD = 0x0F
_MP3_SAMPLE_RATE_BAD = 0x03


@dataclass(frozen=True)
class Sniffed:
    ext: str
    content_type: str


def sniff(head: bytes, *, recording_id: str | None = None) -> Sniffed:
    """The container of a body from its first bytes; ``NotMedia`` names what it looked like instead."""
    if not head:
        raise NotMedia("the body is empty", recording_id=recording_id)
    ext = _container(head)
    if ext is None:
        raise NotMedia(f"the body is not media ({_describe(head)})", recording_id=recording_id)
    return Sniffed(ext, CONTENT_TYPES[ext])


def _container(head: bytes) -> str | None:
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        major = head[8:12]
        return "m4a" if major in _AUDIO_BRANDS else "mp4"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if head[:3] == b"ID3" and len(head) >= 10:
        return _after_id3(head)
    if _mp3_frames(head, 0):
        return "mp3"
    return None


def _after_id3(head: bytes) -> str | None:
    """An ID3v2 tag may front MP3 (usual), but also FLAC or AAC; look past it when we can."""
    size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
    end = 10 + size + (10 if head[5] & 0x10 else 0)
    if end + 4 > len(head):
        return "mp3"  # a long tag (cover art): the probe still checks the audio that follows
    rest = head[end:]
    if rest[:4] == b"fLaC":
        return "flac"
    return "mp3" if _mp3_frames(head, end) or rest[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2") else None


def _mp3_header_ok(b1: int, b2: int) -> bool:
    version = (b1 >> 3) & 0x03
    layer = (b1 >> 1) & 0x03
    bitrate = (b2 >> 4) & 0x0F
    rate = (b2 >> 2) & 0x03
    valid_bitrate = bitrate not in (0, _MP3_BITRATE_INDEX_BAD)
    return version != 0x01 and layer != 0 and valid_bitrate and rate != _MP3_SAMPLE_RATE_BAD


def _mp3_frames(head: bytes, start: int) -> bool:
    """A frame sync with a valid header at ``start`` (and, when the head is long enough, a second
    frame sync later), so that random text never passes for MP3."""
    if len(head) < start + 4 or head[start] != 0xFF or (head[start + 1] & 0xE0) != 0xE0:
        return False
    if not _mp3_header_ok(head[start + 1], head[start + 2]):
        return False
    later = head.find(b"\xff", start + 4)
    while 0 <= later < len(head) - 2:
        if (head[later + 1] & 0xE0) == 0xE0 and _mp3_header_ok(head[later + 1], head[later + 2]):
            return True
        later = head.find(b"\xff", later + 1)
    return len(head) < start + 1500  # too short to hold a second frame


def _describe(head: bytes) -> str:
    text = head[:512].lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in text:
        return "an HTML page"
    if text.startswith((b"{", b"[")):
        return "JSON"
    if text.startswith(b"<?xml") or text.startswith(b"<error"):
        return "XML"
    try:
        head[:512].decode("utf-8")
    except UnicodeDecodeError:
        return f"{len(head)}+ bytes of unknown binary data"
    return "text"
