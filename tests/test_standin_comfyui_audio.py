"""The ComfyUI stand-in puts sound on a clip as ComfyUI 0.3.64 does (comfyui/audio_video.py)."""

from __future__ import annotations

import httpx
import pytest
from media_probe import probe
from standins import comfyui_standin
from support import wav_bytes
from test_standin_comfyui_files import run as run_prompt

FRAMES = 81


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    with comfyui_standin(tmp_path_factory.mktemp("comfyui")) as server:
        yield server


def run(server, prompt: dict) -> dict:
    """The prompt's /history entry, once it ran."""
    prompt_id, _ = run_prompt(server, prompt)
    with httpx.Client(base_url=server.url) as http:
        return http.get(f"/history/{prompt_id}").json()[prompt_id]


def talking_graph(audio: str, fps: float, duration: float = 60.0) -> dict:
    """The weightless graph: 81 empty frames and a line of speech into one mp4."""
    return {
        "1": {"class_type": "LoadAudio", "inputs": {"audio": audio}},
        "2": {
            "class_type": "TrimAudioDuration",
            "inputs": {"audio": ["1", 0], "start_index": 0.0, "duration": duration},
        },
        "3": {
            "class_type": "EmptyImage",
            "inputs": {"width": 64, "height": 48, "batch_size": FRAMES, "color": 0x3366AA},
        },
        "4": {
            "class_type": "CreateVideo",
            "inputs": {"images": ["3", 0], "fps": fps, "audio": ["2", 0]},
        },
        "5": {
            "class_type": "SaveVideo",
            "inputs": {"video": ["4", 0], "filename_prefix": "talk/clip", "format": "mp4",
                       "codec": "h264"},
        },
    }  # fmt: skip


def upload_line(server, seconds: float) -> str:
    data = wav_bytes(seconds=seconds, rate=24000, level=4000)
    with httpx.Client(base_url=server.url) as http:
        answer = http.post(
            "/upload/image",
            files={"image": ("line.wav", data, "audio/wav")},
            data={"subfolder": "lines", "overwrite": "true"},
        ).json()
    return f"{answer['subfolder']}/{answer['name']}"


def saved_clip(server, entry: dict):
    (saved,) = entry["outputs"]["5"]["images"]
    return probe(server.base_dir / "output" / saved["subfolder"] / saved["filename"])


@pytest.mark.parametrize("line_seconds", [3.0, 7.0])
def test_the_line_goes_onto_81_h264_frames_as_aac_cut_to_the_clip(comfy, line_seconds):
    clip = saved_clip(comfy, run(comfy, talking_graph(upload_line(comfy, line_seconds), 16.0)))
    assert (clip.video_codecs, clip.frames, clip.fps) == (["h264"], FRAMES, 16.0)
    assert clip.audio_codecs == ["aac"]
    assert clip.audio_seconds == pytest.approx(min(line_seconds, FRAMES / 16), abs=1 / 16)


def test_at_createvideos_default_30_fps_the_speech_is_cut_to_2_7_seconds(comfy):
    clip = saved_clip(comfy, run(comfy, talking_graph(upload_line(comfy, 4.5), 30.0)))
    assert clip.audio_seconds == pytest.approx(FRAMES / 30, abs=1 / 16)
    assert clip.audio_seconds < 4.5 - 1


def test_trim_audio_duration_cuts_and_refuses_an_empty_range(comfy):
    line = upload_line(comfy, 4.0)
    clip = saved_clip(comfy, run(comfy, talking_graph(line, 16.0, duration=1.5)))
    assert clip.audio_seconds == pytest.approx(1.5, abs=1 / 16)
    graph = talking_graph(line, 16.0, duration=0.0)
    entry = run(comfy, graph)
    messages = dict(entry["status"]["messages"])
    assert (
        "Start time must be less than end time" in messages["execution_error"]["exception_message"]
    )
