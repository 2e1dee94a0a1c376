"""WAV audio without numpy: read 16-bit PCM or 32-bit float WAV, measure it, write mono PCM.

Speech servers write WAV either as 16-bit PCM or, like torchaudio's default for a float
tensor (chatterbox-tts-api saves with `torchaudio.save(..., format="wav")`), as 32-bit IEEE
float (format tag 3, or 0xFFFE "extensible" with the float sub-format). Both are read here;
everything else is refused with a message that says what the file is.
"""

from __future__ import annotations

import math
import struct
from array import array
from dataclasses import dataclass

SILENT_RMS = 0.001  # -60 dBFS: quieter than this over the whole file is silence
PCM, FLOAT, EXTENSIBLE = 1, 3, 0xFFFE


class WavError(ValueError):
    """The bytes are not a WAV file this module reads; the message says why."""


@dataclass(frozen=True)
class Pcm:
    """Mono samples in [-1, 1] at `rate` samples per second."""

    samples: array  # array("f")
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate if self.rate else 0.0

    @property
    def rms(self) -> float:
        if not self.samples:
            return 0.0
        return math.sqrt(math.fsum(x * x for x in self.samples) / len(self.samples))

    @property
    def silent(self) -> bool:
        return self.rms < SILENT_RMS


@dataclass(frozen=True)
class WavFormat:
    tag: int  # PCM or FLOAT (an extensible header is reduced to its sub-format)
    channels: int
    rate: int
    bits: int

    @property
    def described(self) -> str:
        kind = "float" if self.tag == FLOAT else "PCM"
        return f"{self.bits}-bit {kind}, {self.channels} channel(s), {self.rate} Hz"


def _chunks(data: bytes):
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError("not a WAV file (no RIFF/WAVE header)")
    offset = 12
    while offset + 8 <= len(data):
        kind, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        body = data[offset + 8 : offset + 8 + size]
        yield kind, body
        offset += 8 + size + (size & 1)


def _format(body: bytes) -> WavFormat:
    if len(body) < 16:
        raise WavError("the WAV format chunk is too short")
    tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
    if tag == EXTENSIBLE:
        if len(body) < 26:
            raise WavError("the WAV extensible format chunk is too short")
        tag = struct.unpack_from("<H", body, 24)[0]  # the sub-format GUID starts with the tag
    if channels < 1 or rate < 1:
        raise WavError("the WAV header declares no channels or no sample rate")
    return WavFormat(tag, channels, rate, bits)


def read_wav(data: bytes) -> tuple[WavFormat, Pcm]:
    """The file's format and its samples mixed down to mono."""
    fmt: WavFormat | None = None
    for kind, body in _chunks(data):
        if kind == b"fmt ":
            fmt = _format(body)
        elif kind == b"data":
            if fmt is None:
                raise WavError("the WAV data comes before its format")
            return fmt, Pcm(_mono(_samples(fmt, body), fmt.channels), fmt.rate)
    raise WavError("the WAV file has no format or no data chunk")


def _samples(fmt: WavFormat, body: bytes) -> array:
    if fmt.tag == PCM and fmt.bits == 16:
        raw = array("h")
        raw.frombytes(body[: len(body) // 2 * 2])
        return array("f", (x / 32768.0 for x in raw))
    if fmt.tag == FLOAT and fmt.bits == 32:
        values = array("f")
        values.frombytes(body[: len(body) // 4 * 4])
        return values
    raise WavError(f"WAV {fmt.described} is not 16-bit PCM or 32-bit float")


def _mono(samples: array, channels: int) -> array:
    if channels == 1:
        return samples
    usable = len(samples) // channels * channels
    columns = [samples[c:usable:channels] for c in range(channels)]
    return array("f", (sum(frame) / channels for frame in zip(*columns, strict=True)))


def wav_bytes(pcm: Pcm) -> bytes:
    """`pcm` as a mono 16-bit PCM WAV file."""
    ints = array("h", (max(-32768, min(32767, round(x * 32767))) for x in pcm.samples))
    data = ints.tobytes()
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + len(data), b"WAVE",
        b"fmt ", 16, PCM, 1, pcm.rate, pcm.rate * 2, 2, 16,
        b"data", len(data),
    )  # fmt: skip
    return header + data
