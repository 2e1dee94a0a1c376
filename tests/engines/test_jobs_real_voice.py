"""The issue's "done when" on a real ComfyUI (CPU, weightless workflows; opt-in).

A persona trained with a voice sample, then a generate job whose line Ollama's stand-in
writes and the speech stand-in speaks: the real ComfyUI 0.3.64 puts it on the clip, whose
AAC track lasts as long as the voice engine's WAV, within one frame.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from media_probe import probe
from standins import ollama_standin, voice_standin
from support import train_files

from myspinbot.audio import read_wav

from .comfyui_rig import ComfyUIProcess
from .test_jobs_real import engine_server, finished, workflows_folder

pytestmark = pytest.mark.comfyui

LINE = "Hi everyone, this is me on the beach today"


def test_a_trained_persona_speaks_ollamas_line_on_a_real_comfyui_clip(
    comfyui_process: ComfyUIProcess, tmp_path: Path
) -> None:
    workflows = workflows_folder(tmp_path, generate="generate_voice.json")
    reply = json.dumps({"shot": "me at the beach", "line": LINE})
    with (
        ollama_standin(tmp_path / "o", reply=reply) as ollama,
        voice_standin(tmp_path / "v") as voice,
        engine_server(
            comfyui_process, tmp_path, workflows,
            MYSPINBOT_OLLAMA_URL=ollama.url, MYSPINBOT_VOICE_URL=voice.url,
        ) as server,  # fmt: skip
        server.client() as http,
    ):
        train = http.post("/api/train", files=train_files(2), data={"name": "alex"}).json()
        assert finished(http, train["id"])["state"] == "completed"
        job = http.post("/api/generate", json={"prompt": "me", "lora": train["id"]}).json()
        done = finished(http, job["id"])
        assert done["state"] == "completed", done["error"]
        clip = next(a["name"] for a in done["artifacts"] if a["name"].endswith(".mp4"))
        (tmp_path / clip).write_bytes(http.get(f"/api/jobs/{job['id']}/artifacts/{clip}").content)
        spoken = http.get(f"/api/jobs/{job['id']}/artifacts/line.wav").content
        spoken_with = voice.state()["requests"][-1]["spoken_with"]
    found = probe(tmp_path / clip)
    assert (done["result"]["line"], done["result"]["voice"]) == (LINE, "spoken")
    assert spoken_with == f"myspinbot-{train['id']}"
    assert (found.video_codecs, found.frames, found.fps) == (["h264"], 81, 16.0)
    assert found.audio_codecs == ["aac"]
    assert found.audio_seconds == pytest.approx(read_wav(spoken)[1].seconds, abs=1 / 16)
