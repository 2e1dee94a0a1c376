"""Test helpers: real servers in subprocesses, waiting on events, small real media files."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from websockets.sync.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[1]
DEADLINE = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float = DEADLINE, message: str = "") -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message or predicate}")
        time.sleep(0.02)


def assert_api_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    assert "Traceback" not in response.text
    return body["error"]


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (walking /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def processes_using(data_dir: Path) -> list[int]:
    """Pids whose command line or working directory mentions the data dir (orphans included)."""
    found = []
    marker = str(data_dir)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if (marker in cmdline or cwd.startswith(marker)) and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


@dataclass
class Server:
    data_dir: Path
    port: int
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    pids: set[int] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self, timeout: float = DEADLINE) -> Server:
        self.log_path = self.data_dir.parent / f"server-{self.port}-{time.monotonic_ns()}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "app.py"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_until(self._healthy, timeout, f"server on port {self.port} ({self.log_path})")
        # Start from a fully started server: every worker has acknowledged.
        wait_until(lambda: "MySpinBot is ready" in self.log(), timeout, "the ready line")
        if int(self.env.get("MYSPINBOT_INPROCESS_WORKERS", "1")) > 0:
            wait_until(self._workers_up, timeout, "in-process workers")
        self.pids = descendants(self.proc.pid)
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"server exited: {self.log()}")
        try:
            return httpx.get(self.url + "/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def _workers_up(self) -> bool:
        workers = httpx.get(self.url + "/health", timeout=2).json()["workers"]
        return all(count > 0 for count in workers.values())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self, sig: int = signal.SIGINT, timeout: float = DEADLINE) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.pids |= descendants(self.proc.pid)
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, **kwargs)


def server_env(data_dir: Path, port: int, **overrides: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MYSPINBOT_") and k not in ("REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")
    }
    env.update(
        MYSPINBOT_PORT=str(port),
        MYSPINBOT_DATA_DIR=str(data_dir),
        MYSPINBOT_MOCK_STEPS="5",
        MYSPINBOT_MOCK_STEP_SECONDS="0.05",
        MYSPINBOT_LOG_LEVEL="info",
        MYSPINBOT_DISK_RESERVE_BYTES="0",
    )
    env.update(overrides)
    return env


@contextmanager
def running_server(data_dir: Path, **overrides: str) -> Iterator[Server]:
    port = free_port()
    server = Server(data_dir, port, server_env(data_dir, port, **overrides)).start()
    try:
        yield server
    finally:
        server.stop()


class Events:
    """A /ws client that collects frames; tests wait for the frame they expect."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        self.conn: ClientConnection = connect(url, open_timeout=10, **kwargs)
        self.frames: list[dict[str, Any]] = []

    def close(self) -> None:
        self.conn.close()

    def next(self, timeout: float = DEADLINE) -> dict[str, Any]:
        frame = json.loads(self.conn.recv(timeout=timeout))
        self.frames.append(frame)
        return frame

    def until(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = DEADLINE
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            frame = self.next(max(0.01, deadline - time.monotonic()))
            if predicate(frame):
                return frame

    def for_job(self, job_id: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("job", {}).get("id") == job_id]


def png_bytes(
    size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 80, 40)
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def wav_bytes(seconds: float = 5.5, rate: int = 4000, level: int = 2000) -> bytes:
    """A mono 16-bit WAV: a square wave at `level` (0: silence). The default passes the
    voice sample rules (5-60 s, not silent) while staying small (44 KB)."""
    half = struct.pack("<h", level) * 2 + struct.pack("<h", -level) * 2
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((half * (int(seconds * rate) // 4 + 1))[: int(seconds * rate) * 2])
    return buffer.getvalue()


def train_files(images: int = 2) -> list[tuple[str, tuple[str, bytes, str]]]:
    files = [
        ("images", (f"face-{i}.png", png_bytes(color=(i * 40 % 255, 90, 160)), "image/png"))
        for i in range(images)
    ]
    files.append(("voice", ("voice.wav", wav_bytes(), "audio/wav")))
    return files


def job_files(data_dir: Path) -> set[str]:
    """Everything under uploads/ and artifacts/, relative to the data dir."""
    found = set()
    for sub in ("uploads", "artifacts"):
        root = data_dir / sub
        if root.exists():
            found |= {p.relative_to(data_dir).as_posix() for p in root.rglob("*")}
    return found
