"""The persona speaks: train with a voice, then generate a clip whose sound is the voice engine's.

ComfyUI, Ollama and the speech server are stand-ins run as processes on loopback
(tests/standins); MySpinBot runs for real.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from media_probe import probe
from speaking_standins import WRITER_MODEL, persona_comfyui, speaking_engines
from standins import voice_standin
from standins.voice import pitch_of, seconds_for
from support import train_files, wait_until, wav_bytes

from myspinbot.audio import read_wav

from .test_jobs_standin import engine_server, finished

SHOT = "a woman waves at the camera on a sunny beach, slow dolly in"
LINE = "Hi everyone, this is me on the beach today"  # 9 words: 3.1 s from the stand-in


def submit(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """`myspinbot submit …` as a person runs it (no MYSPINBOT_ settings inherited)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYSPINBOT_")}
    command = [sys.executable, "-m", "myspinbot.cli", "submit", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def train(http: httpx.Client, existing: str | None = None) -> dict[str, Any]:
    """A completed training job (`existing`, else a new one); its ComfyUI lists the LoRA it
    saved (`output/loras`, as the real-engines set-up asks)."""
    if existing is None:
        existing = http.post("/api/train", files=train_files(2), data={"name": "alex"}).json()["id"]
    done = finished(http, existing)
    assert done["state"] == "completed", done
    return done


def clip_of(http: httpx.Client, job: dict[str, Any], folder: Path) -> Path:
    name = next(a["name"] for a in job["artifacts"] if a["name"].endswith(".mp4"))
    path = folder / name
    path.write_bytes(http.get(f"/api/jobs/{job['id']}/artifacts/{name}").content)
    return path


@pytest.fixture()
def comfy(tmp_path: Path):
    with persona_comfyui(tmp_path) as server:
        yield server


def test_a_trained_persona_speaks_ollamas_line_in_its_own_voice_on_the_clip(tmp_path: Path) -> None:
    with speaking_engines(tmp_path, shot=SHOT, line=LINE) as engines:
        more = {**engines.settings(), "MYSPINBOT_CLIP_FRAMES": "81"}
        with engine_server(tmp_path, engines.comfy.url, **more) as server, server.client() as http:
            trained = train(http)
            names = [a["name"] for a in trained["artifacts"]]
            sample = http.get(f"/api/jobs/{trained['id']}/artifacts/voice.wav").content
            photo = http.get(f"/api/jobs/{trained['id']}/artifacts/photo.jpg")
            job = http.post("/api/generate", json={"prompt": "me", "lora": trained["id"]}).json()
            done = finished(http, job["id"])
            assert done["state"] == "completed", done["error"]
            clip = probe(clip_of(http, done, tmp_path))
            spoken = http.get(f"/api/jobs/{job['id']}/artifacts/line.wav").content
        calls, speech = engines.ollama.state()["calls"], engines.voice.state()
    assert {"voice.wav", "photo.jpg"} <= set(names)
    assert photo.headers["content-type"] == "image/jpeg" and photo.content[:2] == b"\xff\xd8"
    assert (done["result"]["line"], done["result"]["voice"]) == (LINE, "spoken")
    assert done["result"]["prompt"] == SHOT  # the checked shot, never the raw JSON
    assert done["result"]["writer"] == WRITER_MODEL
    assert [(c["keep_alive"], c["think"]) for c in calls] == [(0, False)]
    assert speech["voices"] == [f"myspinbot-{trained['id']}"]
    assert speech["requests"][-1]["spoken_with"] == f"myspinbot-{trained['id']}"
    assert speech["requests"][-1]["pitch"] == pitch_of(sample)  # the persona's own voice
    line_seconds = read_wav(spoken)[1].seconds
    assert line_seconds == pytest.approx(seconds_for(LINE), abs=0.01)
    assert (clip.video_codecs, clip.frames, clip.audio_codecs) == (["h264"], 81, ["aac"])
    assert clip.audio_seconds == pytest.approx(line_seconds, abs=1 / 16)  # within one frame


def test_without_a_voice_engine_the_clip_is_silent_and_says_so(comfy: Any, tmp_path: Path) -> None:
    with engine_server(tmp_path, comfy.url) as server, server.client() as http:
        job = http.post("/api/generate", json={"prompt": "me", "say": "Hello there"}).json()
        done = finished(http, job["id"])
        clip = probe(clip_of(http, done, tmp_path))
    assert done["state"] == "completed", done
    assert (done["result"]["line"], done["result"]["voice"]) == ("Hello there", "no_engine")
    assert clip.audio_codecs == []


def test_no_line_means_no_speech_even_with_a_voice_engine(comfy: Any, tmp_path: Path) -> None:
    with voice_standin(tmp_path / "v") as voice:
        more = {"MYSPINBOT_VOICE_URL": voice.url}
        with engine_server(tmp_path, comfy.url, **more) as server, server.client() as http:
            done = finished(http, http.post("/api/generate", json={"prompt": "me"}).json()["id"])
        assert voice.state()["requests"] == []
    assert (done["state"], done["result"]["line"], done["result"]["voice"]) == (
        "completed",
        None,
        "none",
    )


def test_a_voice_engine_answering_5xx_is_retried_and_garbage_fails_the_job(
    comfy: Any, tmp_path: Path
) -> None:
    with voice_standin(tmp_path / "v") as voice:
        more = {"MYSPINBOT_VOICE_URL": voice.url}
        with engine_server(tmp_path, comfy.url, **more) as server, server.client() as http:
            voice.fault("http", status=503)
            body = {"prompt": "me", "say": "Hi, it's me"}
            retried = finished(http, http.post("/api/generate", json=body).json()["id"])
            voice.fault("garbage")
            failed = finished(http, http.post("/api/generate", json=body).json()["id"])
    assert retried["state"] == "completed" and retried["attempt"] >= 2, retried
    assert retried["result"]["voice"] == "spoken"
    assert failed["state"] == "failed", failed
    assert failed["error"]["code"] == "engine_answer_invalid"
    assert "not audio" in failed["error"]["message"]


def test_a_line_longer_than_the_clip_fails_instead_of_being_cut(comfy: Any, tmp_path: Path) -> None:
    with voice_standin(tmp_path / "v") as voice:
        more = {"MYSPINBOT_VOICE_URL": voice.url}  # 33 frames: 2.06 s
        with engine_server(tmp_path, comfy.url, **more) as server, server.client() as http:
            body = {"prompt": "me", "say": "one two three four five six seven eight nine"}
            done = finished(http, http.post("/api/generate", json=body).json()["id"])
    assert done["state"] == "failed" and done["error"]["code"] == "voice_unusable", done
    assert "shorten the line" in done["error"]["message"]


def test_health_and_metrics_include_the_voice_engine(comfy: Any, tmp_path: Path) -> None:
    with voice_standin(tmp_path / "v") as voice:
        more = {"MYSPINBOT_VOICE_URL": voice.url}
        with engine_server(tmp_path, comfy.url, **more) as server, server.client() as http:

            def voice_entry() -> dict[str, Any] | None:
                engines = http.get("/health").json().get("engines", [])
                return next((e for e in engines if e["engine"] == "voice"), None)

            entry = wait_until(voice_entry, 30, "the voice engine in /health")
            metrics = http.get("/metrics").text
    assert (entry["url"], entry["up"], entry["status"]) == (voice.url, True, "healthy")
    assert f'myspinbot_engine_up{{engine="voice",server="{voice.url}"}} 1.0' in metrics


def test_myspinbot_submit_trains_a_persona_and_gets_a_speaking_clip(
    comfy: Any, tmp_path: Path
) -> None:
    images = []
    for index, (_, (name, data, _)) in enumerate(train_files(2)[:2]):
        images.append(tmp_path / f"{index}-{name}")
        images[-1].write_bytes(data)
    sample = tmp_path / "me.wav"
    sample.write_bytes(wav_bytes(seconds=6, level=3000))
    with voice_standin(tmp_path / "v") as voice:
        more = {"MYSPINBOT_VOICE_URL": voice.url}
        with engine_server(tmp_path, comfy.url, **more) as server:
            trained = submit(
                "--url", server.url, "train", "--images", *map(str, images),
                "--voice", str(sample), "--name", "alex", timeout=120,
            )  # fmt: skip
            assert trained.returncode == 0, trained.stderr
            train_id = trained.stdout.split("/api/jobs/")[1].split("/")[0]
            with server.client() as http:
                train(http, existing=train_id)
            made = submit(
                "--url", server.url, "generate", "me", "--lora", train_id, "--say", "Hi, it's me",
                timeout=120,
            )  # fmt: skip
        spoken_with = voice.state()["requests"][-1]["spoken_with"]
    assert made.returncode == 0, made.stderr
    urls = made.stdout.split()
    assert any(u.endswith(".mp4") for u in urls) and any(u.endswith("/line.wav") for u in urls)
    assert spoken_with == f"myspinbot-{train_id}"
