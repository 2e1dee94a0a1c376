"""A trained LoRA on the ComfyUI that renders: found there, or put there first.

With several GPU boxes, the box that renders a generate job is often not the one that
trained its LoRA. Before the prompt is queued the worker asks this ComfyUI's LoRA list
(`GET /models/loras`); when the LoRA is missing it uploads the training job's
`lora.safetensors` with ComfyUI's own `POST /upload/image` (`type=output`, subfolder
`loras/myspinbot`: `server.py` saves any file there, inside `output/`) — the place where
the training box's `SaveLoRA` put it — and waits until the loader lists it. A ComfyUI
lists `output/loras` only when its `extra_model_paths.yaml` says so (the real-engines
setup asks this of every box); when it still does not list the file, the job fails
saying exactly that.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...engines.comfyui import ComfyUI
from .base import PipelineError, Reporter

LISTED_WITHIN = 10.0  # seconds an uploaded LoRA may take to show in /models/loras


@dataclass(frozen=True)
class TrainedLoRA:
    job_id: str  # the training job
    name: str  # as ComfyUI's LoRA loaders list it: myspinbot/<file>.safetensors
    trigger: str | None  # the token its captions start with (None: trained before tokens)
    attempt: int | None  # the attempt whose artifacts hold lora.safetensors


def trained_lora(job: dict[str, Any], reporter: Reporter) -> TrainedLoRA | None:
    """The LoRA of the training job a generate job names, if it names one."""
    lora = job["input"].get("lora")
    if not lora:
        return None
    trained = reporter.job(lora) or {}
    result = trained.get("result") or {}
    if not result.get("lora"):
        raise PipelineError(
            f"training job {lora} has no LoRA on a ComfyUI server (it was trained without "
            "one, or before ComfyUI was configured): train again with ComfyUI",
            code="lora_not_on_engine",
        )
    attempt = trained.get("attempt")
    return TrainedLoRA(
        job_id=str(lora),
        name=str(result["lora"]),
        trigger=result.get("trigger"),
        attempt=attempt if isinstance(attempt, int) else None,
    )


def kept_weights(artifacts_dir: Path, lora: TrainedLoRA) -> Path | None:
    """The training job's lora.safetensors: artifacts/<job>/<attempt>/ (its last attempt)."""
    if lora.attempt is not None:
        path = artifacts_dir / lora.job_id / str(lora.attempt) / "lora.safetensors"
        if path.is_file():
            return path
    found = sorted(
        (artifacts_dir / lora.job_id).glob("*/lora.safetensors"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else -1,
    )
    return found[-1] if found else None


def place_lora(
    engine: ComfyUI,
    lora: TrainedLoRA,
    artifacts_dir: Path,
    copying: Callable[[], None],
    check: Callable[[], None],
) -> None:
    """Return once `engine` lists the LoRA; upload it first when it does not."""
    if engine.has_lora(lora.name):
        return
    weights = kept_weights(artifacts_dir, lora)
    if weights is None:
        raise PipelineError(
            f"the LoRA of training job {lora.job_id} is not on the ComfyUI at "
            f"{engine.server.shown}, and its lora.safetensors is no longer kept here to "
            "copy there: train again",
            code="lora_not_on_engine",
        )
    copying()

    def wait() -> None:
        check()
        time.sleep(0.25)

    if not engine.place_lora(lora.name, weights, wait, LISTED_WITHIN):
        folder = "output/loras/" + lora.name.rpartition("/")[0]
        raise PipelineError(
            f"the LoRA of training job {lora.job_id} was copied to {folder}/ of the ComfyUI "
            f"at {engine.server.shown}, but its LoRA loaders do not list that folder: add "
            "`loras: output/loras` to that ComfyUI's extra_model_paths.yaml and restart it",
            code="lora_not_on_engine",
        )
