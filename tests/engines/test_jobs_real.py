"""Real jobs through MySpinBot on a real ComfyUI (CPU, weightless workflows; opt-in).

The server runs with MYSPINBOT_COMFYUI_URL pointing at the rig's ComfyUI and
MYSPINBOT_COMFYUI_WORKFLOWS at the weightless workflows of tests/data/workflows.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from reliability_support import Replica
from support import ROOT, Events, Server, running_server, train_files, wait_until

from myspinbot.config import embedded_redis_url
from myspinbot.jobs.worker.engine_probe import PROBE_INTERVAL

from .comfyui_rig import START_SECONDS, ComfyUIProcess
from .support_engines import WORKFLOWS

pytestmark = pytest.mark.comfyui

SLOW = {"steps": 40, "seconds_per_step": 0.25}  # ten seconds of sampler-like steps


def workflows_folder(root: Path, *, generate: str = "generate.json", **sampler: Any) -> Path:
    """A copy of the weightless workflows; `sampler` changes the slow node's inputs."""
    folder = root / "workflows"
    shutil.copytree(WORKFLOWS, folder, dirs_exist_ok=True)
    graph = json.loads((WORKFLOWS / generate).read_text())
    for node in graph.values():
        if node["class_type"] == "MySpinBotSlowSteps":
            node["inputs"].update(sampler)
    (folder / "generate.json").write_text(json.dumps(graph))
    return folder


def engine_env(comfyui: ComfyUIProcess, workflows: Path, **more: str) -> dict[str, str]:
    return {
        "MYSPINBOT_COMFYUI_URL": comfyui.url,
        "MYSPINBOT_COMFYUI_WORKFLOWS": str(workflows),
        "MYSPINBOT_COMFYUI_IDLE_SECONDS": "2",
        "MYSPINBOT_RETRY_BASE_SECONDS": "1",
        **more,
    }


@contextmanager
def engine_server(
    comfyui: ComfyUIProcess, root: Path, workflows: Path, **more: str
) -> Iterator[Server]:
    with running_server(root / "data", **engine_env(comfyui, workflows, **more)) as server:
        yield server


def finished(http: httpx.Client, job_id: str, timeout: float = 120) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job = http.get(f"/api/status/{job_id}").json()
        return job if job["state"] in ("completed", "failed", "cancelled") else None

    return wait_until(done, timeout, f"job {job_id} to end")


def comfyui_entry(comfyui: ComfyUIProcess, prompt_id: str) -> dict[str, Any]:
    history = httpx.get(f"{comfyui.url}/history/{prompt_id}", timeout=10).json()
    return history.get(prompt_id) or {}


@pytest.fixture(scope="module")
def generating(comfyui_process: ComfyUIProcess, tmp_path_factory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("engine-jobs")
    with engine_server(comfyui_process, root, workflows_folder(root)) as server:
        yield server


def test_myspinbot_submit_generate_yields_comfyuis_outputs_as_artifacts(
    generating: Server, comfyui_process: ComfyUIProcess
) -> None:
    events = Events(generating.ws_url)
    events.next()  # the snapshot
    done = subprocess.run(
        [sys.executable, "-m", "myspinbot.cli", "submit", "--url", generating.url]
        + ["generate", "a fox in the snow"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("MYSPINBOT_")},
    )
    assert done.returncode == 0, done.stderr
    urls = done.stdout.split()
    with generating.client() as http:
        job = http.get("/api/jobs").json()["jobs"][0]
        assert job["state"] == "completed" and job["progress"] == 100
        kinds = {artifact["content_type"] for artifact in job["artifacts"]}
        assert "video/mp4" in kinds and "image/webp" in kinds, job["artifacts"]
        video = next(a for a in job["artifacts"] if a["content_type"] == "video/mp4")
        assert any(url.endswith(video["url"]) for url in urls)
        body = http.get(video["url"]).content
        assert body[4:8] == b"ftyp" and len(body) == video["size"]
    result = job["result"]
    assert result["prompt"] == "a fox in the snow"  # no Ollama: rendered as written
    assert result["preview"]["frame"] >= 1
    entry = comfyui_entry(comfyui_process, result["comfyui"]["prompt_id"])
    assert entry["status"]["status_str"] == "success"
    # Live progress on /ws: ComfyUI's node and steps, in order, up to the end.
    frames = events.until(lambda f: f["type"] == "done" and f["job"]["id"] == job["id"])
    messages = [f["job"]["message"] for f in events.for_job(job["id"])]
    assert any("Sampler" in m and "/6" in m for m in messages), messages
    percents = [f["job"]["progress"] for f in events.for_job(job["id"])]
    assert percents == sorted(percents) and frames["job"]["progress"] == 100
    events.close()


def test_a_training_job_yields_a_lora_that_a_later_generate_job_uses(
    generating: Server, comfyui_process: ComfyUIProcess
) -> None:
    with generating.client() as http:
        train = http.post("/api/train", files=train_files(2), data={"name": "me"}).json()
        trained = finished(http, train["id"])
        assert trained["state"] == "completed", trained
        lora = next(a for a in trained["artifacts"] if a["name"] == "lora.safetensors")
        weights = http.get(lora["url"]).content
        header = int.from_bytes(weights[:8], "little")
        assert json.loads(weights[8 : 8 + header])  # a real safetensors header
        assert trained["result"]["lora"].endswith(".safetensors")
        job = http.post("/api/generate", json={"prompt": "me, waving", "lora": train["id"]})
        used = finished(http, job.json()["id"])
        assert used["state"] == "completed", used
    graph = comfyui_entry(comfyui_process, used["result"]["comfyui"]["prompt_id"])["prompt"][2]
    loaders = [n for n in graph.values() if n["class_type"] == "MySpinBotApplyLoRA"]
    assert loaders and loaders[0]["inputs"]["lora_name"] == trained["result"]["lora"]


def test_cancelling_a_running_job_interrupts_exactly_its_prompt(
    comfyui_process: ComfyUIProcess, tmp_path: Path
) -> None:
    workflows = workflows_folder(tmp_path, **SLOW)
    with engine_server(comfyui_process, tmp_path, workflows) as server, server.client() as http:
        job = http.post("/api/generate", json={"prompt": "cancel me"}).json()
        running = wait_until(
            lambda: (lambda j: j if j["progress"] > 12 else None)(
                http.get(f"/api/status/{job['id']}").json()
            ),
            120,
            "the prompt to run in ComfyUI",
        )
        prompt_id = running["result"]["comfyui"]["prompt_id"]
        assert http.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
        assert finished(http, job["id"], 30)["state"] == "cancelled"
    entry = wait_until(lambda: comfyui_entry(comfyui_process, prompt_id), 30, "its history")
    kinds = [message[0] for message in entry["status"]["messages"]]
    assert "execution_interrupted" in kinds, kinds


def test_a_workflow_comfyui_rejects_fails_the_job_with_comfyuis_words(
    comfyui_process: ComfyUIProcess, tmp_path: Path
) -> None:
    workflows = workflows_folder(tmp_path, generate="rejected.json")
    with engine_server(comfyui_process, tmp_path, workflows) as server, server.client() as http:
        job = http.post("/api/generate", json={"prompt": "never rendered"}).json()
        failed = finished(http, job["id"])
    assert failed["state"] == "failed" and failed["attempt"] == 1  # permanent: no retry
    assert failed["error"]["code"] == "engine_workflow_rejected"
    assert "not in" in failed["error"]["message"]  # ComfyUI's own words (value_not_in_list)


def test_comfyui_restarted_mid_job_is_a_transient_error_and_the_job_completes(
    comfyui_process: ComfyUIProcess, tmp_path: Path
) -> None:
    workflows = workflows_folder(tmp_path, **SLOW)
    more = {"MYSPINBOT_COMFYUI_PATIENCE": str(START_SECONDS)}  # the rig's ComfyUI is slow to start
    with (
        engine_server(comfyui_process, tmp_path, workflows, **more) as server,
        server.client() as http,
    ):
        job = http.post("/api/generate", json={"prompt": "through a restart"}).json()
        first = wait_until(
            lambda: (lambda j: j if j["progress"] > 12 else None)(
                http.get(f"/api/status/{job['id']}").json()
            ),
            120,
            "the prompt to run",
        )
        comfyui_process.restart()
        done = finished(http, job["id"], START_SECONDS)
    assert done["state"] == "completed", done
    assert done["attempt"] >= 2  # the lost prompt was a transient error: retried
    assert done["result"]["comfyui"]["prompt_id"] != first["result"]["comfyui"]["prompt_id"]


def test_a_new_attempt_reattaches_to_the_prompt_its_lost_worker_left_running(
    comfyui_process: ComfyUIProcess, tmp_path: Path
) -> None:
    workflows = workflows_folder(tmp_path, **SLOW)
    more = {"MYSPINBOT_INPROCESS_WORKERS": "0", "MYSPINBOT_LEASE_SECONDS": "2"}
    with engine_server(comfyui_process, tmp_path, workflows, **more) as server:
        env = {**server.env, "REDIS_URL": embedded_redis_url(server.data_dir)}
        first = Replica(env, tmp_path / "replica-1.log").start()
        try:
            with server.client() as http:
                job = http.post("/api/generate", json={"prompt": "outlive my worker"}).json()
                running = wait_until(
                    lambda: (lambda j: j if j["progress"] > 12 else None)(
                        http.get(f"/api/status/{job['id']}").json()
                    ),
                    120,
                    "the prompt to run",
                )
                os.kill(first.pid, signal.SIGKILL)
                first.wait()
                second = Replica(env, tmp_path / "replica-2.log").start()
                try:
                    done = finished(http, job["id"], 180)
                finally:
                    second.stop()
        finally:
            first.stop()
    assert done["state"] == "completed" and done["attempt"] == 2, done
    prompt_id = running["result"]["comfyui"]["prompt_id"]
    assert done["result"]["comfyui"]["prompt_id"] == prompt_id  # followed, not rendered again
    assert prompts_of(comfyui_process, job["id"]) == [prompt_id]


def prompts_of(comfyui: ComfyUIProcess, job_id: str) -> list[str]:
    """The prompts ComfyUI has run for a job (their graphs write under its prefix)."""
    history = httpx.get(f"{comfyui.url}/history", timeout=10).json()
    return [
        prompt_id
        for prompt_id, entry in history.items()
        if job_id in json.dumps(entry["prompt"][2])
    ]


def comfyui_queue(comfyui: ComfyUIProcess) -> int:
    """Prompts ComfyUI is running or holds in its queue."""
    queue = httpx.get(f"{comfyui.url}/queue", timeout=10).json()
    return len(queue["queue_running"]) + len(queue["queue_pending"])


def test_health_and_metrics_show_the_comfyui_the_workers_use(
    generating: Server, comfyui_process: ComfyUIProcess
) -> None:
    # The earlier tests' prompts are done; /health reports what the last probe saw, so its
    # queue figure follows ComfyUI's own within a probe or two.
    wait_until(lambda: comfyui_queue(comfyui_process) == 0, 60, "ComfyUI's queue to empty")
    with generating.client() as http:

        def idle_engines() -> list[dict[str, Any]] | None:
            engines = http.get("/health").json().get("engines")
            return engines if engines and engines[0]["queue"] == 0 else None

        (comfyui,) = wait_until(idle_engines, 3 * PROBE_INTERVAL, "/health: ComfyUI idle")
        assert comfyui["engine"] == "comfyui" and comfyui["url"] == comfyui_process.url
        assert comfyui["up"] is True and comfyui["version"] == "0.3.64"
        assert comfyui["workers"] == 1
        metrics = http.get("/metrics").text
    line = f'myspinbot_engine_up{{engine="comfyui",server="{comfyui_process.url}"}} 1.0'
    assert line in metrics
