"""Helpers for the fault-injection tests: a Redis we can kill, worker replicas, event logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from support import ROOT, Server, free_port, server_env, wait_until
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from myspinbot.jobs import keys, scripts
from myspinbot.jobs.messages import job_message
from myspinbot.jobs.model import new_job, new_job_id, now_ms
from myspinbot.jobs.queues import queue_key

LEASE = "2"  # seconds: short, so a lost worker is noticed quickly
INTERVAL = "0.2"  # seconds between maintenance rounds


class RedisServer:
    """A private redis-server on a unix socket, with append-only persistence, restartable."""

    def __init__(self, binary: str, folder: Path) -> None:
        self.binary = binary
        self.folder = folder
        self.socket = folder / "redis.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> RedisServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [
                self.binary,
                *("--port", "0"),
                *("--unixsocket", str(self.socket)),
                *("--unixsocketperm", "700"),
                *("--save", ""),
                *("--appendonly", "yes"),
                *("--appendfsync", "everysec"),
                *("--dir", str(self.folder)),
                *("--logfile", str(self.folder / "redis.log")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self.ping, 20, "redis-server to answer PING")
        return self

    def ping(self) -> bool:
        try:
            with redis.Redis.from_url(self.url, socket_timeout=1) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """kill -9: no shutdown, no final fsync."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5, decode_responses=True)


@contextmanager
def redis_server(binary: str, folder: Path) -> Iterator[RedisServer]:
    server = RedisServer(binary, folder).start()
    try:
        yield server
    finally:
        server.stop()


def reliability_env(data_dir: Path, redis_url: str | None, **overrides: str) -> dict[str, str]:
    """A server/replica environment with short leases and fault markers on."""
    env = server_env(
        data_dir,
        free_port(),
        MYSPINBOT_LEASE_SECONDS=LEASE,
        MYSPINBOT_MAINTENANCE_INTERVAL=INTERVAL,
        MYSPINBOT_MOCK_FAULTS="true",
        MYSPINBOT_ACCESS_LOG="false",
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(overrides)
    return env


@contextmanager
def api_server(data_dir: Path, env: dict[str, str]) -> Iterator[Server]:
    server = Server(data_dir, int(env["MYSPINBOT_PORT"]), env)
    try:
        yield server.start()  # stopped below even when it never became ready
    finally:
        server.stop()


@dataclass
class Replica:
    """`python -m myspinbot.cli worker --queue Q`, as a replica on another host would run it."""

    env: dict[str, str]
    log_path: Path
    queue: str = "generate"
    threads: int = 1
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Replica:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "myspinbot.cli", "worker", "--queue", self.queue]
            + ["--threads", str(self.threads)],
            cwd=ROOT,
            env=self.env,
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def wait(self, timeout: float = 20) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@contextmanager
def replicas(
    env: dict[str, str], folder: Path, count: int, **kwargs: Any
) -> Iterator[list[Replica]]:
    started = [
        Replica(env, folder / f"replica-{i}-{time.monotonic_ns()}.log", **kwargs).start()
        for i in range(count)
    ]
    try:
        yield started
    finally:
        for replica in started:
            replica.stop()


def live_workers(client: redis.Redis, queue: str = "generate") -> int:
    return int(client.zcount(keys.workers(queue), int(time.time() * 1000) - 10_000, "+inf"))


def job(client: redis.Redis, job_id: str) -> dict[str, Any]:
    raw = client.hget(keys.job(job_id), "doc")
    assert raw is not None, f"job {job_id} is gone"
    return json.loads(raw)


def jobs(client: redis.Redis, job_ids: list[str]) -> list[dict[str, Any] | None]:
    pipe = client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hget(keys.job(job_id), "doc")
    return [json.loads(raw) if raw else None for raw in pipe.execute()]


def wait_for_job(
    client: redis.Redis,
    job_id: str,
    predicate: Callable[[dict[str, Any]], bool],
    timeout: float = 30,
    message: str = "",
) -> dict[str, Any]:
    return wait_until(
        lambda: (lambda j: j if predicate(j) else None)(job(client, job_id)),
        timeout,
        message or f"job {job_id}",
    )


@dataclass
class EventLog:
    """A /ws client reading on its own thread, so the server never has to drop it."""

    url: str
    frames: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.conn = connect(self.url, open_timeout=10, max_size=None)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for message in self.conn:
                frame = json.loads(message)
                with self.lock:
                    self.frames.append(frame)
        except ConnectionClosed:
            pass

    def close(self) -> None:
        self.conn.close()
        self.thread.join(5)

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.frames)

    def count(self, kind: str) -> int:
        return sum(1 for f in self.snapshot() if f["type"] == kind)

    def done_ids(self) -> list[str]:
        return [f["job"]["id"] for f in self.snapshot() if f["type"] == "done"]


class ChannelLog:
    """Every event published on the Redis channel, read on a thread (the WS hub's source)."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=None)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(keys.EVENTS_CHANNEL)
        self.events: list[tuple[str, str]] = []  # (type, job id)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for message in self.pubsub.listen():
                event = json.loads(message["data"])
                self.events.append((event["type"], event["job"]["id"]))
        except (redis.ConnectionError, ValueError, AttributeError):
            pass  # closed

    def done_ids(self) -> list[str]:
        return [job_id for kind, job_id in list(self.events) if kind == "done"]

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()


def post_generate(http: Any, prompt: str) -> dict[str, Any]:
    response = http.post("/api/generate", json={"prompt": prompt})
    assert response.status_code == 202, response.text
    return response.json()


def create_job(
    client: redis.Redis, prompt: str = "a test", kind: str = "generate", created: int = 0
) -> str:
    """Queue a job the way the API does (record, indexes and message in one script)."""
    created = created or now_ms()
    job_id = new_job_id(created)
    job_input = {"prompt": prompt, "lora": None} if kind == "generate" else {"name": prompt}
    record = new_job(job_id, kind, job_input, created)  # type: ignore[arg-type]
    status, _ = client.register_script(scripts.CREATE)(
        keys=[keys.job(job_id)],
        args=[keys.PREFIX, job_id, kind, created, queue_key(kind)]
        + [job_message(kind, job_id), 1_000_000, "", 0, *scripts.fields(record)],
    )
    assert status in (b"ok", "ok"), status
    return job_id
