"""A job that kills its worker every time: the server restarts the worker, the job fails once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from reliability_support import reliability_env
from support import Server, wait_until

pytestmark = pytest.mark.slow


def restarts(server: Server, name: str) -> int:
    return len(re.findall(rf"process Sanic-{name}-0 exited with -9; restarting", server.log()))


def test_a_job_that_crashes_its_worker_fails_after_max_attempts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = reliability_env(data, None, MYSPINBOT_MAX_ATTEMPTS="3", MYSPINBOT_MOCK_STEPS="3")
    server = Server(data, int(env["MYSPINBOT_PORT"]), env)
    try:
        server.start()
        with server.client() as http:
            job = http.post("/api/generate", json={"prompt": "#fault:crash every time"}).json()

            def finished() -> dict | None:
                record = http.get(f"/api/status/{job['id']}").json()
                return record if record["state"] not in ("queued", "active") else None

            failed = wait_until(finished, 60, "the crashing job to end")
            assert failed["state"] == "failed", failed
            assert failed["attempt"] == 3
            assert failed["error"]["code"] == "worker_lost"
            assert "3 attempts" in failed["error"]["message"]
            # Each crash was a real SIGKILL of the managed worker, and each was restarted.
            wait_until(lambda: restarts(server, "Worker-generate-0") == 3, 15, "third restart")
            wait_until(
                lambda: http.get("/health").json()["workers"]["generate"] == 1,
                30,
                "the restarted worker to report in",
            )
            ok = http.post("/api/generate", json={"prompt": "after the storm"}).json()
            wait_until(
                lambda: http.get(f"/api/status/{ok['id']}").json()["state"] == "completed",
                30,
                "a healthy job on the restarted worker",
            )
            # It never looped: still three attempts, no further crash.
            assert http.get(f"/api/status/{job['id']}").json() == failed
            assert restarts(server, "Worker-generate-0") == 3
            assert "Worker-train-0-0 exited" not in server.log()
    finally:
        server.stop()
    assert server.proc is not None and server.proc.returncode == 0
