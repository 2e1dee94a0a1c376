"""Redis dies mid-load (embedded and external): every accepted job finishes exactly once."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from reliability_support import (
    EventLog,
    RedisServer,
    api_server,
    jobs,
    live_workers,
    redis_server,
    reliability_env,
    replicas,
)
from support import Server, assert_api_error, wait_until

from myspinbot.jobs import keys

pytestmark = pytest.mark.slow

LOAD = 90  # jobs submitted while Redis goes away and comes back
KILL_AFTER = 30  # accepted jobs before Redis is killed
CLIENT_TIMEOUT = 10.0


class Load:
    """Submits jobs from two threads; records what was accepted and how the rest was refused."""

    def __init__(self, url: str, total: int) -> None:
        self.url, self.total = url, total
        self.accepted: list[str] = []
        self.refused: list[httpx.Response] = []
        self.slowest = 0.0
        self._lock = threading.Lock()
        self._sent = 0
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(2)]

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def join(self) -> None:
        for thread in self._threads:
            thread.join(120)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=CLIENT_TIMEOUT) as http:
            while True:
                with self._lock:
                    if self._sent >= self.total:
                        return
                    self._sent += 1
                    number = self._sent
                began = time.monotonic()
                response = http.post("/api/generate", json={"prompt": f"load {number}"})
                with self._lock:
                    self.slowest = max(self.slowest, time.monotonic() - began)
                    if response.status_code == 202:
                        self.accepted.append(response.json()["id"])
                    else:
                        self.refused.append(response)
                if response.status_code != 202:
                    time.sleep(0.05)  # a client backing off after a 503

    def count(self) -> int:
        with self._lock:
            return len(self.accepted)


def check_outcome(
    load: Load, events: EventLog, records: Callable[[list[str]], list[dict[str, Any] | None]]
) -> None:
    assert len(load.accepted) >= KILL_AFTER
    for response in load.refused:  # refused politely, never a 500 or a hang
        assert_api_error(response, 503)
        assert response.headers["retry-after"]
    assert load.slowest < CLIENT_TIMEOUT
    assert len(set(load.accepted)) == len(load.accepted)

    def all_done() -> list[dict[str, Any]] | None:
        found = records(load.accepted)
        return found if all(r and r["state"] == "completed" for r in found) else None  # type: ignore[misc]

    done = wait_until(all_done, 90, "every accepted job to complete")
    assert {r["id"] for r in done} == set(load.accepted)
    assert all(1 <= r["attempt"] <= 3 for r in done), Counter(r["attempt"] for r in done)
    # Each done event is one finish write: fencing allows one per job, ever.
    wait_until(lambda: events.count("snapshot") >= 2, 30, "a fresh snapshot after reconnecting")
    seen = Counter(events.done_ids())
    assert max(seen.values(), default=1) == 1, [j for j, n in seen.items() if n > 1]


def kill_mid_load(load: Load, kill: Callable[[], None]) -> None:
    wait_until(lambda: load.count() >= KILL_AFTER, 60, "load to build up")
    kill()


def test_kill_9_of_the_embedded_redis_mid_load(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = reliability_env(
        data,
        None,
        MYSPINBOT_INPROCESS_WORKERS="2",
        MYSPINBOT_WORKER_THREADS="2",
        MYSPINBOT_MOCK_STEPS="4",
    )
    with api_server(data, env) as server:
        events = EventLog(server.ws_url)
        load = Load(server.url, LOAD).start()
        pidfile = data / "redis" / "redis.pid"
        before = int(pidfile.read_text())
        kill_mid_load(load, lambda: os.kill(before, signal.SIGKILL))
        wait_until(
            lambda: pidfile.exists() and pidfile.read_text().strip() not in ("", str(before)),
            20,
            "the supervisor to restart redis-server",
        )
        load.join()

        def records(ids: list[str]) -> list[dict[str, Any] | None]:
            with server.client() as http:
                return [http.get(f"/api/status/{i}").json() for i in ids]

        try:
            check_outcome(load, events, records)
            assert "redis-server restarted" in server.log()
            with server.client() as http:
                for state in ("queued", "active"):
                    listed = http.get("/api/jobs", params={"state": state})
                    assert listed.status_code == 200, listed.text
                    assert listed.json()["jobs"] == [], state
        finally:
            events.close()


def test_restart_of_an_external_redis_mid_load(redis_binary: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with redis_server(redis_binary, tmp_path / "redis") as store:
        env = reliability_env(data, store.url, MYSPINBOT_INPROCESS_WORKERS="0")
        with (
            api_server(data, env) as server,
            replicas(env, tmp_path, 2, threads=2),
        ):
            client = store.client()
            wait_until(lambda: live_workers(client) == 2, 30, "two replicas")
            events = EventLog(server.ws_url)
            load = Load(server.url, LOAD).start()

            def restart() -> None:
                store.kill()
                time.sleep(0.5)  # an outage, not a blip
                store.start()

            kill_mid_load(load, restart)
            load.join()
            try:
                check_outcome(load, events, lambda ids: jobs(client, ids))
                for state in ("queued", "active"):
                    assert client.zcard(keys.index("generate", state)) == 0
                assert client.zcard(keys.LEASES) == 0
            finally:
                events.close()
                client.close()


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    response = call()
    return response, time.monotonic() - began


def assert_outage_answers(server: Server, job_id: str, within: float, every: bool) -> None:
    with httpx.Client(base_url=server.url, timeout=CLIENT_TIMEOUT) as http:
        calls = [
            lambda: http.post("/api/generate", json={"prompt": "during the outage"}),
            lambda: http.get(f"/api/status/{job_id}"),
            lambda: http.get("/api/jobs"),
            lambda: http.post(f"/api/jobs/{job_id}/cancel"),
        ]
        for call in calls if every else calls[:1]:
            response, took = timed(call)
            assert_api_error(response, 503, "redis_unavailable")
            assert int(response.headers["retry-after"]) > 0
            assert took < within, took
        response, took = timed(lambda: http.get("/health"))
        assert response.status_code == 503 and took < 4.0, took
        body = response.json()
        assert body["status"] == "degraded" and body["redis"] == "unreachable", body
        assert response.headers["retry-after"]


def test_api_answers_503_while_redis_is_down_or_hung(redis_binary: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = RedisServer(redis_binary, tmp_path / "redis").start()
    env = reliability_env(data, store.url, MYSPINBOT_INPROCESS_WORKERS="0")
    try:
        with api_server(data, env) as server:
            events = EventLog(server.ws_url)
            wait_until(lambda: events.count("snapshot") == 1, 10, "first snapshot")
            with server.client() as http:
                job_id = http.post("/api/generate", json={"prompt": "before"}).json()["id"]

            store.kill()  # down: connections refused at once
            assert_outage_answers(server, job_id, within=3.0, every=True)
            store.start()
            with server.client() as http:
                wait_until(lambda: http.get("/health").status_code == 200, 15, "health back")
                assert http.get(f"/api/status/{job_id}").json()["state"] == "queued"
            wait_until(lambda: events.count("snapshot") == 2, 15, "a snapshot after the outage")
            assert job_id in [j["id"] for j in events.snapshot()[-1]["jobs"]]

            assert store.proc is not None
            store.proc.send_signal(signal.SIGSTOP)  # hung: connects, never answers
            try:
                assert_outage_answers(server, job_id, within=CLIENT_TIMEOUT - 2, every=False)
            finally:
                store.proc.send_signal(signal.SIGCONT)
            with server.client() as http:
                wait_until(lambda: http.get("/health").status_code == 200, 15, "health back")
            events.close()
    finally:
        store.stop()
