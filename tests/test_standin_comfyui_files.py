"""The ComfyUI stand-in's files: uploads, `/view`, save names by the counter rule, the media it
writes, and the LoRA-training graph of both generations."""

from __future__ import annotations

import io
import struct
import uuid
import wave

import httpx
import pytest
from PIL import Image
from standins import comfyui_standin
from standins.wire import SMOKE_PROMPT, Socket, data_of, types

MODELS = {"checkpoints": ["sd15.safetensors"]}


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    where = tmp_path_factory.mktemp("files")
    with comfyui_standin(where, models=MODELS, step_seconds=0.01, max_upload_size=1) as server:
        yield server


@pytest.fixture(scope="module")
def comfy26(tmp_path_factory):
    where = tmp_path_factory.mktemp("files26")
    with comfyui_standin(where, generation="2026", models=MODELS, step_seconds=0.01) as server:
        yield server


def png(colour=(200, 10, 10), size=(16, 12)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(http: httpx.Client, name: str, data: bytes, **fields) -> httpx.Response:
    return http.post("/upload/image", files={"image": (name, data, "image/png")}, data=fields)


def run(server, prompt: dict) -> tuple[str, list]:
    client_id = uuid.uuid4().hex
    with Socket(server.ws_url(client_id)) as ws, httpx.Client(base_url=server.url) as http:
        ws.next()
        response = http.post("/prompt", json={"prompt": prompt, "client_id": client_id})
        assert response.status_code == 200, response.text
        prompt_id = response.json()["prompt_id"]
        return prompt_id, ws.until_done(prompt_id)


def history(server, prompt_id: str) -> dict:
    return httpx.get(f"{server.url}/history/{prompt_id}").json()[prompt_id]


def test_an_upload_answers_name_subfolder_and_type(comfy):
    with httpx.Client(base_url=comfy.url) as http:
        response = upload(http, "face.png", png(), subfolder="myspinbot/job_1")
    assert response.status_code == 200
    assert response.json() == {"name": "face.png", "subfolder": "myspinbot/job_1", "type": "input"}
    assert (comfy.base_dir / "input/myspinbot/job_1/face.png").read_bytes() == png()


def test_a_name_collision_is_renamed_unless_identical_or_overwritten(comfy):
    with httpx.Client(base_url=comfy.url) as http:
        first = upload(http, "same.png", png((1, 2, 3)), subfolder="collide").json()
        identical = upload(http, "same.png", png((1, 2, 3)), subfolder="collide").json()
        different = upload(http, "same.png", png((9, 9, 9)), subfolder="collide").json()
        third = upload(http, "same.png", png((7, 7, 7)), subfolder="collide").json()
        overwritten = upload(
            http, "same.png", png((5, 5, 5)), subfolder="collide", overwrite="true"
        ).json()
    assert [r["name"] for r in (first, identical, different, third)] == [
        "same.png",
        "same.png",
        "same (1).png",
        "same (2).png",
    ]
    assert overwritten["name"] == "same.png"
    assert (comfy.base_dir / "input/collide/same.png").read_bytes() == png((5, 5, 5))


def test_bad_uploads_are_refused_like_comfyui_does(comfy):
    with httpx.Client(base_url=comfy.url) as http:
        assert http.post("/upload/image", data={"subfolder": "x"}).status_code == 400
        assert upload(http, "a.png", png(), subfolder="../../outside").status_code == 400
        assert upload(http, "a.png", png(), type="nonsense").status_code == 500
        assert upload(http, "a.png", png(), type="temp").json()["type"] == "temp"


def test_an_upload_over_the_size_limit_is_a_413(comfy):
    with httpx.Client(base_url=comfy.url) as http:
        response = upload(http, "big.png", b"\0" * (1024 * 1024 + 1))
    assert response.status_code == 413
    assert "Maximum request body size 1048576 exceeded" in response.text


def test_view_serves_outputs_with_their_types_and_refuses_escapes(comfy):
    prompt_id, _ = run(comfy, SMOKE_PROMPT)
    outputs = history(comfy, prompt_id)["outputs"]
    video, webp = outputs["6"]["images"][0], outputs["4"]["images"][0]
    (comfy.base_dir / "output/page.html").write_text("<script>alert(1)</script>")
    with httpx.Client(base_url=comfy.url) as http:
        got_video = http.get("/view", params=video)
        got_webp = http.get("/api/view", params=webp)
        html = http.get("/view", params={"filename": "page.html"})
        annotated = http.get(
            "/view", params={"filename": f"{webp['filename']} [output]", "subfolder": "smoke"}
        )
        statuses = [
            http.get("/view", params={"filename": "../secret.txt"}).status_code,
            http.get("/view", params={"filename": "/etc/passwd"}).status_code,
            http.get("/view", params={"filename": "a.png", "subfolder": "../.."}).status_code,
            http.get("/view", params={"filename": "missing.png"}).status_code,
            http.get("/view", params={"filename": "a.png", "type": "elsewhere"}).status_code,
        ]
    assert got_video.headers["content-type"] == "video/mp4"
    assert got_video.headers["content-disposition"] == f'filename="{video["filename"]}"'
    assert got_video.content[4:8] == b"ftyp"
    assert got_webp.headers["content-type"] == "image/webp"
    # Pillow folds identical frames (EmptyImage's are), as it does for the real node.
    assert got_webp.content[:4] == b"RIFF" and got_webp.content[8:12] == b"WEBP"
    assert html.headers["content-type"] == "application/octet-stream"
    assert annotated.status_code == 200
    assert statuses == [400, 400, 403, 404, 400]


def test_view_can_reencode_a_preview(comfy):
    with httpx.Client(base_url=comfy.url) as http:
        name = upload(http, "preview.png", png()).json()["name"]
        response = http.get(
            "/view", params={"filename": name, "type": "input", "preview": "jpeg;50"}
        )
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content[:2] == b"\xff\xd8"


def test_save_names_follow_the_counter_rule(comfy):
    def save(colour: int, prefix: str) -> str:
        prompt = {
            "1": {
                "class_type": "EmptyImage",
                "inputs": {"width": 8, "height": 8, "batch_size": 2, "color": colour},
            },
            "2": {
                "class_type": "SaveImage",
                "inputs": {"images": ["1", 0], "filename_prefix": prefix},
            },
        }
        prompt_id, _ = run(comfy, prompt)
        return [i["filename"] for i in history(comfy, prompt_id)["outputs"]["2"]["images"]]

    assert save(1, "counter/img") == ["img_00001_.png", "img_00002_.png"]
    assert save(2, "counter/img") == ["img_00003_.png", "img_00004_.png"]
    assert save(3, "counter/other_%width%x%height%") == [
        "other_8x8_00001_.png",
        "other_8x8_00002_.png",
    ]
    stored = Image.open(comfy.base_dir / "output/counter/img_00001_.png")
    assert "prompt" in stored.info


def test_preview_image_writes_temp_files_with_a_random_prefix(comfy):
    prompt = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 77},
        },
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }
    prompt_id, _ = run(comfy, prompt)
    (image,) = history(comfy, prompt_id)["outputs"]["2"]["images"]
    assert image["type"] == "temp" and image["subfolder"] == ""
    assert image["filename"].startswith("ComfyUI_temp_") and image["filename"].endswith(
        "_00001_.png"
    )
    assert (comfy.base_dir / "temp" / image["filename"]).exists()


def test_audio_goes_in_as_wav_and_out_as_flac(comfy):
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1), wav.setsampwidth(2), wav.setframerate(8000)
        wav.writeframes(struct.pack("<400h", *([1000, -1000] * 200)))
    with httpx.Client(base_url=comfy.url) as http:
        name = http.post(
            "/upload/image",
            files={"image": ("voice.wav", buffer.getvalue(), "audio/wav")},
            data={"subfolder": "voices"},
        ).json()["name"]
    prompt = {
        "1": {"class_type": "LoadAudio", "inputs": {"audio": f"voices/{name}"}},
        "2": {
            "class_type": "SaveAudio",
            "inputs": {"audio": ["1", 0], "filename_prefix": "audio/voice"},
        },
    }
    prompt_id, _ = run(comfy, prompt)
    (saved,) = history(comfy, prompt_id)["outputs"]["2"]["audio"]
    assert saved == {"filename": "voice_00001_.flac", "subfolder": "audio", "type": "output"}
    assert (comfy.base_dir / "output/audio/voice_00001_.flac").read_bytes()[:4] == b"fLaC"


def test_load_image_refuses_a_missing_file_at_validation(comfy):
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "nowhere/none.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    }
    body = httpx.post(f"{comfy.url}/prompt", json={"prompt": prompt}).json()
    (error,) = body["node_errors"]["1"]["errors"]
    assert error["type"] == "custom_validation_failed"
    assert error["details"] == "image - Invalid image file: nowhere/none.png"


def training_prompt(generation: str, folder: str, prefix: str) -> dict:
    """ENGINES.md §4.5 B: folder of photos -> VAEEncode -> TrainLoraNode -> save + loss graph."""
    new = generation == "2026"
    train_inputs = {
        "model": ["1", 0],
        "latents": ["3", 0],
        "positive": ["4", 0],
        "batch_size": 1,
        "grad_accumulation_steps": 2,
        "steps": 4,
        "learning_rate": 0.0005,
        "rank": 4,
        "optimizer": "AdamW",
        "loss_function": "MSE",
        "seed": 0,
        "training_dtype": "bf16",
        "lora_dtype": "bf16",
        "algorithm": "LoRA",
        "gradient_checkpointing": True,
        "existing_lora": "[None]",
    }
    if new:
        train_inputs |= {
            "checkpoint_depth": 1,
            "offloading": False,
            "bucket_mode": False,
            "bypass_mode": False,
            "quantized_backward": False,
        }
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
        "2": {"class_type": "LoadImageDataSetFromFolder", "inputs": {"folder": folder}}
        if new
        else {
            "class_type": "LoadImageSetFromFolderNode",
            "inputs": {"folder": folder, "resize_method": "Stretch"},
        },
        "3": {"class_type": "VAEEncode", "inputs": {"pixels": ["2", 0], "vae": ["1", 2]}},
        "4": {
            "class_type": "CLIPTextEncode",
            "inputs": {"clip": ["1", 1], "text": "photo of sks person"},
        },
        "5": {"class_type": "TrainLoraNode", "inputs": train_inputs},
        "6": {
            "class_type": "SaveLoRA" if new else "SaveLoRANode",
            "inputs": {
                "lora": ["5", 0 if new else 1],
                "prefix": prefix,
                "steps": ["5", 2 if new else 3],
            },
        },
        "7": {
            "class_type": "LossGraphNode",
            "inputs": {"loss": ["5", 1 if new else 2], "filename_prefix": "loss"},
        },
    }


@pytest.mark.parametrize("generation", ["2025", "2026"])
def test_the_training_graph_writes_a_lora_with_no_ui_and_a_loss_graph(request, generation):
    server = request.getfixturevalue("comfy26" if generation == "2026" else "comfy")
    with httpx.Client(base_url=server.url) as http:
        for index in range(3):
            upload(
                http,
                f"{index}.png",
                png((index * 80, 0, 0), (16 + index, 16)),
                subfolder="myspinbot/job_7",
            )
    prompt = training_prompt(generation, "myspinbot/job_7", "loras/myspinbot_job_7")
    prompt_id, frames = run(server, prompt)
    entry = history(server, prompt_id)
    lora = server.base_dir / "output/loras/myspinbot_job_7_4_steps_00001_.safetensors"
    assert lora.exists()
    header_size = struct.unpack("<Q", lora.read_bytes()[:8])[0]
    assert b"lora_down" in lora.read_bytes()[8 : 8 + header_size]
    assert "execution_success" in types(frames)
    assert [d["node"] for d in data_of(frames, "executed")] == ["7"]
    assert "6" not in entry["outputs"]
    (graph,) = entry["outputs"]["7"]["images"]
    assert graph["type"] == "temp"
    training_progress = [d for d in data_of(frames, "progress") if d["node"] == "5"]
    if generation == "2025":
        # ComfyUI 0.3.64 trains under tqdm only: no progress frames reach the socket.
        assert training_progress == []
        assert graph["filename"].startswith("loss_")
    else:
        # The V3 node's ProgressBar counts steps x grad_accumulation_steps.
        assert [d["value"] for d in training_progress] == list(range(1, 9))
        assert {d["max"] for d in training_progress} == {8}
        assert entry["outputs"]["7"]["animated"] == [False]
