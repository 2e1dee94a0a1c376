"""The two systems under test (MySpinBot and seed-node), each with its private Redis."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import procs
from bench.procs import BenchError, Proc
from myspinbot.server.redis_binary import choose_server

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "bench" / ".cache"


def venv_python() -> str:
    """The project's venv interpreter, else the one running the bench."""
    candidate = REPO / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


class Redis:
    """A private, non-persistent redis-server on 127.0.0.1, pinned with the servers."""

    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.port = procs.free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        cmd = [
            *procs.server_prefix(),
            choose_server().path,  # the server the embedded Redis would run
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--maxclients",
            "20000",
        ]
        self.proc: Proc | None = procs.spawn(
            f"redis:{name}", cmd, cwd=workdir, env=dict(os.environ), log=workdir / "redis.log"
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.command("PING") == b"+PONG":
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.popen.poll() is not None:
                raise BenchError(f"redis for {name} did not start:\n{self.proc.log_tail()}")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self, *args: str) -> bytes:
        """Send one command, return the first reply line (enough for PING/FLUSHALL/DBSIZE)."""
        payload = f"*{len(args)}\r\n".encode()
        for a in args:
            b = a.encode()
            payload += b"$%d\r\n%s\r\n" % (len(b), b)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(payload)
            buf = b""
            while not buf.endswith(b"\r\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
        return buf.strip()

    def flushall(self) -> None:
        reply = self.command("FLUSHALL")
        if reply != b"+OK":
            raise BenchError(f"FLUSHALL on {self.name}'s redis answered {reply!r}")

    def stop(self) -> None:
        procs.stop(self.proc, grace=5)
        self.proc = None


@dataclass(frozen=True)
class Spec:
    """How to start one system."""

    key: str
    label: str
    cwd: Path
    cmd: list[str]
    env: dict[str, str]
    startup_timeout: float


# Matched to seed-node: one worker of concurrency 1 per queue, nothing logged per request
# (seed-node logs at `warn`), no queue cap and no count-based pruning of finished jobs
# (seed-node has neither; BullMQ keeps completed jobs for 7 days).
OURS_ENV = {
    "MYSPINBOT_INPROCESS_WORKERS": "1",
    "MYSPINBOT_HTTP_WORKERS": "1",
    "MYSPINBOT_WORKER_THREADS": "1",
    "MYSPINBOT_BENCH_ROUTES": "1",
    "MYSPINBOT_ACCESS_LOG": "false",
    "MYSPINBOT_LOG_LEVEL": "warning",
    "MYSPINBOT_QUEUE_CAP": "100000000",
    "MYSPINBOT_RETENTION_MAX_JOBS": "0",
    "PYTHONUNBUFFERED": "1",
}


def ours_spec(cmd: list[str] | None = None, env: dict[str, str] | None = None) -> Spec:
    cmd = cmd or [venv_python(), str(REPO / "app.py")]
    return Spec("ours", "MySpinBot", REPO, cmd, {**OURS_ENV, **(env or {})}, 60.0)


def seed_spec(seed_dir: Path) -> Spec:
    node = shutil.which("node") or "node"
    return Spec(
        "seed",
        "seed-node",
        seed_dir,
        [node, "src/server.js"],
        {
            "NODE_ENV": "production",
            "MYSPINBOT_INPROCESS_WORKERS": "1",
            "MYSPINBOT_WORKER_CONCURRENCY": "1",
            "MYSPINBOT_LOG_LEVEL": "warn",
        },
        30.0,
    )


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """One blocking GET on 127.0.0.1."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class System:
    """One running instance of a system: its server tree and its private Redis."""

    def __init__(self, spec: Spec, redis: Redis, workdir: Path) -> None:
        self.spec = spec
        self.redis = redis
        self.workdir = workdir
        self.port = 0
        self.proc: Proc | None = None
        self.start_seconds = 0.0
        self.affinity: dict[int, list[int]] = {}

    @property
    def key(self) -> str:
        return self.spec.key

    def roots(self) -> list[int]:
        """Root pids whose trees make up this system's memory (server and Redis)."""
        out = [p.pid for p in (self.proc, self.redis.proc) if p is not None]
        return out

    def pids(self) -> tuple[int, int]:
        """(server, redis-server) pids of the running system."""
        assert self.proc is not None and self.redis.proc is not None
        return self.proc.pid, self.redis.proc.pid

    def env(self, mock_steps: int, mock_step_seconds: float, data_dir: Path) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("MYSPINBOT_") and k not in ("REDIS_URL", "NODE_ENV")
        }
        env.update(self.spec.env)
        env.update(
            {
                "REDIS_URL": self.redis.url,
                "MYSPINBOT_HOST": "127.0.0.1",
                "MYSPINBOT_PORT": str(self.port),
                "MYSPINBOT_DATA_DIR": str(data_dir),
                "MYSPINBOT_MOCK_STEPS": str(mock_steps),
                "MYSPINBOT_MOCK_STEP_SECONDS": repr(float(mock_step_seconds)),
            }
        )
        return env

    def start(self, mock_steps: int, mock_step_seconds: float) -> None:
        """Flush its Redis, start the server pinned to the server CPU, wait for /health 200."""
        self.redis.flushall()
        self.port = procs.free_port()
        data_dir = self.workdir / f"data-{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [*procs.server_prefix(), *self.spec.cmd]
        t0 = time.monotonic()
        self.proc = procs.spawn(
            self.spec.label,
            cmd,
            cwd=self.spec.cwd,
            env=self.env(mock_steps, mock_step_seconds, data_dir),
            log=self.workdir / f"{self.key}.log",
        )
        self._wait_healthy(t0 + self.spec.startup_timeout)
        self.start_seconds = time.monotonic() - t0
        time.sleep(0.5)  # let managed processes finish booting before pinning and sampling
        pids = self.proc.refresh()
        if procs.can_pin():
            self.affinity = procs.pin_tree(pids, procs.SERVER_CPU)

    def _wait_healthy(self, deadline: float) -> None:
        assert self.proc is not None
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.popen.poll() is not None:
                raise BenchError(
                    f"{self.spec.label} exited with {self.proc.popen.returncode} "
                    f"before /health answered:\n{self.proc.log_tail()}"
                )
            try:
                status, body = http_get(self.port, "/health", timeout=1.0)
                if status == 200:
                    self.proc.refresh()
                    return
                last = f"{status} {body[:200]!r}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.1)
        raise BenchError(
            f"{self.spec.label}: /health not 200 within "
            f"{self.spec.startup_timeout:.0f}s (last: {last}):\n"
            f"{self.proc.log_tail()}"
        )

    def stop(self) -> None:
        procs.stop(self.proc)
        self.proc = None
