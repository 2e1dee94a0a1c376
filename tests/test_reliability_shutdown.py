"""Stopping the server mid-job leaves nothing active; the jobs finish after a restart."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
import redis
from reliability_support import api_server, jobs, redis_server, reliability_env
from support import train_files, wait_until

from myspinbot.jobs import keys
from myspinbot.jobs.queues import queue_key
from myspinbot.jobs.worker.runner import HANDED_BACK
from myspinbot.server.embedded_redis import EmbeddedRedis

pytestmark = pytest.mark.slow

LONG_JOBS = {"MYSPINBOT_MOCK_STEPS": "20", "MYSPINBOT_MOCK_STEP_SECONDS": "0.1"}


def submit_one_of_each(http: Any) -> list[str]:
    ids = [http.post("/api/generate", json={"prompt": f"running {i}"}).json()["id"] for i in (1, 2)]
    response = http.post("/api/train", files=train_files(1), data={"name": "running"})
    assert response.status_code == 202, response.text
    return [*ids, response.json()["id"]]


def all_running(http: Any, ids: list[str]) -> bool:
    records = [http.get(f"/api/status/{i}").json() for i in ids]
    return all(r["state"] == "active" and r["progress"] >= 5 for r in records)


def assert_handed_back(client: redis.Redis, ids: list[str]) -> None:
    for record in jobs(client, ids):
        assert record is not None
        assert record["state"] == "queued", record
        assert record["message"] == HANDED_BACK and record["attempt"] == 1
        assert record["resumed"] == 1
    for state in ("active",):
        for kind in ("generate", "train"):
            assert client.zcard(keys.index(kind, state)) == 0
    assert client.zcard(keys.LEASES) == 0
    assert client.llen(queue_key("generate")) >= 2 and client.llen(queue_key("train")) >= 1
    assert all(client.hget(keys.job(i), "handbacks") in ("1", b"1") for i in ids)


def finish_after_restart(data: Path, env: dict[str, str], ids: list[str]) -> None:
    with api_server(data, env) as server, server.client() as http:

        def completed() -> list[dict[str, Any]] | None:
            records = [http.get(f"/api/status/{i}").json() for i in ids]
            return records if all(r["state"] == "completed" for r in records) else None

        for record in wait_until(completed, 60, "the handed-back jobs to complete"):
            # A hand-back is not an attempt: the job finished on its first.
            assert record["attempt"] == 1 and record["resumed"] == 1 and record["error"] is None


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stopping_the_server_hands_active_jobs_back(
    sig: int, redis_binary: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with redis_server(redis_binary, tmp_path / "redis") as store:
        env = reliability_env(data, store.url, MYSPINBOT_WORKER_THREADS="2", **LONG_JOBS)
        with api_server(data, env) as server:
            with server.client() as http:
                ids = submit_one_of_each(http)
                wait_until(lambda: all_running(http, ids), 30, "three running jobs")
            assert server.stop(sig) == 0
        client = store.client()
        assert_handed_back(client, ids)
        client.close()
        finish_after_restart(data, env, ids)


def test_stopping_the_server_with_embedded_redis_persists_the_hand_back(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = reliability_env(data, None, MYSPINBOT_WORKER_THREADS="2", **LONG_JOBS)
    with api_server(data, env) as server:
        with server.client() as http:
            ids = submit_one_of_each(http)
            wait_until(lambda: all_running(http, ids), 30, "three running jobs")
        assert server.stop(signal.SIGTERM) == 0
    # Redis stopped last, after the workers had handed their jobs back: the AOF has it.
    embedded = EmbeddedRedis(data)
    embedded.start()
    try:
        client = redis.Redis.from_url(embedded.url, socket_timeout=5)
        assert_handed_back(client, ids)
        client.close()
    finally:
        embedded.stop()
    finish_after_restart(data, env, ids)
