"""Stand-in ComfyUI and Ollama servers for tests, run as real processes on 127.0.0.1.

    with comfyui_standin(tmp_path, generation="2026", steps=5, step_seconds=0.05,
                         preview=True, models={"loras": ["a.safetensors"]}) as comfy:
        comfy.url, comfy.ws_url("client-1"), comfy.base_dir
        comfy.fault("node_error", class_type="KSampler")
        comfy.restart()                      # same port, empty history, files kept

    with ollama_standin(tmp_path, models=["llama3.2"], reply="...") as ollama:
        ollama.url
        ollama.fault("stream_error", after=2)

`comfyui_standin` options (each maps to a `python -m tests.standins.comfyui` flag, documented
in `tests/standins/comfyui/__main__.py`): `generation` ("2025" | "2026"), `steps`,
`step_seconds`, `preview` (bool), `preview_format` ("jpeg" | "png"), `slow` (classes that take
steps), `max_upload_size` (MB), `version` (reported `comfyui_version`), `models` ({folder:
[file names]} created under models/), `fail_classes` (classes that always raise),
`http_faults` ([(path, status, count)]), `base_dir` (default `tmp_path / "comfyui"`).

`ollama_standin` options (`python -m tests.standins.ollama`, documented in its module):
`models`, `delay`, `reply`, `version`, `http_faults`.

Both wait for the server's ready file (never a fixed sleep), and stop it with SIGTERM on exit
(SIGKILL if it does not stop). `fault(kind, **params)` arms the faults each server's docstring
lists (`comfyui/faults.py`, `ollama/__init__.py`) and returns what is armed; `state()` says
what is armed. `restart(kill=False)` stops and starts the process on the same port: like the
real servers, nothing that lived in memory (queue, history, sockets, loaded models) survives.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Run from tests/ as `-m standins.<server>`: the same code as `python -m tests.standins.<server>`
# from the repository root, without depending on `tests` resolving to this folder.
TESTS_DIR = Path(__file__).resolve().parents[1]
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


class StandInProcess:
    """One stand-in server as a child process, found through the port in its ready file."""

    def __init__(self, module: str, args: list[str], workdir: Path) -> None:
        self.module, self.args, self.workdir = module, args, workdir
        self.ready_file = workdir / f"{module.rsplit('.', 1)[-1]}.ready"
        self.log_file = workdir / f"{module.rsplit('.', 1)[-1]}.log"
        self.process: subprocess.Popen | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ready_file.unlink(missing_ok=True)
        command = [sys.executable, "-m", self.module, "--port", str(self.port)]
        command += ["--ready-file", str(self.ready_file), *self.args]
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(command, cwd=TESTS_DIR, stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ready_file.exists():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.module} exited with {self.process.returncode}: {self.log}"
                )
            if time.monotonic() > deadline:
                self.stop(kill=True)
                raise TimeoutError(f"{self.module} not ready after {START_TIMEOUT}s: {self.log}")
            time.sleep(0.01)
        self.port = int(self.ready_file.read_text())

    def stop(self, kill: bool = False) -> int | None:
        """Stop the process (SIGTERM, or SIGKILL when `kill`); its exit code."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(STOP_TIMEOUT)

    def restart(self, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    @property
    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def state(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/_standin/state", timeout=10) as response:
            return json.load(response)

    def fault(self, kind: str, **params) -> dict:
        body = json.dumps(params).encode()
        request = urllib.request.Request(
            f"{self.url}/_standin/fault/{kind}",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)


class ComfyUIStandIn(StandInProcess):
    def __init__(self, args: list[str], workdir: Path, base_dir: Path, generation: str) -> None:
        super().__init__("standins.comfyui", args, workdir)
        self.base_dir, self.generation = base_dir, generation

    def ws_url(self, client_id: str | None = None) -> str:
        query = f"?clientId={client_id}" if client_id else ""
        return f"ws://127.0.0.1:{self.port}/ws{query}"


class OllamaStandIn(StandInProcess):
    def __init__(self, args: list[str], workdir: Path) -> None:
        super().__init__("standins.ollama", args, workdir)


@contextmanager
def _running(server: StandInProcess) -> Iterator:
    server.start()
    try:
        yield server
    finally:
        server.stop()


def comfyui_standin(
    tmp_path: Path,
    *,
    generation: str = "2025",
    steps: int = 0,
    step_seconds: float = 0.05,
    preview: bool = False,
    preview_format: str = "jpeg",
    slow: tuple[str, ...] = (),
    max_upload_size: float | None = None,
    version: str | None = None,
    models: dict[str, list[str]] | None = None,
    fail_classes: tuple[str, ...] = (),
    http_faults: tuple[tuple[str, int, int], ...] = (),
    base_dir: Path | None = None,
    loras_from_output: bool = False,
):
    """A running ComfyUI stand-in (context manager yielding a `ComfyUIStandIn`).

    `loras_from_output`: its LoRA loaders also list `output/loras` (the extra_model_paths.yaml
    entry the real-engines docs ask for)."""
    base_dir = base_dir or tmp_path / "comfyui"
    args = ["--base-directory", str(base_dir), "--generation", generation]
    if loras_from_output:
        config = tmp_path / "extra_model_paths.yaml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(f"myspinbot:\n  base_path: {base_dir}\n  loras: output/loras\n")
        args += ["--extra-model-paths-config", str(config)]
    args += ["--steps", str(steps), "--step-seconds", str(step_seconds)]
    if preview:
        args += ["--preview", "--preview-format", preview_format]
    for name in slow:
        args += ["--slow", name]
    if max_upload_size is not None:
        args += ["--max-upload-size", str(max_upload_size)]
    if version:
        args += ["--comfyui-version", version]
    for folder, names in (models or {}).items():
        args += [arg for name in names for arg in ("--model", f"{folder}={name}")]
    for name in fail_classes:
        args += ["--fail-class", name]
    for path, status, count in http_faults:
        args += ["--http-fault", f"{path}={status}:{count}"]
    workdir = tmp_path / "comfyui-process"
    return _running(ComfyUIStandIn(args, workdir, base_dir, generation))


def ollama_standin(
    tmp_path: Path,
    *,
    models: tuple[str, ...] | list[str] = ("llama3.2",),
    delay: float = 0.0,
    reply: str | None = None,
    version: str | None = None,
    http_faults: tuple[tuple[str, int, int], ...] = (),
    thinking: tuple[str, ...] = (),
):
    """A running Ollama stand-in (context manager yielding an `OllamaStandIn`)."""
    args = ["--models", ",".join(models), "--delay", str(delay)]
    if thinking:
        args += ["--thinking", ",".join(thinking)]
    if reply is not None:
        args += ["--reply", reply]
    if version:
        args += ["--version", version]
    for path, status, count in http_faults:
        args += ["--http-fault", f"{path}={status}:{count}"]
    return _running(OllamaStandIn(args, tmp_path / "ollama-process"))


class VoiceStandIn(StandInProcess):
    def __init__(self, args: list[str], workdir: Path) -> None:
        super().__init__("standins.voice", args, workdir)


def voice_standin(
    tmp_path: Path, *, pcm16: bool = False, voices: Path | None = None, token: str | None = None
):
    """A running speech stand-in (`python -m tests.standins.voice`, see its package doc)."""
    args = ["--pcm16"] if pcm16 else []
    if voices is not None:
        args += ["--voices", str(voices)]
    if token:
        args += ["--token", token]
    return _running(VoiceStandIn(args, tmp_path / "voice-process"))


__all__ = [
    "ComfyUIStandIn",
    "OllamaStandIn",
    "StandInProcess",
    "VoiceStandIn",
    "comfyui_standin",
    "ollama_standin",
    "voice_standin",
]
