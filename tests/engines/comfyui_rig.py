"""A real ComfyUI from a checkout, on a free loopback port, in a base directory of its own.

Opt-in: `make test-comfyui COMFYUI=/path/to/ComfyUI` builds ComfyUI's own virtual
environment and sets MYSPINBOT_TEST_COMFYUI (the checkout) and MYSPINBOT_TEST_COMFYUI_PYTHON
(that environment's python). The checkout is only read: ComfyUI's models, custom nodes,
input, output and temp live in the base directory, and Python's bytecode cache is kept
out of the checkout too.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import httpx
from support import wait_until

TEST_NODES = Path(__file__).parent / "comfyui_nodes" / "myspinbot_test_nodes.py"
START_SECONDS = 300.0  # a loaded 2-core machine needs a minute or two to import torch
ENABLE = "make test-comfyui COMFYUI=/path/to/ComfyUI"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def prepare_base(base: Path) -> Path:
    """The base directory: our test node in custom_nodes/, output/loras/ as a loras path."""
    (base / "custom_nodes").mkdir(parents=True, exist_ok=True)
    (base / "output" / "loras").mkdir(parents=True, exist_ok=True)
    shutil.copy(TEST_NODES, base / "custom_nodes" / TEST_NODES.name)
    # What the README asks of a user: ComfyUI's output/loras as one more loras folder,
    # so LoRAs trained there are listed by LoRA loaders (relative to that folder).
    config = base / "extra_model_paths.yaml"
    config.write_text(f"myspinbot:\n  base_path: {base}\n  loras: output/loras\n")
    return config


class ComfyUIProcess:
    """Start, stop, kill and restart (same port) one ComfyUI server."""

    def __init__(self, checkout: Path, python: Path, base: Path) -> None:
        self.checkout = checkout
        self.python = python
        self.base = base
        self.port = free_port()
        self.config = prepare_base(base)
        self.log_path = base / "comfyui.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            # Bytecode beside the environment, not in the checkout: kept across sessions.
            "PYTHONPYCACHEPREFIX": str(self.python.parent.parent / "pycache"),
            "PYTHONUNBUFFERED": "1",
        }
        command = [
            str(self.python),
            str(self.checkout / "main.py"),
            "--cpu",
            "--listen",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--base-directory",
            str(self.base),
            "--database-url",
            "sqlite:///:memory:",
            "--extra-model-paths-config",
            str(self.config),
        ]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command, cwd=self.base, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        wait_until(
            self.ready, timeout=START_SECONDS, message=f"ComfyUI on {self.url} ({self.log_path})"
        )

    def ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"ComfyUI exited with {self.process.returncode}: {self.log_tail()}")
        try:
            return httpx.get(f"{self.url}/system_stats", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return "no log"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL, as a crash or a power cut would: nothing is written to history."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()
