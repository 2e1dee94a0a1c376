"""The voice sample of a training upload: decodable, 5-60 s, not silent; kept as mono WAV.

Voice cloners take a short, clean reference (Chatterbox uses its first 10 s; XTTS wants
6-9 s), so a sample shorter than MIN_SECONDS cannot carry a voice and one longer than
MAX_SECONDS is not a sample. The normalised copy (mono, 16-bit PCM, at SAMPLE_RATE when
PyAV is installed, else at the file's own rate) is what every engine gets.

Decoding: PyAV (FFmpeg in its wheel, no numpy) reads the four accepted formats and
resamples natively. It is a dependency of the package; where it cannot be imported (a
platform without its wheel, installed by hand), WAV samples are still read by
`myspinbot.audio` and other formats are refused with a message that says how to fix it.
"""

from __future__ import annotations

from array import array
from pathlib import Path

from ..audio import Pcm, WavError, read_wav, wav_bytes
from ..errors import InvalidField, UnsupportedMediaType

MIN_SECONDS, MAX_SECONDS = 5.0, 60.0
SAMPLE_RATE = 24_000  # Chatterbox's rate; plenty for a voice reference
NORMALISED = "voice.wav"


def decode(path: Path) -> Pcm:
    """The file's audio, mono; at most a little over MAX_SECONDS of it."""
    try:
        import av  # noqa: F401
    except ImportError:
        return _decode_wav(path)
    return _decode_av(path)


def _decode_wav(path: Path) -> Pcm:
    data = path.read_bytes()
    if data[:4] != b"RIFF":
        raise UnsupportedMediaType(
            "this server reads WAV voice samples only (PyAV, which reads MP3, FLAC and "
            "OGG, is not installed): send the sample as WAV",
            field="voice",
        )
    try:
        return read_wav(data)[1]
    except WavError as exc:
        raise InvalidField(f"the voice sample cannot be decoded: {exc}", field="voice") from None


def _decode_av(path: Path) -> Pcm:
    import av

    limit = int((MAX_SECONDS + 1) * SAMPLE_RATE)
    samples = array("f")
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise InvalidField("the voice file holds no audio stream", field="voice")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    samples.frombytes(bytes(out.planes[0])[: out.samples * 4])
                if len(samples) > limit:
                    break
            for out in resampler.resample(None):
                samples.frombytes(bytes(out.planes[0])[: out.samples * 4])
    except av.FFmpegError as exc:
        raise InvalidField(
            f"the voice sample cannot be decoded ({exc.strerror or type(exc).__name__})",
            field="voice",
        ) from None
    return Pcm(samples, SAMPLE_RATE)


def check(pcm: Pcm) -> None:
    """A 422 naming the rule the sample breaks."""
    if pcm.seconds < MIN_SECONDS:
        raise InvalidField(
            f"the voice sample lasts {pcm.seconds:.1f} s; it must last {MIN_SECONDS:.0f} to "
            f"{MAX_SECONDS:.0f} s (about 10 s of clear speech is best)",
            field="voice",
        )
    if pcm.seconds > MAX_SECONDS:
        raise InvalidField(
            f"the voice sample lasts more than {MAX_SECONDS:.0f} s; it must last "
            f"{MIN_SECONDS:.0f} to {MAX_SECONDS:.0f} s (about 10 s of clear speech is best)",
            field="voice",
        )
    if pcm.silent:
        raise InvalidField(
            "the voice sample is silent (below -60 dBFS): record yourself speaking",
            field="voice",
        )


def normalise(source: Path, folder: Path) -> float:
    """Check `source` and write its mono WAV as `folder/voice.wav`; its length in seconds."""
    pcm = decode(source)
    check(pcm)
    (folder / NORMALISED).write_bytes(wav_bytes(pcm))
    return round(pcm.seconds, 2)
