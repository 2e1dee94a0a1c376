"""Training through MySpinBot on the ComfyUI stand-in of each generation, with the shipped
workflows: every photo one sample, the trigger token from the captions to the text the
next generate job encodes, a LoRA trained on one box rendered on another, training that
shows steps or elapsed time, and a cancel that ComfyUI confirms.

The stand-in's VAEEncode treats an image batch as Wan's VAE does (the frames of one clip,
1 + 4k kept) and its TrainLoraNode records the dataset it saw (`/_standin/state`), so a
workflow that sent all photos through one encode would train on one sample here too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from standins import comfyui_standin, ollama_standin
from support import train_files, wait_until

from .test_jobs_standin import SHIPPED_MODELS, engine_server, finished, history_graph

WRITTEN = "a slow dolly shot of a person waving on a beach at dusk"
REPLY = json.dumps({"shot": WRITTEN, "line": ""})  # the writer asks for JSON of a schema


def status(http: httpx.Client, job_id: str) -> dict[str, Any]:
    return http.get(f"/api/status/{job_id}").json()


def train(http: httpx.Client, name: str, photos: int) -> dict[str, Any]:
    job = http.post("/api/train", files=train_files(photos), data={"name": name}).json()
    return finished(http, job["id"])


def encoded_texts(comfy: Any, prompt_id: str) -> list[str]:
    graph = history_graph(comfy, prompt_id)
    return [n["inputs"]["text"] for n in graph.values() if n["class_type"] == "CLIPTextEncode"]


def history_messages(comfy: Any, prompt_id: str) -> list[str]:
    entry = httpx.get(f"{comfy.url}/history/{prompt_id}", timeout=10).json()[prompt_id]
    return [kind for kind, _ in entry["status"]["messages"]]


@pytest.fixture(params=["2025", "2026"], ids=["comfyui-0.3", "comfyui-current"])
def box(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    with slow_training(tmp_path, request.param, steps=4, step_seconds=0.02) as server:
        yield server


def test_every_photo_is_one_sample_and_the_token_reaches_the_next_render(
    box: Any, tmp_path: Path
) -> None:
    with engine_server(tmp_path, box.url) as server, server.client() as http:
        four, ten = train(http, "Alex", 4), train(http, "Alex", 10)
        job = http.post("/api/generate", json={"prompt": "waving", "lora": four["id"]}).json()
        rendered = finished(http, job["id"])
    assert [four["state"], ten["state"], rendered["state"]] == ["completed"] * 3, rendered
    trainings = box.state()["trainings"]
    assert [t["samples"] for t in trainings] == [4, 10]  # not 1 and 3: one encode per photo
    token = four["result"]["trigger"]
    assert token.startswith("msb_alex_") and token != ten["result"]["trigger"]
    assert all(c.startswith(f"{token}, ") for c in trainings[0]["captions"])
    assert four["result"]["samples"] == 4 and ten["result"]["samples"] == 10
    assert four["result"]["steps"] == 200  # the shipped workflow's TrainLoraNode steps
    texts = encoded_texts(box, rendered["result"]["comfyui"]["prompt_id"])
    assert f"{token}, waving" in texts


def test_the_token_is_put_in_front_of_the_shot_ollama_wrote(tmp_path: Path) -> None:
    with (
        comfyui_standin(
            tmp_path, generation="2026", steps=2, models=SHIPPED_MODELS, loras_from_output=True
        ) as comfy,
        ollama_standin(tmp_path / "ollama", models=["llama3.2"], reply=REPLY) as ollama,
        engine_server(tmp_path, comfy.url, MYSPINBOT_OLLAMA_URL=ollama.url) as server,
        server.client() as http,
    ):
        trained = train(http, "Sam", 2)
        job = http.post("/api/generate", json={"prompt": "wave", "lora": trained["id"]}).json()
        done = finished(http, job["id"])
        assert done["state"] == "completed", done
        texts = encoded_texts(comfy, done["result"]["comfyui"]["prompt_id"])
    assert done["result"]["prompt"] == WRITTEN, done
    assert f"{trained['result']['trigger']}, {WRITTEN}" in texts


def test_a_lora_trained_on_box_a_is_copied_to_box_b_that_renders(tmp_path: Path) -> None:
    boxes = {"a": "2025", "b": "2026"}  # two GPU boxes, even of different ComfyUI lines
    with (
        comfyui_standin(
            tmp_path / "a",
            generation=boxes["a"],
            steps=2,
            models=SHIPPED_MODELS,
            loras_from_output=True,
        ) as a,
        comfyui_standin(
            tmp_path / "b",
            generation=boxes["b"],
            steps=2,
            models=SHIPPED_MODELS,
            loras_from_output=True,
        ) as b,
    ):
        with engine_server(tmp_path, a.url) as server, server.client() as http:
            trained = train(http, "Kim", 3)
        lora = trained["result"]["lora"]
        assert lora not in httpx.get(f"{b.url}/models/loras", timeout=10).json()
        with engine_server(tmp_path, b.url) as server, server.client() as http:
            job = http.post("/api/generate", json={"prompt": "hi", "lora": trained["id"]}).json()
            done = finished(http, job["id"])
        assert done["state"] == "completed", done
        assert lora in httpx.get(f"{b.url}/models/loras", timeout=10).json()
        graph = history_graph(b, done["result"]["comfyui"]["prompt_id"])
        loaders = [n for n in graph.values() if n["class_type"] == "LoraLoaderModelOnly"]
        assert loaders and loaders[0]["inputs"]["lora_name"] == lora
        copied = b.base_dir / "output" / "loras" / lora
        original = a.base_dir / "output" / "loras" / lora
        assert copied.read_bytes() == original.read_bytes()


def test_a_box_whose_loaders_miss_output_loras_fails_the_job_saying_so(tmp_path: Path) -> None:
    with (
        comfyui_standin(
            tmp_path / "a", steps=2, models=SHIPPED_MODELS, loras_from_output=True
        ) as a,
        comfyui_standin(tmp_path / "b", steps=2, models=SHIPPED_MODELS) as b,
    ):
        with engine_server(tmp_path, a.url) as server, server.client() as http:
            trained = train(http, "Kim", 2)
        with engine_server(tmp_path, b.url) as server, server.client() as http:
            job = http.post("/api/generate", json={"prompt": "hi", "lora": trained["id"]}).json()
            failed = finished(http, job["id"])
    assert failed["state"] == "failed" and failed["error"]["code"] == "lora_not_on_engine"
    assert "loras: output/loras" in failed["error"]["message"]
    assert "extra_model_paths.yaml" in failed["error"]["message"]


def message_with(http: httpx.Client, job_id: str, text: str) -> dict[str, Any]:
    """The job, once its message contains `text`."""

    def found() -> dict[str, Any] | None:
        job = status(http, job_id)
        return job if text in job["message"] else None

    return wait_until(found, 30, f"{text!r} in the job's message")


def slow_training(tmp_path: Path, generation: str, steps: int, step_seconds: float):
    return comfyui_standin(
        tmp_path,
        generation=generation,
        steps=steps,
        step_seconds=step_seconds,
        models=SHIPPED_MODELS,
        loras_from_output=True,
    )


def test_current_comfyui_training_shows_its_steps_and_a_cancel_interrupts_it(
    tmp_path: Path,
) -> None:
    with (
        slow_training(tmp_path, "2026", steps=400, step_seconds=0.05) as comfy,
        engine_server(tmp_path, comfy.url) as server,
        server.client() as http,
    ):
        job = http.post("/api/train", files=train_files(2), data={"name": "Io"}).json()
        stepping = message_with(http, job["id"], "Train LoRA ")
        assert stepping["message"].split()[-1].split("/")[1] == "400", stepping["message"]
        assert http.post(f"/api/jobs/{job['id']}/cancel").status_code < 300
        done = finished(http, job["id"])
        messages = history_messages(comfy, done["result"]["comfyui"]["prompt_id"])
        trainings = comfy.state()["trainings"]
    assert done["state"] == "cancelled", done
    assert "execution_interrupted" in messages
    assert trainings[0]["samples"] == 2


def test_comfyui_0_3_training_shows_elapsed_time_and_ends_cancelled_once_comfyui_stops(
    tmp_path: Path,
) -> None:
    # 0.3.64's training loop reports no steps and checks no interrupt: ComfyUI stops the
    # prompt at the next node, and only then is the job cancelled.
    with (
        slow_training(tmp_path, "2025", steps=60, step_seconds=0.05) as comfy,
        engine_server(tmp_path, comfy.url) as server,
        server.client() as http,
    ):
        job = http.post("/api/train", files=train_files(2), data={"name": "Io"}).json()
        silent = message_with(http, job["id"], "reports no steps")
        assert silent["message"].startswith("training (ComfyUI reports no steps), 0:0")
        assert silent["message"].endswith(" elapsed")
        assert http.post(f"/api/jobs/{job['id']}/cancel").status_code < 300
        done = finished(http, job["id"])
        prompt_id = done["result"]["comfyui"]["prompt_id"]
        messages = history_messages(comfy, prompt_id)  # already there when the job ended
    assert done["state"] == "cancelled", done
    assert "execution_interrupted" in messages and "execution_success" not in messages
