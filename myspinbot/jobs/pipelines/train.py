"""Train with ComfyUI: the job's photos become a captioned dataset in ComfyUI's input
folder, the training workflow made for that server runs, and the LoRA it saves becomes
the job's `lora.safetensors`.

Every photo is one sample (`photos.py`), each caption starts with the job's trigger token
(`trigger.py`), and the result says `trigger`, `samples` and `steps`. The LoRA is also left
where ComfyUI saved it (`output/loras/myspinbot/…`), under the name kept in `result.lora`;
a generate job on another ComfyUI puts it there first (`render.py`).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...engines.comfyui import ComfyUI
from ...engines.comfyui_http import ComfyUIServer
from ...engines.workflow_choice import choose_workflow
from .base import Reporter
from .comfyui_step import engine_errors, run_graph, wait_until_reachable
from .persona import keep_persona
from .photos import captioned_photos
from .render import seed_of
from .trigger import trigger_token

UPLOAD_SPAN, TRAIN_SPAN = (0, 5), (5, 95)
WEIGHTS, MANIFEST = "lora.safetensors", "manifest.json"


class EngineTrain:
    kind = "train"

    def __init__(self, comfyui: ComfyUIServer, workflows: Path) -> None:
        self.comfyui = comfyui
        self.workflows = workflows

    def run(
        self, job: dict[str, Any], inputs: Path, outputs: Path, reporter: Reporter
    ) -> list[str]:
        token = trigger_token(job["input"].get("name"), job["id"])
        with engine_errors(), ComfyUI(self.comfyui) as engine:
            wait_until_reachable(engine, reporter, UPLOAD_SPAN[0])
            workflow = choose_workflow(self.workflows, "train", engine.known_classes)
            values, samples = self._upload(engine, job, inputs, reporter, token)
            trained = {
                "trigger": token,
                "samples": samples,
                "steps": training_steps(workflow.graph),
            }
            reporter.report(UPLOAD_SPAN[1], f"{samples} photos uploaded", result=trained)
            entry, graph = run_graph(
                engine,
                lambda prefixes: workflow.fill({**values, **prefixes}),
                job,
                outputs,
                reporter,
                TRAIN_SPAN,
            )
            reporter.report(TRAIN_SPAN[1], "saving the LoRA")
            lora_prefix = (job.get("result") or {}).get("comfyui", {})["lora_prefix"]
            saved = engine.download_lora(entry, graph, lora_prefix, outputs / WEIGHTS)
        reporter.report(TRAIN_SPAN[1], "LoRA saved", result={"lora": saved.lora_name})
        manifest = {
            "job": job["id"],
            "name": job["input"].get("name"),
            "kind": "lora",
            **trained,
            "comfyui": {
                "output": saved.output_path,
                "lora_name": saved.lora_name,
                "workflow": workflow.source,
            },
            "inputs": job["input"],
            "weights": WEIGHTS,
        }
        (outputs / MANIFEST).write_text(json.dumps(manifest, indent=2))
        return [WEIGHTS, MANIFEST, *keep_persona(inputs, outputs)]

    @staticmethod
    def _upload(
        engine: ComfyUI, job: dict[str, Any], inputs: Path, reporter: Reporter, token: str
    ) -> tuple[dict[str, Any], int]:
        """The captioned photos and the voice into ComfyUI's input/myspinbot/<job>/; the
        workflow's values and the number of photos."""
        folder = f"myspinbot/{job['id']}"
        photos = sorted((inputs / "images").glob("*")) if (inputs / "images").is_dir() else []
        voices = sorted(p for p in inputs.glob("voice.*") if p.is_file())
        name = job["input"].get("name")
        reporter.report(UPLOAD_SPAN[0], f"uploading {len(photos)} photos to ComfyUI")
        with tempfile.TemporaryDirectory(prefix="myspinbot-dataset-") as staging:
            dataset = captioned_photos(photos, token, name, Path(staging))
            engine.upload_inputs(dataset, f"{folder}/images")
        voice = engine.upload_inputs(voices[:1], folder)
        values = {
            "images": f"{folder}/images",
            "voice": voice[0] if voice else None,
            "name": name or job["id"],
            "trigger": token,
            "seed": seed_of(job["id"]),
        }
        return values, len(photos)


def training_steps(graph: Mapping[str, Any]) -> int | None:
    """The `steps` a training node of the workflow is set to (None when none says)."""
    for node in graph.values():
        named = f"{node.get('class_type', '')} {(node.get('_meta') or {}).get('title', '')}"
        steps = node.get("inputs", {}).get("steps")
        if "Train" in named and isinstance(steps, int) and not isinstance(steps, bool):
            return steps
    return None
