"""POST /api/train checks the voice sample (decodable, 5-60 s, not silent) and keeps it as a
mono WAV; the training job keeps `voice.wav` and a `photo.jpg` thumbnail as artifacts."""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from support import Server, assert_api_error, job_files, png_bytes, running_server, wav_bytes

from myspinbot.audio import PCM, read_wav


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("voice") / "data") as live:
        yield live


def files(voice: bytes, name: str = "me.wav") -> list:
    photo = png_bytes(size=(640, 480), color=(200, 120, 40))
    return [("images", ("face.png", photo, "image/png")), ("voice", (name, voice, "audio/wav"))]


def flac(seconds: float, rate: int = 22050) -> bytes:
    """A real stereo FLAC tone, written with PyAV (decoded with PyAV)."""
    import av

    count = int(seconds * rate)
    tone = [round(9000 * math.sin(2 * math.pi * 330 * n / rate)) for n in range(count)]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="flac") as out:
        stream = out.add_stream("flac", rate=rate, layout="stereo")
        frame = av.AudioFrame(format="s16", layout="stereo", samples=count, align=1)
        frame.planes[0].update(struct.pack(f"<{2 * count}h", *[x for v in tone for x in (v, v)]))
        frame.sample_rate, frame.pts = rate, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return buffer.getvalue()


RULES = [
    ("too short", wav_bytes(seconds=2.0), "lasts 2.0 s; it must last 5 to 60 s"),
    ("too long", wav_bytes(seconds=61, rate=2000), "lasts more than 60 s"),
    ("silent", wav_bytes(seconds=6, level=0), "is silent"),
    ("undecodable", b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunkjunk" * 8, "cannot be decoded"),
]


@pytest.mark.parametrize(("case", "voice", "says"), RULES, ids=[r[0] for r in RULES])
def test_a_sample_that_breaks_a_rule_is_a_422_naming_it_and_leaves_nothing(
    server: Server, http: httpx.Client, case: str, voice: bytes, says: str
) -> None:
    jobs_before = http.get("/api/jobs").json()["jobs"]
    files_before = job_files(server.data_dir)
    error = assert_api_error(http.post("/api/train", files=files(voice)), 422, "invalid_field")
    assert error["field"] == "voice" and says in error["message"], error
    assert http.get("/api/jobs").json()["jobs"] == jobs_before
    assert job_files(server.data_dir) - files_before <= {"uploads/.staging"}


def finished(http: httpx.Client, job_id: str) -> dict:
    from support import wait_until

    return wait_until(
        lambda: (lambda j: j if j["state"] == "completed" else None)(
            http.get(f"/api/status/{job_id}").json()
        ),
        30,
        "the training job",
    )


@pytest.mark.parametrize("kind", ["wav", "flac"])
def test_a_good_sample_is_kept_as_mono_pcm_and_the_persona_has_voice_and_photo(
    server: Server, http: httpx.Client, kind: str
) -> None:
    voice = wav_bytes(seconds=6.5, rate=8000) if kind == "wav" else flac(6.5)
    job = http.post("/api/train", files=files(voice, f"me.{kind}")).json()
    assert job["input"]["voice"]["seconds"] == pytest.approx(6.5, abs=0.05)
    done = finished(http, job["id"])
    names = [a["name"] for a in done["artifacts"]]
    kept = http.get(f"/api/jobs/{job['id']}/artifacts/voice.wav")
    photo = http.get(f"/api/jobs/{job['id']}/artifacts/photo.jpg")
    assert {"voice.wav", "photo.jpg"} <= set(names)
    assert kept.headers["content-type"] == "audio/wav"
    fmt, pcm = read_wav(kept.content)
    assert (fmt.tag, fmt.bits, fmt.channels, fmt.rate) == (PCM, 16, 1, 24_000)
    assert pcm.seconds == pytest.approx(6.5, abs=0.05) and not pcm.silent
    with Image.open(io.BytesIO(photo.content)) as thumbnail:
        assert (thumbnail.format, thumbnail.size) == ("JPEG", (256, 192))
    stored = Path(server.data_dir) / "uploads" / job["id"]
    assert sorted(p.name for p in stored.iterdir() if p.is_file()) == ["voice.wav"]


def test_without_pyav_wav_is_still_read_and_other_formats_are_refused_by_name(
    tmp_path: Path,
) -> None:
    from myspinbot.api.voice_sample import _decode_wav
    from myspinbot.errors import UnsupportedMediaType

    good, other = tmp_path / "v.wav", tmp_path / "v.flac"
    good.write_bytes(wav_bytes(seconds=5.5))
    other.write_bytes(flac(6))
    assert _decode_wav(good).seconds == pytest.approx(5.5)
    with pytest.raises(UnsupportedMediaType, match="send the sample as WAV"):
        _decode_wav(other)
