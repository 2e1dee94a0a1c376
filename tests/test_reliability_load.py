"""Thousands of jobs through the API, several replicas: every accepted job completes once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from reliability_support import (
    ChannelLog,
    api_server,
    jobs,
    live_workers,
    redis_server,
    reliability_env,
    replicas,
)
from support import wait_until

from myspinbot.jobs import keys
from myspinbot.jobs.queues import queue_key

pytestmark = pytest.mark.slow

JOBS = 2000
CONCURRENCY = 32
REPLICAS = 3


async def submit_all(url: str, count: int) -> list[str]:
    """POST `count` jobs with at most CONCURRENCY in flight; every one must be accepted."""
    limit = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:

        async def one(number: int) -> str:
            async with limit:
                response = await http.post("/api/generate", json={"prompt": f"load {number}"})
            assert response.status_code == 202, response.text
            return response.json()["id"]

        return await asyncio.gather(*(one(n) for n in range(count)))


def test_thousands_of_jobs_complete_exactly_once(redis_binary: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with redis_server(redis_binary, tmp_path / "redis") as store:
        env = reliability_env(
            data,
            store.url,
            MYSPINBOT_INPROCESS_WORKERS="0",
            MYSPINBOT_MOCK_STEPS="1",
            MYSPINBOT_MOCK_STEP_SECONDS="0",
            MYSPINBOT_LEASE_SECONDS="10",  # a busy 2-core box must not look like dead workers
        )
        client = store.client()
        with api_server(data, env) as server, replicas(env, tmp_path, REPLICAS, threads=2):
            wait_until(lambda: live_workers(client) == REPLICAS, 30, "replicas")
            events = ChannelLog(store.url)  # WS clients that fall behind are dropped by design
            began = time.monotonic()
            with ThreadPoolExecutor(1) as pool:  # a thread of its own: no event loop running
                accepted = pool.submit(lambda: asyncio.run(submit_all(server.url, JOBS))).result()
            submitted = time.monotonic() - began
            assert len(accepted) == JOBS and len(set(accepted)) == JOBS

            def finished() -> bool:
                return client.zcard(keys.index("generate", "completed")) >= JOBS

            wait_until(finished, 180, "every job to complete")
            elapsed = time.monotonic() - began
            wait_until(lambda: len(events.done_ids()) >= JOBS, 30, "every done event")
            events.close()

        records = jobs(client, accepted)
        assert all(r is not None and r["state"] == "completed" for r in records)
        assert {r["id"] for r in records if r} == set(accepted)
        attempts = Counter(r["attempt"] for r in records if r)
        assert attempts == {1: JOBS}, attempts
        for state in ("queued", "active", "failed", "cancelled"):
            assert client.zcard(keys.index("generate", state)) == 0, state
        assert client.llen(queue_key("generate")) == 0
        assert client.zcard(keys.LEASES) == 0 and client.zcard(keys.RETRIES) == 0
        done = Counter(events.done_ids())
        assert set(done) == set(accepted) and max(done.values()) == 1
        assert client.hget(keys.FINISHED_COUNTS, "generate:completed") == str(JOBS)
        client.close()
    print(f"\n{JOBS} jobs: submitted in {submitted:.1f}s, all completed in {elapsed:.1f}s")
