"""Mock pipelines: paced fake work that writes small, real artifacts a person can open."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import struct
import time
from pathlib import Path
from typing import Any

from .base import PipelineError, Reporter, TransientError
from .persona import keep_persona
from .trigger import trigger_token

LORA_RANK = 4
LORA_WIDTH = 64


class MockPipeline:
    """Shared pacing: `steps` steps of `step_seconds`, progress after each."""

    kind = ""

    def __init__(self, steps: int, step_seconds: float, faults: bool = False) -> None:
        self.steps = steps
        self.step_seconds = step_seconds
        self.faults = faults

    def pace(self, reporter: Reporter, label: str) -> None:
        # The last step is reported by the job's completion itself (one write, not two).
        for step in range(1, self.steps + 1):
            if self.step_seconds:
                time.sleep(self.step_seconds)
            if step < self.steps:
                reporter.report(step * 100 // self.steps, f"{label} {step}/{self.steps}")

    def inject_fault(self, text: str) -> None:
        """Test hook (MYSPINBOT_MOCK_FAULTS): a marker in the input makes the work fail."""
        if not self.faults:
            return
        if "#fault:crash" in text:
            os.kill(os.getpid(), signal.SIGKILL)
        if "#fault:transient" in text:
            raise TransientError("the mock model server is busy")
        if "#fault:fail" in text:
            raise PipelineError("the mock pipeline was told to fail", code="mock_failure")


class MockTrain(MockPipeline):
    kind = "train"

    def run(
        self, job: dict[str, Any], inputs: Path, outputs: Path, reporter: Reporter
    ) -> list[str]:
        self.inject_fault(str(job["input"].get("name") or ""))
        photos = sorted((inputs / "images").glob("*")) if (inputs / "images").is_dir() else []
        trained = {
            "trigger": trigger_token(job["input"].get("name"), job["id"]),
            "samples": len(photos),  # one sample per photo, as the engine pipeline
            "steps": self.steps,
        }
        reporter.report(0, "training", result=trained)
        self.pace(reporter, "training")
        files = sorted(p for p in inputs.rglob("*") if p.is_file()) if inputs.exists() else []
        digest = hashlib.sha256()
        described = []
        for path in files:
            data = path.read_bytes()
            digest.update(data)
            described.append(
                {
                    "file": path.relative_to(inputs).as_posix(),
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )
        seed = digest.digest()
        write_safetensors(outputs / "lora.safetensors", seed, job)
        manifest = {
            "job": job["id"],
            "name": job["input"].get("name"),
            "kind": "lora",
            "rank": LORA_RANK,
            **trained,
            "inputs": job["input"],
            "stored_files": described,
            "weights": "lora.safetensors",
        }
        (outputs / "manifest.json").write_text(json.dumps(manifest, indent=2))
        return ["lora.safetensors", "manifest.json", *keep_persona(inputs, outputs)]


class MockGenerate(MockPipeline):
    kind = "generate"

    def __init__(self, steps: int, step_seconds: float, faults: bool, artifacts_dir: Path) -> None:
        super().__init__(steps, step_seconds, faults)
        self.artifacts_dir = artifacts_dir

    def run(
        self, job: dict[str, Any], inputs: Path, outputs: Path, reporter: Reporter
    ) -> list[str]:
        prompt = str(job["input"]["prompt"])
        self.inject_fault(prompt)
        self.pace(reporter, "rendering")
        # Imported here: Pillow is ~2 MiB a process, and the train worker never renders.
        from .clip import CLIP_FRAMES, render_clip

        lora = job["input"].get("lora")
        render_clip(outputs / "clip.webp", prompt, frames=min(CLIP_FRAMES, max(2, self.steps)))
        line = job["input"].get("say") or None
        spoken = {"line": line, "voice": "no_engine" if line else "none"}  # the mock never speaks
        reporter.report(99, "rendered", result=spoken)
        result = {"job": job["id"], "prompt": prompt, "lora": self.describe_lora(lora), **spoken}
        (outputs / "result.json").write_text(json.dumps(result, indent=2))
        return ["clip.webp", "result.json"]

    def describe_lora(self, lora: str | None) -> dict[str, Any] | None:
        if not lora:
            return None
        # A completed job keeps only its final attempt's folder: artifacts/<id>/<attempt>/.
        found = sorted((self.artifacts_dir / lora).glob("*/lora.safetensors"))
        sha = hashlib.sha256(found[-1].read_bytes()).hexdigest() if found else None
        return {
            "job": lora,
            "weights": f"/api/jobs/{lora}/artifacts/lora.safetensors",
            "sha256": sha,
        }


def write_safetensors(path: Path, seed: bytes, job: dict[str, Any]) -> None:
    """A small LoRA-shaped weights file in the safetensors format, derived from the inputs."""
    shapes = {
        "lora_down.weight": (LORA_RANK, LORA_WIDTH),
        "lora_up.weight": (LORA_WIDTH, LORA_RANK),
    }
    header: dict[str, Any] = {
        "__metadata__": {"format": "pt", "job": job["id"], "name": str(job["input"].get("name"))}
    }
    blobs = []
    offset = 0
    for index, (name, shape) in enumerate(shapes.items()):
        count = shape[0] * shape[1]
        stream = hashlib.shake_256(seed + bytes([index])).digest(count * 2)
        values = [
            (int.from_bytes(stream[i * 2 : i * 2 + 2], "little") / 65535 - 0.5) / 50
            for i in range(count)
        ]
        blob = struct.pack(f"<{count}f", *values)
        header[name] = {
            "dtype": "F32",
            "shape": list(shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # keep the tensor data 8-byte aligned
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + b"".join(blobs))
