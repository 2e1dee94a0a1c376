"""Small real media files written without torch: FLAC and safetensors (the clips, H.264 +
AAC, are written with PyAV in `audio_video.py`).

- FLAC: 16-bit, verbatim subframes (valid FLAC, not compressed).
- safetensors: the real format (little-endian u64 header length, JSON header, raw data).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence


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
