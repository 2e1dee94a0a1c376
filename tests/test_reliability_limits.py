"""Backpressure (a cap on queued jobs) and retention running in the background."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from reliability_support import api_server, reliability_env
from support import assert_api_error, train_files, wait_until

pytestmark = pytest.mark.slow


def test_a_full_queue_answers_503_with_retry_after(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = reliability_env(data, None, MYSPINBOT_INPROCESS_WORKERS="0", MYSPINBOT_QUEUE_CAP="3")
    with api_server(data, env) as server, server.client() as http:
        accepted = [http.post("/api/generate", json={"prompt": f"p{i}"}) for i in range(3)]
        assert [r.status_code for r in accepted] == [202, 202, 202]
        refused = http.post("/api/generate", json={"prompt": "one too many"})
        error = assert_api_error(refused, 503, "queue_full")
        assert "full" in error["message"]
        assert int(refused.headers["retry-after"]) > 0
        assert len(http.get("/api/jobs").json()["jobs"]) == 3  # nothing half-created
        # The cap counts waiting jobs: one cancelled, one more fits.
        http.post(f"/api/jobs/{accepted[0].json()['id']}/cancel")
        assert http.post("/api/generate", json={"prompt": "fits now"}).status_code == 202
        # The other queue has its own cap.
        assert http.post("/api/train", files=train_files(1)).status_code == 202


def test_retention_in_the_background_spares_queued_and_active_jobs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = reliability_env(
        data,
        None,
        MYSPINBOT_MAINTENANCE_INTERVAL="0.05",  # retention every 30 intervals: 1.5 s
        MYSPINBOT_RETENTION_MAX_JOBS="2",
        MYSPINBOT_WORKER_THREADS="4",
        MYSPINBOT_MOCK_STEPS="10",
        MYSPINBOT_MOCK_STEP_SECONDS="0.3",  # 3 s jobs: a retention pass sees them active
        MYSPINBOT_RETRY_BASE_SECONDS="600",  # a transient failure waits, queued, for minutes
    )
    with api_server(data, env) as server, server.client() as http:

        def post(prompt: str) -> str:
            return http.post("/api/generate", json={"prompt": prompt}).json()["id"]

        def state(job_id: str) -> str:
            response = http.get(f"/api/status/{job_id}")
            return "gone" if response.status_code == 404 else response.json()["state"]

        waiting = post("#fault:transient: waits for its retry")  # the oldest job of all
        wait_until(lambda: "retrying" in http.get(f"/api/status/{waiting}").json()["message"])
        old = [post(f"finished {i}") for i in range(3)]
        wait_until(lambda: all(state(j) in ("completed", "gone") for j in old), 30)
        running = post("active while retention runs")
        wait_until(lambda: state(running) == "active", 10)
        wait_until(lambda: state(old[0]) == "gone", 10, "retention to remove the oldest")
        assert state(running) == "active" and state(waiting) == "queued"
        assert [state(j) for j in old] == ["gone", "completed", "completed"]
        artifacts = data / "artifacts"
        assert not (artifacts / old[0]).exists() and (artifacts / old[2]).exists()
        wait_until(lambda: state(running) == "completed", 15)
        wait_until(lambda: state(old[1]) == "gone", 10, "retention to make room again")
        assert state(waiting) == "queued"
        listed: list[dict[str, Any]] = http.get("/api/jobs").json()["jobs"]
        assert [j["id"] for j in listed] == [running, old[2], waiting]
