"""Small real media files written without PyAV or torch: MP4, FLAC, safetensors; WAV read back.

- MP4: an ISO BMFF file (ftyp, mdat, moov) with one Motion JPEG video track (`mp4v` sample
  entry, esds object type 0x6C), one Pillow JPEG per frame. ffmpeg/PyAV decode it; ComfyUI's
  SaveVideo writes H.264 instead, so the codec differs, the container and name do not.
- FLAC: 16-bit, verbatim subframes (valid FLAC, not compressed).
- safetensors: the real format (little-endian u64 header length, JSON header, raw data).
"""

from __future__ import annotations

import io
import json
import struct
import wave
from collections.abc import Sequence
from fractions import Fraction

from PIL import Image

_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def _box(kind: bytes, *parts: bytes) -> bytes:
    payload = b"".join(parts)
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full_box(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *parts)


def _descriptor(tag: int, payload: bytes) -> bytes:
    return bytes([tag, len(payload)]) + payload


def write_mp4(path: str, frames: Sequence[Image.Image], fps: float) -> None:
    """Write `frames` (same size) as an MP4 whose video track is Motion JPEG."""
    samples = []
    for frame in frames:
        buffer = io.BytesIO()
        frame.convert("RGB").save(buffer, format="JPEG", quality=85)
        samples.append(buffer.getvalue())
    width, height = frames[0].size
    rate = Fraction(fps).limit_denominator(1001)
    timescale, delta = rate.numerator * 1000, rate.denominator * 1000
    duration = delta * len(samples)
    movie_duration = duration * 1000 // timescale

    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 512), b"isomiso2mp41")
    mdat = _box(b"mdat", *samples)
    es = _descriptor(
        3,
        struct.pack(">HB", 1, 0)
        + _descriptor(4, bytes([0x6C, 0x11]) + b"\x00\x00\x00" + struct.pack(">II", 0, 0))
        + _descriptor(6, b"\x02"),
    )
    sample_entry = _box(
        b"mp4v",
        b"\x00" * 6 + struct.pack(">H", 1) + b"\x00" * 16,
        struct.pack(">HHIIIH", width, height, 0x00480000, 0x00480000, 0, 1),
        b"\x00" * 32 + struct.pack(">Hh", 0x18, -1),
        _full_box(b"esds", 0, 0, es),
    )
    stbl = _box(
        b"stbl",
        _full_box(b"stsd", 0, 0, struct.pack(">I", 1), sample_entry),
        _full_box(b"stts", 0, 0, struct.pack(">III", 1, len(samples), delta)),
        _full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, len(samples), 1)),
        _full_box(
            b"stsz",
            0,
            0,
            struct.pack(">II", 0, len(samples)),
            *(struct.pack(">I", len(s)) for s in samples),
        ),
        _full_box(b"stco", 0, 0, struct.pack(">II", 1, len(ftyp) + 8)),
    )
    minf = _box(
        b"minf",
        _full_box(b"vmhd", 0, 1, b"\x00" * 8),
        _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1))),
        stbl,
    )
    mdia = _box(
        b"mdia",
        _full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, duration, 0x55C4, 0)),
        _full_box(b"hdlr", 0, 0, b"\x00" * 4 + b"vide" + b"\x00" * 12 + b"VideoHandler\x00"),
        minf,
    )
    tkhd = _full_box(
        b"tkhd",
        0,
        3,
        struct.pack(">IIIII", 0, 0, 1, 0, movie_duration),
        b"\x00" * 8 + struct.pack(">hhhH", 0, 0, 0, 0),
        _MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )
    mvhd = _full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIIIIH", 0, 0, 1000, movie_duration, 0x00010000, 0x0100),
        b"\x00" * 10,
        _MATRIX,
        b"\x00" * 24 + struct.pack(">I", 2),
    )
    moov = _box(b"moov", mvhd, _box(b"trak", tkhd, mdia))
    with open(path, "wb") as out:
        out.write(ftyp + mdat + moov)


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def _utf8_number(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    payload = []
    while True:
        payload.insert(0, 0x80 | (n & 0x3F))
        n >>= 6
        lead_bits = 6 - len(payload)  # bits left for the value in the leading byte
        if n < (1 << lead_bits):
            lead = (0xFF << (7 - len(payload))) & 0xFF
            return bytes([lead | n, *payload])


def write_flac(path: str, channels: Sequence[Sequence[float]], sample_rate: int) -> None:
    """Write float samples (-1..1 per channel) as a 16-bit FLAC file."""
    count = len(channels[0])
    pcm = [[max(-32768, min(32767, round(s * 32767))) for s in ch] for ch in channels]
    block = max(16, min(4096, count))
    info = struct.pack(">HH", block, block) + b"\x00" * 6
    packed = (sample_rate << 44) | ((len(channels) - 1) << 41) | (15 << 36) | count
    info += packed.to_bytes(8, "big") + b"\x00" * 16
    out = bytearray(b"fLaC" + bytes([0x80, 0, 0, len(info)]) + info)
    for number, start in enumerate(range(0, max(count, 1), block)):
        chunk = [ch[start : start + block] for ch in pcm]
        size = len(chunk[0]) or 1
        header = bytearray([0xFF, 0xF8, 0x70, ((len(channels) - 1) << 4) | 0x08])
        header += _utf8_number(number) + struct.pack(">H", size - 1)
        header.append(_crc8(bytes(header)))
        frame = bytearray(header)
        for samples in chunk:
            frame.append(0x02)  # verbatim subframe
            frame += struct.pack(f">{size}h", *(samples or [0]))
        frame += struct.pack(">H", _crc16(bytes(frame)))
        out += frame
    with open(path, "wb") as f:
        f.write(out)


def read_wav(path: str) -> tuple[list[list[float]], int]:
    """PCM WAV as float channels and a sample rate (what LoadAudio hands on)."""
    with wave.open(path, "rb") as wav:
        width, nchannels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
        raw = wav.readframes(wav.getnframes())
    if width == 1:
        values = [(b - 128) / 128 for b in raw]
    else:
        scale = float(1 << (8 * width - 1))
        values = [
            int.from_bytes(raw[i : i + width], "little", signed=True) / scale
            for i in range(0, len(raw), width)
        ]
    return [values[c::nchannels] for c in range(nchannels)], rate


def write_safetensors(
    path: str, tensors: dict[str, tuple[str, list[int], bytes]], meta: dict
) -> None:
    """Tensors as (dtype, shape, raw little-endian bytes) into a safetensors file."""
    header: dict = {"__metadata__": {k: str(v) for k, v in meta.items()}}
    offset = 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {
            "dtype": dtype,
            "shape": shape,
            "data_offsets": [offset, offset + len(data)],
        }
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)) + encoded)
        for _, _, data in tensors.values():
            f.write(data)
