"""The decode check for PCM WAV, without ffmpeg.

Decoding PCM is reading it: every byte pattern is a valid sample, so the only way a PCM WAV can fail
to decode is structurally — a missing ``fmt `` or ``data`` chunk, a data chunk cut short, a partial
last frame. Walking the chunk headers (a few seeks, no sample data read) proves exactly what a full
ffmpeg decode would, at a fraction of the cost on the recordings call platforms serve most. Anything
unusual (RF64, compressed WAV, a malformed chunk list) returns ``None`` and the caller decodes with
ffmpeg as for every other container.

A WAV whose writer never went back to fill in its sizes (a recorder killed mid-call, a streaming
writer: RIFF and ``data`` sizes 0 or 0xFFFFFFFF) is measured by its bytes: everything after the
``data`` header is taken as samples, and ``unfinished`` says the header disagreed. Without that the
header's "0 bytes" would archive three seconds of speech as a recording of 0.0 s.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PcmWav", "inspect_pcm_wav"]

#: WAVE_FORMAT_PCM, IEEE_FLOAT, ALAW, MULAW: formats whose decoding cannot fail on content
_PLAIN_FORMATS = {0x0001, 0x0003, 0x0006, 0x0007}
_EXTENSIBLE = 0xFFFE
_MAX_CHUNKS = 1000
#: sizes a writer leaves in a header it never finalised (0: not yet known; all ones: streaming)
_UNSET = (0, 0xFFFFFFFF)


@dataclass(frozen=True)
class PcmWav:
    byte_rate: int
    block_align: int
    declared_data: int
    available_data: int
    sample_rate: int
    channels: int
    codec: str  # ffmpeg's name for it: pcm_s16le, pcm_f32le, pcm_mulaw, ...
    #: the header's sizes were never filled in (0 / 0xFFFFFFFF): the bytes were measured instead
    unfinished: bool = False

    @property
    def seconds(self) -> float:
        """What the bytes hold (whole frames)."""
        whole = self.available_data - self.available_data % self.block_align
        return whole / self.byte_rate

    @property
    def declared_seconds(self) -> float | None:
        """What the header claims; None when it claims nothing usable (0xFFFFFFFF)."""
        if self.declared_data == 0xFFFFFFFF:
            return None
        return self.declared_data / self.byte_rate

    @property
    def header_disagrees(self) -> bool:
        return self.unfinished or self.declared_data != self.available_data

    @property
    def complete(self) -> bool:
        if self.unfinished:
            return self.available_data % self.block_align == 0
        return self.available_data >= self.declared_data and self.declared_data % self.block_align == 0


def inspect_pcm_wav(path: Path) -> PcmWav | None:
    """The PCM layout of ``path``, or None when it is not a plain PCM WAV we can vouch for."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        header = handle.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return None
        riff_unset = struct.unpack("<I", header[4:8])[0] in _UNSET
        offset = 12
        fmt: _Format | None = None
        for _ in range(_MAX_CHUNKS):
            handle.seek(offset)
            chunk = handle.read(8)
            if len(chunk) < 8:
                return None
            name, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            body = offset + 8
            if name == b"fmt ":
                fmt = _format(handle.read(min(length, 40)))
                if fmt is None:
                    return None
            elif name == b"data":
                if fmt is None:
                    return None
                present = max(0, size - body)
                if length in _UNSET and (present or riff_unset):  # never finalised: the bytes tell
                    return PcmWav(fmt.byte_rate, fmt.block_align, length, present,
                                  fmt.sample_rate, fmt.channels, fmt.codec, unfinished=True)
                return PcmWav(fmt.byte_rate, fmt.block_align, length, min(length, present),
                              fmt.sample_rate, fmt.channels, fmt.codec)
            offset = body + length + (length & 1)
            if offset > size:
                return None
    return None


@dataclass(frozen=True)
class _Format:
    byte_rate: int
    block_align: int
    sample_rate: int
    channels: int
    codec: str


def _format(data: bytes) -> _Format | None:
    if len(data) < 16:
        return None
    tag, channels, rate, byte_rate, block_align, bits = struct.unpack("<HHIIHH", data[:16])
    if tag == _EXTENSIBLE:
        if len(data) < 26:
            return None
        tag = struct.unpack("<H", data[24:26])[0]  # first two bytes of the sub-format GUID
    if tag not in _PLAIN_FORMATS or not channels or not rate or not block_align or not byte_rate:
        return None
    if byte_rate != rate * block_align:
        return None  # an inconsistent header: let ffmpeg judge it
    codec = _codec(tag, bits)
    return None if codec is None else _Format(byte_rate, block_align, rate, channels, codec)


def _codec(tag: int, bits: int) -> str | None:
    if tag == 0x0006:
        return "pcm_alaw"
    if tag == 0x0007:
        return "pcm_mulaw"
    if tag == 0x0003:
        return {32: "pcm_f32le", 64: "pcm_f64le"}.get(bits)
    return {8: "pcm_u8", 16: "pcm_s16le", 24: "pcm_s24le", 32: "pcm_s32le"}.get(bits)
