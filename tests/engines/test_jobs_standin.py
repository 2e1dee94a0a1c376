"""Jobs through MySpinBot on stand-in engines: what a CPU cannot show of a real GPU box.

The stand-ins (tests/standins) speak ComfyUI's and Ollama's protocols, built from their
sources, as real processes on loopback: sampler steps over time, preview frames, the
2026 server's prompt-id rules, Ollama writing, several GPU boxes. The shipped workflows
run unchanged against them (the stand-in knows the Wan and training nodes).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from reliability_support import Replica
from speaking_standins import SHIPPED_MODELS
from standins import comfyui_standin, ollama_standin
from support import Events, Server, running_server, train_files, wait_until

from myspinbot.config import embedded_redis_url

WRITTEN = "a slow dolly shot of a red fox crossing fresh snow at dawn, soft light"
# Ollama answers the writer's schema (engines/writer.py): the shot and the spoken line.
REPLY = json.dumps({"shot": WRITTEN, "line": ""})


def finished(http: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job = http.get(f"/api/status/{job_id}").json()
        return job if job["state"] in ("completed", "failed", "cancelled") else None

    return wait_until(done, timeout, f"job {job_id} to end")


def history_graph(comfy: Any, prompt_id: str) -> dict[str, Any]:
    entry = httpx.get(f"{comfy.url}/history/{prompt_id}", timeout=10).json()[prompt_id]
    return entry["prompt"][2]


@contextmanager
def engine_server(root: Path, comfy_url: str, **more: str) -> Iterator[Server]:
    env = {
        "MYSPINBOT_COMFYUI_URL": comfy_url,
        "MYSPINBOT_COMFYUI_IDLE_SECONDS": "1",
        "MYSPINBOT_RETRY_BASE_SECONDS": "0.2",
        "MYSPINBOT_CLIP_FRAMES": "33",  # 2 s clips: the stand-in encodes every frame
        **more,
    }
    with running_server(root / "data", **env) as server:
        yield server


@pytest.fixture()
def comfy(tmp_path: Path) -> Iterator[Any]:
    with comfyui_standin(
        tmp_path,
        generation="2026",
        steps=8,
        step_seconds=0.05,
        preview=True,
        models=SHIPPED_MODELS,
    ) as server:
        yield server


def test_the_shipped_workflow_renders_with_sampler_steps_and_live_previews(
    comfy: Any, tmp_path: Path
) -> None:
    with engine_server(tmp_path, comfy.url) as server, server.client() as http:
        events = Events(server.ws_url)
        events.next()  # the snapshot
        job = http.post("/api/generate", json={"prompt": "a fox in the snow"}).json()
        done = finished(http, job["id"])
        events.until(lambda f: f["type"] == "done" and f["job"]["id"] == job["id"])
        frames = events.for_job(job["id"])
        events.close()
        assert done["state"] == "completed", done
        messages = [f["job"]["message"] for f in frames]
        # The shipped workflow titles its KSampler "Sampler": steps as ComfyUI sends them.
        assert any(m.startswith("Sampler ") and m.endswith("/8") for m in messages), messages
        percents = [f["job"]["progress"] for f in frames]
        assert percents == sorted(percents) and len(set(percents)) >= 5  # a bar that moves
        previews = [f["job"]["result"].get("preview") for f in frames if f["job"].get("result")]
        shown = [p for p in previews if p]
        assert shown and shown[-1]["frame"] >= 1
        preview = http.get(f"/api/jobs/{job['id']}/preview")
        assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"
        video = next(a for a in done["artifacts"] if a["content_type"] == "video/mp4")
        assert http.get(video["url"]).content[4:8] == b"ftyp"
    graph = history_graph(comfy, done["result"]["comfyui"]["prompt_id"])
    texts = [n["inputs"]["text"] for n in graph.values() if n["class_type"] == "CLIPTextEncode"]
    assert "a fox in the snow" in texts  # no Ollama: the prompt goes as written
    assert not any(n["class_type"] == "LoraLoaderModelOnly" for n in graph.values())  # bypassed


def test_the_queue_position_is_shown_while_another_clients_prompt_runs(tmp_path: Path) -> None:
    slow = {"steps": 40, "step_seconds": 0.05, "slow": ["ImageInvert"], "models": SHIPPED_MODELS}
    blank = {"width": 8, "height": 8, "batch_size": 1, "color": 0}
    theirs = {
        "1": {"class_type": "EmptyImage", "inputs": blank},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }
    with (
        comfyui_standin(tmp_path, **slow) as comfy,
        engine_server(tmp_path, comfy.url) as server,
        server.client() as http,
    ):
        events = Events(server.ws_url)
        events.next()
        answer = httpx.post(f"{comfy.url}/prompt", json={"prompt": theirs, "client_id": "other"})
        assert answer.status_code == 200, answer.text
        job = http.post("/api/generate", json={"prompt": "behind another prompt"}).json()
        done = finished(http, job["id"])
        events.until(lambda f: f["type"] == "done" and f["job"]["id"] == job["id"])
        messages = [f["job"]["message"] for f in events.for_job(job["id"])]
        events.close()
    assert done["state"] == "completed", done
    assert "1 ahead in ComfyUI" in messages, messages
    assert messages.index("1 ahead in ComfyUI") < messages.index("running in ComfyUI")


def test_ollama_writes_the_shot_that_comfyui_renders(comfy: Any, tmp_path: Path) -> None:
    with ollama_standin(tmp_path / "ollama", models=["llama3.2"], reply=REPLY) as ollama:
        more = {"MYSPINBOT_OLLAMA_URL": ollama.url, "MYSPINBOT_OLLAMA_MODEL": "llama3.2"}
        with engine_server(tmp_path, comfy.url, **more) as server, server.client() as http:
            events = Events(server.ws_url)
            events.next()
            job = http.post("/api/generate", json={"prompt": "a fox"}).json()
            done = finished(http, job["id"])
            events.until(lambda f: f["type"] == "done" and f["job"]["id"] == job["id"])
            messages = [f["job"]["message"] for f in events.for_job(job["id"])]
            events.close()
    assert done["state"] == "completed", done
    assert done["result"]["prompt"] == WRITTEN and done["result"]["writer"] == "llama3.2"
    assert any(m.startswith("writing the shot") for m in messages), messages
    graph = history_graph(comfy, done["result"]["comfyui"]["prompt_id"])
    texts = [n["inputs"]["text"] for n in graph.values() if n["class_type"] == "CLIPTextEncode"]
    assert WRITTEN in texts


def test_an_ollama_answering_503_is_retried_and_the_job_completes(
    comfy: Any, tmp_path: Path
) -> None:
    faults = [("/api/chat", 503, 1)]
    with ollama_standin(
        tmp_path / "ollama", models=["llama3.2"], reply=REPLY, http_faults=faults
    ) as ollama:
        more = {"MYSPINBOT_OLLAMA_URL": ollama.url}
        with engine_server(tmp_path, comfy.url, **more) as server, server.client() as http:
            job = http.post("/api/generate", json={"prompt": "a fox"}).json()
            done = finished(http, job["id"])
    assert done["state"] == "completed" and done["attempt"] == 2, done
    assert done["result"]["prompt"] == WRITTEN


def test_a_model_ollama_lacks_fails_at_once_saying_how_to_pull_it(
    comfy: Any, tmp_path: Path
) -> None:
    with ollama_standin(tmp_path / "ollama", models=["llama3.2"]) as ollama:
        more = {"MYSPINBOT_OLLAMA_URL": ollama.url, "MYSPINBOT_OLLAMA_MODEL": "qwen3"}
        with engine_server(tmp_path, comfy.url, **more) as server, server.client() as http:
            job = http.post("/api/generate", json={"prompt": "a fox"}).json()
            failed = finished(http, job["id"])
    assert failed["state"] == "failed" and failed["attempt"] == 1
    assert "ollama pull qwen3" in failed["error"]["message"]


def test_a_missing_model_fails_the_job_at_once_naming_node_and_file(tmp_path: Path) -> None:
    models = {k: v for k, v in SHIPPED_MODELS.items() if k != "vae"}
    with (
        comfyui_standin(tmp_path, models=models) as comfy,
        engine_server(tmp_path, comfy.url) as server,
        server.client() as http,
    ):
        job = http.post("/api/generate", json={"prompt": "no vae"}).json()
        failed = finished(http, job["id"])
    assert failed["state"] == "failed" and failed["attempt"] == 1
    assert failed["error"]["code"] == "engine_missing_model"
    message = failed["error"]["message"]
    assert "wan_2.1_vae.safetensors" in message and "VAELoader" in message


def test_the_shipped_training_workflow_makes_the_jobs_lora(tmp_path: Path) -> None:
    # A 0.3 server: the worker picks the shipped train_comfyui_0_3.json from its nodes.
    with (
        comfyui_standin(tmp_path, generation="2025", steps=5, models=SHIPPED_MODELS) as comfy,
        engine_server(tmp_path, comfy.url) as server,
        server.client() as http,
    ):
        job = http.post("/api/train", files=train_files(2), data={"name": "me"}).json()
        done = finished(http, job["id"])
        assert done["state"] == "completed", done
        weights = http.get(f"/api/jobs/{job['id']}/artifacts/lora.safetensors").content
    assert int.from_bytes(weights[:8], "little") > 0
    assert done["result"]["lora"].startswith("myspinbot/" + job["id"])
    uploaded = sorted(p.name for p in (comfy.base_dir / "input" / "myspinbot").rglob("*"))
    assert "voice.wav" in uploaded and len([n for n in uploaded if n.endswith(".png")]) == 2


def test_two_gpu_boxes_share_the_queue_and_a_lost_box_hands_its_job_over(
    tmp_path: Path,
) -> None:
    slow = {"steps": 40, "step_seconds": 0.1, "models": SHIPPED_MODELS}
    with ExitStack() as stack:
        boxes = [
            stack.enter_context(comfyui_standin(tmp_path / f"gpu-{n}", **slow)) for n in (1, 2)
        ]
        more = {"MYSPINBOT_INPROCESS_WORKERS": "0", "MYSPINBOT_LEASE_SECONDS": "2"}
        server = stack.enter_context(engine_server(tmp_path, boxes[0].url, **more))
        base = {**server.env, "REDIS_URL": embedded_redis_url(server.data_dir)}
        replicas = [
            Replica({**base, "MYSPINBOT_COMFYUI_URL": box.url}, tmp_path / f"replica-{n}.log")
            for n, box in enumerate(boxes)
        ]
        for replica in replicas:
            stack.callback(replica.stop)
            replica.start()
        http = stack.enter_context(server.client())
        engines = wait_until(
            lambda: (lambda e: e if len(e) == 2 else None)(
                http.get("/health").json().get("engines", [])
            ),
            30,
            "both GPU boxes in /health",
        )
        assert {e["url"] for e in engines} == {box.url for box in boxes}
        jobs = [http.post("/api/generate", json={"prompt": f"clip {n}"}).json() for n in range(2)]
        running = wait_until(
            lambda: (lambda js: js if all(j["progress"] > 10 for j in js) else None)(
                [http.get(f"/api/status/{j['id']}").json() for j in jobs]
            ),
            30,
            "both jobs to run, one per box",
        )
        servers = {j["result"]["comfyui"]["server"] for j in running}
        assert servers == {box.url for box in boxes}  # spread over the two GPUs
        # The first box and its worker go away mid-render.
        lost = next(j for j in running if j["result"]["comfyui"]["server"] == boxes[0].url)
        os.kill(replicas[0].pid, signal.SIGKILL)
        boxes[0].stop(kill=True)
        moved = finished(http, lost["id"], 90)
        other = finished(http, next(j["id"] for j in jobs if j["id"] != lost["id"]), 90)
    assert moved["state"] == "completed" and moved["attempt"] == 2, moved
    assert moved["result"]["comfyui"]["server"] == boxes[1].url
    assert other["state"] == "completed" and other["attempt"] == 1
