"""Helpers for the browser tests: a real server process, small media files, page probes."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "static" / "dist"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Records what the page itself cannot hide: CSP violations and script errors.
PROBE_SCRIPT = """
window.__probe = {csp: [], errors: []};
document.addEventListener("securitypolicyviolation", (e) => {
  window.__probe.csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
window.addEventListener("error", (e) => { window.__probe.errors.push(String(e.message)); });
document.addEventListener("myspinbot:started", () => { window.__probe.started = true; });
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """`python app.py` from the repository root, on its own port and data dir."""

    data_dir: Path
    port: int
    step_seconds: float = 0.1
    steps: int = 10
    extra_env: dict[str, str] = field(default_factory=dict)
    log_path: Path = field(init=False)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def __post_init__(self) -> None:
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        env.pop("MYSPINBOT_API_TOKEN", None)
        env.update(
            MYSPINBOT_HOST="127.0.0.1",
            MYSPINBOT_PORT=str(self.port),
            MYSPINBOT_DATA_DIR=str(self.data_dir),
            MYSPINBOT_MOCK_STEPS=str(self.steps),
            MYSPINBOT_MOCK_STEP_SECONDS=str(self.step_seconds),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 60.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n--- start #{self.starts} ---\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "app.py"],
                cwd=ROOT,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise RuntimeError(f"the server exited with {code}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"/health did not answer 200 within {timeout:.0f} s:\n{self.log_tail()}")

    def kill_hard(self) -> None:
        """SIGKILL the main process only, as a crash would."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 30.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        # Whatever the server started in its session and left behind.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    # --- HTTP, as a script would call it ------------------------------------------

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def generate(self, prompt: str) -> dict[str, Any]:
        status, job = self.request("POST", "/api/generate", {"prompt": prompt})
        assert status == 202, (status, job)
        return job


def png_bytes(color: tuple[int, int, int], size: int = 64) -> bytes:
    image = Image.new("RGB", (size, size), color)
    for x in range(size):
        image.putpixel((x, x), (255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def write_pngs(directory: Path, count: int) -> list[Path]:
    colors = [(239, 68, 68), (59, 130, 246), (16, 185, 129), (245, 158, 11), (139, 92, 246)]
    paths = []
    for i in range(count):
        path = directory / f"face-{i + 1}.png"
        path.write_bytes(png_bytes(colors[i % len(colors)]))
        paths.append(path)
    return paths


def write_noise_png(path: Path, side: int = 500) -> Path:
    """A PNG that does not compress: about 3 bytes per pixel, for a visible upload."""
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(path, format="PNG")
    return path


def throttle_uploads(page: Any, bytes_per_second: int) -> None:
    """Slow the page's uploads down (Chromium's network emulation) so progress is visible."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": bytes_per_second,
        },
    )


def write_wav(path: Path, seconds: float = 5.5, rate: int = 8000) -> Path:
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / rate)))
        for n in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return path


def job_card(page: Any, job_id: str) -> Any:
    return page.locator(f'[data-job-id="{job_id}"]')


def submit_prompt(page: Any, prompt: str, *, keyboard: bool = False) -> str:
    """Type a prompt into the generate form, send it, and return the new job's id."""
    page.locator("#prompt").fill(prompt)
    with page.expect_response(
        lambda r: r.url.endswith("/api/generate") and r.request.method == "POST"
    ) as answer:
        if keyboard:
            page.locator("#prompt").press("Control+Enter")
        else:
            page.get_by_role("button", name="Generate", exact=True).click()
    response = answer.value
    assert response.status == 202, response.text()
    return str(response.json()["id"])
