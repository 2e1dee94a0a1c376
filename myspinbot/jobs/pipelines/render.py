"""Generate with real engines: Ollama writes the shot, ComfyUI renders it, as a LangGraph graph.

    START -> write (Ollama, when configured and the shot is not written yet)
          -> render (ComfyUI: submit, or re-attach to the prompt of an earlier attempt)
          -> save (every output becomes an artifact of this attempt)

Each node is one step whose result is kept in the job's `result`, so a retried attempt
starts from what the last one already has: a written prompt is not written again, and a
prompt still known to ComfyUI is followed instead of rendered twice.

With a LoRA, *render* first makes sure this ComfyUI has it (`lora_placement.py`: another
box may have trained it) and puts the training job's trigger token in front of the text
ComfyUI encodes, after the writer, so no model has to remember it.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from ...engines.comfyui import ComfyUI
from ...engines.comfyui_http import ComfyUIServer
from ...engines.ollama import Ollama, OllamaServer
from ...engines.workflow_choice import choose_workflow
from ...engines.workflows import load_writer_prompt
from .base import PipelineError, Reporter
from .comfyui_step import engine_errors, run_graph
from .lora_placement import TrainedLoRA, place_lora, trained_lora
from .trigger import with_trigger

NEGATIVE_PROMPT = "blurry, static, distorted, low quality, watermark, text"
WRITE_SPAN, RENDER_SPAN = (0, 10), (10, 95)
WRITE_REPORT_EVERY = 0.5  # seconds between progress writes while Ollama streams


class GenerateState(TypedDict, total=False):
    job: dict[str, Any]
    outputs: str
    prompt: str  # Ollama's shot, or the user's prompt as written
    rendered: str  # the text ComfyUI encodes: the prompt with the LoRA's trigger token
    entry: dict[str, Any]  # the prompt's /history entry
    names: list[str]  # the artifacts, in display order


class EngineGenerate:
    kind = "generate"

    def __init__(
        self,
        comfyui: ComfyUIServer,
        ollama: OllamaServer | None,
        workflows: Path,
        artifacts_dir: Path,
    ) -> None:
        self.comfyui = comfyui
        self.ollama = ollama
        self.workflows = workflows
        self.artifacts_dir = artifacts_dir  # where a training job's lora.safetensors is kept
        graph = StateGraph(GenerateState)
        graph.add_node("write", self._write)
        graph.add_node("render", self._render)
        graph.add_node("save", self._save)
        graph.add_conditional_edges(START, self._first_step, ["write", "render"])
        graph.add_edge("write", "render")
        graph.add_edge("render", "save")
        graph.add_edge("save", END)
        self.graph = graph.compile()

    def run(
        self, job: dict[str, Any], inputs: Path, outputs: Path, reporter: Reporter
    ) -> list[str]:
        kept = job.get("result") or {}
        state: GenerateState = {"job": job, "outputs": str(outputs)}
        if kept.get("prompt"):
            state["prompt"] = kept["prompt"]
        elif self.ollama is None:
            state["prompt"] = str(job["input"]["prompt"])
        with engine_errors():
            # Worker threads share this pipeline: the run's reporter travels in the config.
            final = self.graph.invoke(state, config={"configurable": {"reporter": reporter}})
        self._write_result(job, outputs, final)
        return [*final["names"], "result.json"]

    # -- the graph's nodes ---------------------------------------------------------------

    @staticmethod
    def _first_step(state: GenerateState) -> str:
        return "render" if state.get("prompt") else "write"

    def _write(self, state: GenerateState, config: RunnableConfig) -> dict[str, Any]:
        assert self.ollama is not None
        reporter = _reporter(config)
        reporter.report(WRITE_SPAN[0], f"writing the shot with {self.ollama.model}")
        words, last = 0, time.monotonic()

        def on_chunk(text: str) -> None:
            nonlocal words, last
            words += len(text.split())
            reporter.check()
            if time.monotonic() - last >= WRITE_REPORT_EVERY:
                last = time.monotonic()
                percent = min(WRITE_SPAN[1] - 1, WRITE_SPAN[0] + words // 10)
                reporter.report(percent, f"writing the shot… {words} words")

        with Ollama(self.ollama) as ollama:
            written = ollama.write(
                load_writer_prompt(self.workflows), str(state["job"]["input"]["prompt"]), on_chunk
            )
        reporter.report(
            WRITE_SPAN[1], "shot written", result={"prompt": written, "writer": self.ollama.model}
        )
        return {"prompt": written}

    def _render(self, state: GenerateState, config: RunnableConfig) -> dict[str, Any]:
        reporter = _reporter(config)
        job, prompt = state["job"], state["prompt"]
        if (job.get("result") or {}).get("prompt") != prompt:  # as written: no Ollama
            reporter.report(RENDER_SPAN[0], "rendering the prompt", result={"prompt": prompt})
        lora = trained_lora(job, reporter)
        rendered = with_trigger(prompt, lora.trigger if lora else None)
        values = {
            "prompt": rendered,
            "negative_prompt": NEGATIVE_PROMPT,
            "seed": seed_of(job["id"]),
            "lora": lora.name if lora else None,
            "name": job["id"],
        }
        with ComfyUI(self.comfyui) as engine:
            workflow = choose_workflow(self.workflows, "generate", engine.known_classes)
            if lora is not None:
                self._place(engine, lora, reporter)
            entry, _ = run_graph(
                engine,
                lambda prefixes: workflow.fill({**values, **prefixes}),
                job,
                Path(state["outputs"]),
                reporter,
                RENDER_SPAN,
            )
        return {"entry": entry, "rendered": rendered}

    def _place(self, engine: ComfyUI, lora: TrainedLoRA, reporter: Reporter) -> None:
        def copying() -> None:
            reporter.report(RENDER_SPAN[0], f"copying the LoRA of {lora.job_id} to ComfyUI")

        place_lora(engine, lora, self.artifacts_dir, copying, reporter.check)

    def _save(self, state: GenerateState, config: RunnableConfig) -> dict[str, Any]:
        _reporter(config).report(RENDER_SPAN[1], "saving the outputs")
        with ComfyUI(self.comfyui) as engine:
            saved = engine.download_outputs(state["entry"], Path(state["outputs"]), stem="clip")
        names = [item.name for item in saved if item.source.type == "output"]
        if not names:
            raise PipelineError(
                "ComfyUI finished the prompt but it saved no output: the generate workflow "
                "needs a save node (SaveVideo, SaveAnimatedWEBP, SaveImage …)",
                code="engine_output_missing",
            )
        return {"names": names}

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _write_result(job: dict[str, Any], outputs: Path, final: GenerateState) -> None:
        kept = job.get("result") or {}
        result = {
            "job": job["id"],
            "prompt": job["input"]["prompt"],
            "rendered_prompt": final["rendered"],
            "writer": kept.get("writer"),
            "lora": job["input"].get("lora"),
            "comfyui_prompt_id": (kept.get("comfyui") or {}).get("prompt_id"),
            "outputs": final["names"],
        }
        (outputs / "result.json").write_text(json.dumps(result, indent=2))


def _reporter(config: RunnableConfig) -> Reporter:
    return config["configurable"]["reporter"]


def seed_of(job_id: str) -> int:
    """The job's seed: fixed per job, so a re-render of the same job is the same clip."""
    return int.from_bytes(hashlib.sha256(job_id.encode()).digest()[:6], "big")
