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
    of_type,
    queue_left,
    sampler_prompt,
    types,
    wait_until,
)
from websockets.exceptions import ConnectionClosed


def post(server, prompt: dict, **body) -> httpx.Response:
    return httpx.post(f"{server.url}/prompt", json={"prompt": prompt, **body}, timeout=10)


def test_http_faults_answer_the_next_requests_then_stop(tmp_path):
    with comfyui_standin(tmp_path, http_faults=(("/system_stats", 502, 1),)) as server:
        assert httpx.get(f"{server.url}/system_stats").status_code == 502
        assert httpx.get(f"{server.url}/system_stats").status_code == 200
        server.fault("http", path="/prompt", status=503, count=2)
        first, second = (
            post(server, SMOKE_PROMPT),
            httpx.post(f"{server.url}/api/prompt", json={"prompt": SMOKE_PROMPT}),
        )
        assert first.status_code == second.status_code == 503
        assert first.text.startswith("503 Service Unavailable")
        assert post(server, SMOKE_PROMPT).status_code == 200


def test_a_failing_class_fails_every_run(tmp_path):
    with comfyui_standin(tmp_path, fail_classes=("ImageInvert",)) as server:
        client_id = uuid.uuid4().hex
        with Socket(server.ws_url(client_id)) as ws:
            ws.next()
            for _ in range(2):
                prompt_id = post(server, SMOKE_PROMPT, client_id=client_id).json()["prompt_id"]
                frames = ws.until_done(prompt_id)
                assert "execution_error" in types(frames)


def test_closing_the_sockets_drops_the_connection_without_a_close_frame(tmp_path):
    with comfyui_standin(tmp_path) as server, Socket(server.ws_url("c1")) as ws:
        ws.next()
        assert server.fault("close_sockets") == {"closed": 1}
        with pytest.raises(ConnectionClosed) as closed:
            ws.next()
        assert closed.value.rcvd is None  # no close frame: an abnormal closure (1006)


def test_a_silent_server_keeps_running_prompts_but_sends_nothing(tmp_path):
    with (
        comfyui_standin(tmp_path, models=SAMPLER_MODELS, step_seconds=0.01) as server,
        Socket(server.ws_url("quiet")) as ws,
        httpx.Client(base_url=server.url) as http,
    ):
        ws.next()
        server.fault("silence", on=True)
        prompt_id = post(server, sampler_prompt(steps=3), client_id="quiet").json()["prompt_id"]
        wait_until(lambda: http.get(f"/history/{prompt_id}").json() != {})
        server.fault("silence", on=False)
        http.post("/queue", json={"clear": True})  # any broadcast now arrives
        (frame,) = ws.until(queue_left(0))
        assert frame["type"] == "status" and len(ws.frames) == 2


def test_a_restart_keeps_the_port_and_files_but_forgets_history(tmp_path):
    with comfyui_standin(tmp_path) as server:
        port = server.port
        prompt_id = None
        with Socket(server.ws_url("r")) as ws:
            ws.next()
            prompt_id = post(server, SMOKE_PROMPT, client_id="r").json()["prompt_id"]
            ws.until_done(prompt_id)
        server.restart()
        assert server.port == port
        assert httpx.get(f"{server.url}/history/{prompt_id}").json() == {}
        assert (server.base_dir / "output/smoke/clip_00001_.mp4").exists()
        with Socket(server.ws_url("r")) as ws:
            ws.next()
            prompt_id = post(server, SMOKE_PROMPT, client_id="r").json()["prompt_id"]
            frames = ws.until_done(prompt_id)
        assert {d for d in [f["data"].get("node") for f in frames if f["type"] == "executing"]} > {
            None
        }
        assert (server.base_dir / "output/smoke/clip_00002_.mp4").exists()


def test_sigterm_stops_it_with_exit_code_0(tmp_path):
    with comfyui_standin(tmp_path) as server:
        assert server.stop() == 0


def test_2026_jobs_list_detail_and_cancel(tmp_path):
    options = {"generation": "2026", "models": SAMPLER_MODELS, "step_seconds": 0.02}
    with (
        comfyui_standin(tmp_path, **options) as server,
        Socket(server.ws_url("jobs")) as ws,
        httpx.Client(base_url=server.url) as http,
    ):
        ws.next()
        done = post(server, SMOKE_PROMPT, client_id="jobs").json()["prompt_id"]
        ws.until_done(done)
        running = str(uuid.uuid4())
        post(server, sampler_prompt(steps=100), client_id="jobs", prompt_id=running)
        ws.until(of_type("progress"))
        waiting = post(server, sampler_prompt(steps=2, seed=9), client_id="jobs").json()[
            "prompt_id"
        ]
        listed = http.get("/api/jobs").json()
        statuses = {job["id"]: job["status"] for job in listed["jobs"]}
        assert statuses == {done: "completed", running: "in_progress", waiting: "pending"}
        assert listed["pagination"] == {
            "offset": 0,
            "limit": None,
            "total": 3,
            "has_more": False,
        }
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
        assert (
            http.get("/api/jobs", params={"status": "completed,failed"}).json()["pagination"][
                "total"
            ]
            == 1
        )
        assert http.get("/api/jobs", params={"limit": "0"}).status_code == 400
        assert http.get("/api/api/jobs").status_code == 200  # the upstream double prefix


def test_2026_jobs_routes_do_not_exist_in_2025(tmp_path):
    with comfyui_standin(tmp_path) as server:
        assert httpx.get(f"{server.url}/api/jobs").status_code == 404
