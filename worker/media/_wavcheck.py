"""The decode check for PCM WAV, without ffmpeg.

Decoding PCM is reading it: every byte pattern is a valid sample, so the only way a PCM WAV can fail
to decode is structurally — a missing ``fmt `` or ``data`` chunk, a data chunk cut short, a partial
last frame. Walking the chunk headers (a few seeks, no sample data read) proves exactly what a full
ffmpeg decode would, at a fraction of the cost on the recordings call platforms serve most. Anything
unusual (RF64, compressed WAV, a malformed chunk list) returns ``None`` and the caller decodes with
ffmpeg as for every other container.
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


@dataclass(frozen=True)
class PcmWav:
    byte_rate: int
    block_align: int
    declared_data: int
    available_data: int
    sample_rate: int
    channels: int
    codec: str  # ffmpeg's name for it: pcm_s16le, pcm_f32le, pcm_mulaw, ...

    @property
    def seconds(self) -> float:
        whole = self.available_data - self.available_data % self.block_align
        return whole / self.byte_rate

    @property
    def complete(self) -> bool:
        return self.available_data >= self.declared_data and self.declared_data % self.block_align == 0


def inspect_pcm_wav(path: Path) -> PcmWav | None:
    """The PCM layout of ``path``, or None when it is not a plain PCM WAV we can vouch for."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        header = handle.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return None
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
                if fmt is None or length == 0xFFFFFFFF:
                    return None
                return PcmWav(fmt.byte_rate, fmt.block_align, length, max(0, min(length, size - body)),
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
