"""A small, real training upload (multipart: two PNG photos and a WAV voice).

The voice is 5.5 s of a 400 Hz square wave: the shortest sample the server accepts
(5-60 s, not silent).
"""

from __future__ import annotations

import io
import os
import struct
import wave
from functools import cache

from PIL import Image


@cache
def _files() -> tuple[bytes, bytes]:
    png = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 80, 40)).save(png, format="PNG")
    wav = io.BytesIO()
    with wave.open(wav, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        period = struct.pack("<20h", *([8000] * 10 + [-8000] * 10))  # 400 Hz at 8 kHz
        out.writeframes(period * (8000 * 55 // 10 // 20))
    return png.getvalue(), wav.getvalue()


def train_body(name: str) -> tuple[bytes, str]:
    """(body, content type) of a POST /api/train."""
    png, wav = _files()
    boundary = os.urandom(12).hex()
    parts = []
    for field, filename, kind, data in (
        ("images", "a.png", "image/png", png),
        ("images", "b.png", "image/png", png),
        ("voice", "voice.wav", "audio/wav", wav),
    ):
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{filename}"\r\nContent-Type: {kind}\r\n\r\n'.encode()
            + data
            + b"\r\n"
        )
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\n{name}\r\n'.encode()
    )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"
