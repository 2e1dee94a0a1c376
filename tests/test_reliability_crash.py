"""A pipeline that crashes its process takes the one-process server with it; a restart loses
nothing, and a job that crashes it every time fails after MYSPINBOT_MAX_ATTEMPTS runs."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from reliability_support import reliability_env
from support import Server, processes_using, train_files, wait_until

pytestmark = pytest.mark.slow


def crash_job_finished(server: Server, job_id: str) -> bool:
    """True once the crash job has failed; raises nothing while the server is going down."""
    try:
        state = httpx.get(f"{server.url}/api/status/{job_id}", timeout=2).json()["state"]
    except httpx.HTTPError:
        return False
    return state == "failed"


def run_until_crash_or(server: Server, job_id: str) -> int | None:
    """Start the server; return its exit code if it crashes, None once the job has failed."""
    try:
        server.start()
    except (AssertionError, httpx.HTTPError):  # it may crash before it is fully up
        assert server.proc is not None and server.proc.wait(15) is not None, server.log()
        return server.proc.returncode
    wait_until(
        lambda: server.proc.poll() is not None or crash_job_finished(server, job_id),
        60,
        "a crash, or the crash job to fail",
    )
    return server.proc.poll()


def test_a_crash_takes_the_server_down_and_restarts_lose_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = reliability_env(data, None, MYSPINBOT_MAX_ATTEMPTS="3", MYSPINBOT_MOCK_STEPS="3")
    port = int(env["MYSPINBOT_PORT"])
    # Accept the jobs with no worker running, so the crash job is first in its queue.
    accepting = Server(data, port, {**env, "MYSPINBOT_INPROCESS_WORKERS": "0"})
    accepting.start()
    with accepting.client() as http:
        crash = http.post("/api/generate", json={"prompt": "#fault:crash every time"}).json()
        others: list[dict[str, Any]] = [
            http.post("/api/generate", json={"prompt": f"bystander {i}"}).json() for i in range(3)
        ]
        others += [http.post("/api/train", files=train_files(1)).json() for _ in range(2)]
    assert accepting.stop() == 0

    crashes = 0
    while True:
        server = Server(data, port, env)  # the restart a service manager would do
        code = run_until_crash_or(server, crash["id"])
        if code is None:
            break
        # The whole process died of the pipeline's SIGKILL, and its Redis went with it.
        assert code == -signal.SIGKILL, server.log()
        wait_until(lambda: not processes_using(data), 15, "the embedded Redis to exit")
        crashes += 1
        assert crashes <= 3, "the crash job ran more often than MYSPINBOT_MAX_ATTEMPTS"

    try:
        with server.client() as http:
            failed = http.get(f"/api/status/{crash['id']}").json()
            assert crashes == 3
            assert failed["state"] == "failed" and failed["attempt"] == 3
            assert failed["error"]["code"] == "worker_lost"
            assert "3 attempts" in failed["error"]["message"]

            # The generate bystanders queue behind the crash job on its one worker, so no crash
            # finds them running: each completes. The training jobs run on their own worker
            # beside it, and a crash costs whatever attempt is running in the process (README:
            # what a crash costs): each completes, or fails worker_lost after its attempts.
            last: list[dict[str, Any]] = []

            def all_final() -> list[dict[str, Any]] | None:
                last[:] = [http.get(f"/api/status/{job['id']}").json() for job in others]
                return last if all(r["state"] in ("completed", "failed") for r in last) else None

            try:
                records = wait_until(all_final, 60, "every other job to finish")
            except AssertionError as late:
                states = [(r["id"], r["state"], r["attempt"], r.get("message")) for r in last]
                raise AssertionError(f"{late}: {states}\n{server.log()}") from None
            for record in records[:3]:
                assert record["state"] == "completed" and record["artifacts"], record
            for record in records[3:]:
                lost = record["state"] == "failed" and record["attempt"] == 3
                assert (record["state"] == "completed" and record["artifacts"]) or (
                    lost and record["error"]["code"] == "worker_lost"
                ), record
            metrics = http.get("/metrics").text
            assert 'myspinbot_jobs_finished_total{queue="generate",state="completed"} 3.0' in (
                metrics
            )
            assert 'myspinbot_jobs_finished_total{queue="generate",state="failed"} 1.0' in metrics
            train = {
                state: sum(r["state"] == state for r in records[3:])
                for state in ("completed", "failed")
            }
            for state, count in train.items():
                line = f'myspinbot_jobs_finished_total{{queue="train",state="{state}"}} {count}.0'
                assert count == 0 or line in metrics, (line, metrics)
    finally:
        assert server.stop() == 0
