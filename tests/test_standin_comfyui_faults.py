"""The ComfyUI stand-in's fault knobs, restarts and the 2026 jobs API."""

from __future__ import annotations

import uuid

import httpx
import pytest
from standins import comfyui_standin
from standins.wire import (
    SAMPLER_MODELS,
    SMOKE_PROMPT,
    Socket,
    data_of,
    of_type,
    queue_left,
    sampler_prompt,
    types,
    wait_until,
)
from websockets.exceptions import ConnectionClosed


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    options = {
        "models": SAMPLER_MODELS,
        "step_seconds": 0.01,
        "http_faults": (("/extensions", 502, 1),),
        "fail_classes": ("PreviewImage",),
    }
    with comfyui_standin(tmp_path_factory.mktemp("faults"), **options) as server:
        yield server


@pytest.fixture(scope="module")
def comfy26(tmp_path_factory):
    options = {"generation": "2026", "models": SAMPLER_MODELS, "step_seconds": 0.02}
    with comfyui_standin(tmp_path_factory.mktemp("faults26"), **options) as server:
        yield server


@pytest.fixture(autouse=True)
def no_faults_left(request):
    yield
    for name in ("comfy", "comfy26"):
        if name in request.fixturenames:
            request.getfixturevalue(name).fault("clear")


def post(server, prompt: dict, **body) -> httpx.Response:
    return httpx.post(f"{server.url}/prompt", json={"prompt": prompt, **body}, timeout=10)


def test_http_faults_answer_the_next_requests_then_stop(comfy):
    assert httpx.get(f"{comfy.url}/extensions").status_code == 502  # armed on the command line
    assert httpx.get(f"{comfy.url}/extensions").status_code == 200
    comfy.fault("http", path="/prompt", status=503, count=2)
    first = post(comfy, SMOKE_PROMPT)
    second = httpx.post(f"{comfy.url}/api/prompt", json={"prompt": SMOKE_PROMPT})
    assert first.status_code == second.status_code == 503
    assert first.text.startswith("503 Service Unavailable")
    assert post(comfy, SMOKE_PROMPT).status_code == 200


def test_a_failing_class_fails_every_run(comfy):
    prompt = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 5},
        },
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }
    with Socket(comfy.ws_url("failing")) as ws:
        ws.next()
        for _ in range(2):
            prompt_id = post(comfy, prompt, client_id="failing").json()["prompt_id"]
            (error,) = data_of(ws.until_done(prompt_id), "execution_error")
            assert error["node_type"] == "PreviewImage"


def test_an_armed_node_error_is_used_up(comfy):
    comfy.fault(
        "node_error", class_type="ImageInvert", exception_type="RuntimeError", message="boom"
    )
    with Socket(comfy.ws_url("once")) as ws:
        ws.next()
        first = ws.until_done(post(comfy, SMOKE_PROMPT, client_id="once").json()["prompt_id"])
        second = ws.until_done(post(comfy, SMOKE_PROMPT, client_id="once").json()["prompt_id"])
    (error,) = data_of(first, "execution_error")
    assert error["exception_type"] == "RuntimeError" and error["exception_message"] == "boom\n"
    assert "execution_success" in types(second)


def test_closing_the_sockets_drops_the_connection_without_a_close_frame(comfy):
    with Socket(comfy.ws_url("c1")) as ws:
        ws.next()
        assert comfy.fault("close_sockets") == {"closed": 1}
        with pytest.raises(ConnectionClosed) as closed:
            ws.next()
        assert closed.value.rcvd is None  # no close frame: an abnormal closure (1006)


def test_a_silent_server_keeps_running_prompts_but_sends_nothing(comfy):
    with Socket(comfy.ws_url("quiet")) as ws, httpx.Client(base_url=comfy.url) as http:
        ws.next()
        comfy.fault("silence", on=True)
        prompt_id = post(comfy, sampler_prompt(steps=3), client_id="quiet").json()["prompt_id"]
        wait_until(lambda: http.get(f"/history/{prompt_id}").json() != {})
        comfy.fault("silence", on=False)
        http.post("/queue", json={"clear": True})  # any broadcast now arrives
        (frame,) = ws.until(queue_left(0))
        assert frame["type"] == "status" and len(ws.frames) == 2


def test_a_restart_keeps_the_port_and_files_but_forgets_history(tmp_path):
    with comfyui_standin(tmp_path) as server:
        port = server.port
        with Socket(server.ws_url("r")) as ws:
            ws.next()
            before = post(server, SMOKE_PROMPT, client_id="r").json()["prompt_id"]
            ws.until_done(before)
        server.restart()
        assert server.port == port
        assert httpx.get(f"{server.url}/history/{before}").json() == {}
        assert httpx.get(f"{server.url}/queue").json() == {"queue_running": [], "queue_pending": []}
        with Socket(server.ws_url("r")) as ws:
            ws.next()
            after = post(server, SMOKE_PROMPT, client_id="r").json()["prompt_id"]
            frames = ws.until_done(after)
        # Nothing is cached across a restart, and the counter rule sees the files still there.
        assert [d["node"] for d in data_of(frames, "executing")] == [
            "1",
            "2",
            "3",
            "4",
            "5",
            "6",
            None,
        ]
        assert (server.base_dir / "output/smoke/clip_00002_.mp4").exists()
        assert server.stop() == 0  # SIGTERM: a clean exit


def test_2026_jobs_list_detail_and_cancel(comfy26):
    server = comfy26
    with Socket(server.ws_url("jobs")) as ws, httpx.Client(base_url=server.url) as http:
        ws.next()
        done = post(server, SMOKE_PROMPT, client_id="jobs").json()["prompt_id"]
        ws.until_done(done)
        running = str(uuid.uuid4())
        post(server, sampler_prompt(steps=100), client_id="jobs", prompt_id=running)
        ws.until(of_type("progress"))
        waiting = post(server, sampler_prompt(2, seed=9), client_id="jobs").json()["prompt_id"]
        listed = http.get("/api/jobs").json()
        statuses = {job["id"]: job["status"] for job in listed["jobs"]}
        assert statuses == {done: "completed", running: "in_progress", waiting: "pending"}
        page = {"offset": 0, "limit": None, "total": 3, "has_more": False}
        assert listed["pagination"] == page
        detail = http.get(f"/api/jobs/{done}").json()
        assert detail["outputs_count"] == 2 and detail["preview_output"]["mediaType"] == "images"
        assert detail["workflow"]["prompt"]["6"]["class_type"] == "SaveVideo"
        assert http.get(f"/api/jobs/{uuid.uuid4()}").status_code == 404
        assert http.post(f"/api/jobs/{waiting}/cancel").json() == {"cancelled": True}
        assert http.post(f"/api/jobs/{running}/cancel").json() == {"cancelled": True}
        ws.until_done(running)
        assert http.post(f"/api/jobs/{done}/cancel").json() == {"cancelled": False}
        assert http.get(f"/api/jobs/{running}").json()["status"] == "cancelled"
        bad = http.post("/api/jobs/cancel", json={"job_ids": ["nope", 5]})
        assert bad.status_code == 400
        assert bad.json() == {
            "error": "job_ids contains invalid id(s)",
            "invalid_ids": ["nope", "5"],
        }
        finished = http.get("/api/jobs", params={"status": "completed,failed"}).json()
        assert finished["pagination"]["total"] == 1
        assert http.get("/api/jobs", params={"limit": "0"}).status_code == 400
        assert http.get("/api/api/jobs").status_code == 200  # the upstream double prefix


def test_the_jobs_routes_do_not_exist_in_2025(comfy):
    assert httpx.get(f"{comfy.url}/api/jobs").status_code == 404
