"""Train with ComfyUI: the job's photos and voice go to ComfyUI's input folder, the training
workflow runs, and the LoRA it saves becomes the job's `lora.safetensors`.

The LoRA is also left where ComfyUI saved it (`output/loras/myspinbot/…`): with that
folder among ComfyUI's `loras` paths (README, "Real engines"), a generate job that names
this training job gets it into its workflow by the name kept in `result.lora`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ...engines.comfyui import ComfyUI
from ...engines.comfyui_http import ComfyUIServer
from ...engines.workflows import load_workflow
from .base import Reporter
from .comfyui_step import engine_errors, run_graph
from .persona import keep_persona
from .render import seed_of

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
        workflow = load_workflow(self.workflows, "train")
        with engine_errors(), ComfyUI(self.comfyui) as engine:
            values = self._upload(engine, job, inputs, reporter)
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
            "comfyui": {"output": saved.output_path, "lora_name": saved.lora_name},
            "inputs": job["input"],
            "weights": WEIGHTS,
        }
        (outputs / MANIFEST).write_text(json.dumps(manifest, indent=2))
        return [WEIGHTS, MANIFEST, *keep_persona(inputs, outputs)]

    @staticmethod
    def _upload(
        engine: ComfyUI, job: dict[str, Any], inputs: Path, reporter: Reporter
    ) -> dict[str, Any]:
        """The photos and the voice into ComfyUI's input/myspinbot/<job>/; their placeholders."""
        folder = f"myspinbot/{job['id']}"
        photos = sorted((inputs / "images").glob("*")) if (inputs / "images").is_dir() else []
        voices = sorted(p for p in inputs.glob("voice.*") if p.is_file())
        reporter.report(UPLOAD_SPAN[0], f"uploading {len(photos)} photos to ComfyUI")
        engine.upload_inputs(photos, f"{folder}/images")
        voice = engine.upload_inputs(voices[:1], folder)
        reporter.report(UPLOAD_SPAN[1], "photos uploaded")
        return {
            "images": f"{folder}/images",
            "voice": voice[0] if voice else None,
            "name": job["input"].get("name") or job["id"],
            "seed": seed_of(job["id"]),
        }
