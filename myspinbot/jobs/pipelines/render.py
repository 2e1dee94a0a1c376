"""Generate with real engines: Ollama writes the shot and the line, the voice engine speaks
the line, ComfyUI renders the clip with it, as a LangGraph graph.

    START -> write (Ollama, when configured and the shot is not written yet)
          -> speak (the voice engine, when configured and there is a line)
          -> render (ComfyUI: submit, or re-attach to the prompt of an earlier attempt)
          -> save (every output becomes an artifact of this attempt)

The line is the request's `say`, else the one Ollama wrote, else none. It is spoken in the
voice of the persona (the training job the request names) and checked before it goes onto
the clip; the result's `voice` says what happened: spoken, none (no line), no_engine (no
voice engine configured) or silent_workflow (the generate workflow has no {{voice_audio}}).

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
from ...engines.workflows import Workflow, load_workflow, load_writer_prompt
from ...engines.writer import line_words, write_shot
from .base import PipelineError, Reporter
from .comfyui_step import engine_errors, run_graph
from .lora_placement import TrainedLoRA, place_lora, trained_lora
from .speech import SPEECH_FILE, Clip, Speaker
from .trigger import with_trigger

NEGATIVE_PROMPT = "blurry, static, distorted, low quality, watermark, text"
WRITE_SPAN, SPEAK_SPAN, RENDER_SPAN = (0, 8), (8, 10), (10, 95)
WRITE_REPORT_EVERY = 0.5  # seconds between progress writes while Ollama streams


class GenerateState(TypedDict, total=False):
    job: dict[str, Any]
    outputs: str
    prompt: str  # Ollama's shot, or the user's prompt as written
    rendered: str  # the text ComfyUI encodes: the prompt with the LoRA's trigger token
    line: str | None  # what the persona says
    speech: bool  # the line, spoken and checked, is in outputs/line.wav
    voice: str  # spoken, none, no_engine or silent_workflow
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
        speaker: Speaker,
        clip: Clip | None = None,
        workflow: str = "generate",
    ) -> None:
        self.comfyui = comfyui
        self.ollama = ollama
        self.workflows = workflows
        self.artifacts_dir = artifacts_dir  # where a training job's lora.safetensors is kept
        self.speaker = speaker
        self.clip = clip or Clip()
        self.workflow = workflow  # generate, or generate_talking for lip sync
        graph = StateGraph(GenerateState)
        graph.add_node("write", self._write)
        graph.add_node("speak", self._speak)
        graph.add_node("render", self._render)
        graph.add_node("save", self._save)
        graph.add_conditional_edges(START, self._first_step, ["write", "speak"])
        graph.add_edge("write", "speak")
        graph.add_edge("speak", "render")
        graph.add_edge("render", "save")
        graph.add_edge("save", END)
        self.graph = graph.compile()

    def run(
        self, job: dict[str, Any], inputs: Path, outputs: Path, reporter: Reporter
    ) -> list[str]:
        kept = job.get("result") or {}
        say = job["input"].get("say") or None
        state: GenerateState = {"job": job, "outputs": str(outputs)}
        if kept.get("prompt"):
            state["prompt"], state["line"] = kept["prompt"], say or kept.get("line")
        elif self.ollama is None:
            state["prompt"], state["line"] = str(job["input"]["prompt"]), say
        with engine_errors():
            # Worker threads share this pipeline: the run's reporter travels in the config.
            final = self.graph.invoke(state, config={"configurable": {"reporter": reporter}})
        self._write_result(job, outputs, final)
        return [*final["names"], "result.json"]

    # -- the graph's nodes ---------------------------------------------------------------

    @staticmethod
    def _first_step(state: GenerateState) -> str:
        return "speak" if state.get("prompt") else "write"

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

        job = state["job"]
        with Ollama(self.ollama) as ollama:
            written = write_shot(
                ollama,
                load_writer_prompt(self.workflows),
                str(job["input"]["prompt"]),
                line_words(self.clip.seconds),
                on_chunk,
            )
        line = job["input"].get("say") or written.line
        reporter.report(
            WRITE_SPAN[1],
            "shot written",
            result={"prompt": written.shot, "writer": self.ollama.model, "line": line},
        )
        return {"prompt": written.shot, "line": line}

    def _speak(self, state: GenerateState, config: RunnableConfig) -> dict[str, Any]:
        reporter = _reporter(config)
        job, line = state["job"], state.get("line")
        uses_audio = "voice_audio" in self._workflow().uses()
        voice = self.speaker.plan(line, uses_audio)
        if voice == "spoken":
            reporter.report(SPEAK_SPAN[0], "speaking the line")
            assert line is not None
            seconds = self.speaker.speak(
                line, job["input"].get("lora"), Path(state["outputs"]), self.clip
            )
            message = f"line spoken ({seconds:.1f} s)"
        else:
            message = {"none": "no line to speak", "no_engine": "no voice engine"}.get(
                voice, "the generate workflow has no {{voice_audio}}: the clip stays silent"
            )
        reporter.report(SPEAK_SPAN[1], message, result={"line": line, "voice": voice})
        return {"speech": voice == "spoken", "voice": voice}

    def _workflow(self, speech: bool = True) -> Workflow:
        # The talking workflow animates a spoken line; without one the plain clip renders.
        return load_workflow(self.workflows, self.workflow if speech else "generate")

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
            "fps": self.clip.fps,
            "frames": self.clip.frames,
            "seconds": self.clip.seconds,
            "voice_audio": None,
        }
        workflow = self._workflow(bool(state.get("speech")))
        with ComfyUI(self.comfyui) as engine:
            if lora is not None:
                self._place(engine, lora, reporter)
            if state.get("speech"):
                speech = Path(state["outputs"]) / SPEECH_FILE
                values["voice_audio"] = engine.upload_inputs([speech], f"myspinbot/{job['id']}")[0]
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
        if names and state.get("speech"):
            names.append(SPEECH_FILE)
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
            "line": final.get("line"),
            "voice": final.get("voice"),
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
