"""The one executor task: takes prompts off the queue and runs them with ComfyUI's messages.

Follows ComfyUI 0.3.64 (Comfy-Org/ComfyUI@a125cd84): `main.py` `prompt_worker` and
`hijack_progress`, `execution.py` `PromptExecutor.execute_async` and `execute`,
`comfy_execution/progress.py` `WebUIProgressHandler`. Per prompt: `execution_start`,
`execution_cached`, then per node `progress_state` (running) -> `executing` -> [`progress_state`
+ `progress` (+ preview) per step] -> `executed` (nodes with ui) -> `progress_state` (finished);
cached nodes get only `executed` (output nodes) and `progress_state`; then `execution_success`
| `execution_error` | `execution_interrupted`, the history entry (`status` broadcast), and
`executing {node: null}`. Per-run events go to the prompt's `client_id` only, and are not
sent at all without one -- except `progress`, `progress_state` and previews, which then go to
every socket, and `execution_interrupted`, which is broadcast. In 2026 (Comfy-Org/ComfyUI@cb707e9c)
history outputs come only from nodes of this run; in 2025 from every cached ui of the prompt.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Any

from . import hub as hub_module
from .audio_video import AUDIO_OPERATIONS
from .graph import ExecutionList, is_link, signatures
from .nodes import NodeDef
from .operations import OPERATIONS, raise_fault, step_through
from .training import TRAINING_OPERATIONS
from .validation import type_name
from .values import NodeResult, RunContext

OOM_TIPS = (
    "This error means you ran out of memory on your GPU.\n\nTIPS: If the workflow worked before "
    "you might have accidentally set the batch_size to a large number."
)


class InterruptProcessingException(Exception):
    pass


InterruptProcessingException.__module__ = "comfy.model_management"


@dataclass
class CacheEntry:
    outputs: tuple  # one list per output, as ComfyUI caches them
    ui: dict | None


async def map_over_lists(ctx: RunContext, node: NodeDef, operation, inputs: dict) -> NodeResult:
    """`execution._map_node_over_list` + `get_output_from_returns`, as ComfyUI runs a node.

    Every input arrives as a list (a linked list output keeps all its items). A node with
    `is_input_list` gets the lists whole, once; any other node runs once per item of its
    longest input (shorter inputs repeat their last item). Each output gathers one item
    per run, or, for an `output_is_list` output, the items of each run's list.
    """
    if node.input_is_list:
        calls = [inputs]
    else:
        longest = max((len(values) for values in inputs.values()), default=0)
        calls = [
            {name: values[min(i, len(values) - 1)] for name, values in inputs.items()}
            for i in range(longest)
        ] or [{}]
    listed = node.output_is_list or (False,) * len(node.outputs)
    outputs: list[list] = [[] for _ in node.outputs]
    ui: dict[str, list] = {}
    for call in calls:
        result: NodeResult = await operation(ctx, **call)
        for index, value in enumerate(result.outputs):
            if index < len(outputs):
                (outputs[index].extend if listed[index] else outputs[index].append)(value)
        for key, items in (result.ui or {}).items():
            ui.setdefault(key, []).extend(items)
    return NodeResult(tuple(outputs), ui or None)


@dataclass
class RunSettings:
    steps: int = 0  # 0: a timed node takes its own `steps` input
    step_seconds: float = 0.05
    preview: str | None = None  # "jpeg" | "png"
    slow_classes: tuple[str, ...] = ()


class Progress:
    """`ProgressRegistry` + `WebUIProgressHandler`: every change sends all non-pending nodes."""

    def __init__(self, hub, prompt_id: str) -> None:
        self.hub, self.prompt_id = hub, prompt_id
        self.nodes: dict[str, dict[str, Any]] = {}

    def _send(self) -> None:
        active = {
            node_id: {
                "value": state["value"],
                "max": state["max"],
                "state": state["state"],
                "node_id": node_id,
                "prompt_id": self.prompt_id,
                "display_node_id": node_id,
                "parent_node_id": None,
                "real_node_id": node_id,
            }
            for node_id, state in self.nodes.items()
            if state["state"] != "pending"
        }
        data = {"prompt_id": self.prompt_id, "nodes": active}
        self.hub.send_sync("progress_state", data, self.hub.client_id)

    def _entry(self, node_id: str) -> dict[str, Any]:
        return self.nodes.setdefault(node_id, {"state": "pending", "value": 0, "max": 1})

    def start(self, node_id: str) -> None:
        self._entry(node_id).update(state="running", value=0.0, max=1.0)
        self._send()

    def update(self, node_id: str, value, total, image) -> None:
        self._entry(node_id).update(state="running", value=value, max=total)
        self._send()
        if image is not None and self.hub.supports_preview_metadata(self.hub.client_id):
            metadata = {
                "node_id": node_id,
                "prompt_id": self.prompt_id,
                "display_node_id": node_id,
                "parent_node_id": None,
                "real_node_id": node_id,
            }
            kind = hub_module.PREVIEW_IMAGE_WITH_METADATA
            self.hub.send_sync(kind, (image, metadata), self.hub.client_id)

    def finish(self, node_id: str) -> None:
        entry = self._entry(node_id)
        entry.update(state="finished", value=entry["max"])
        self._send()


class Executor:
    def __init__(self, table, base, hub, queue, settings: RunSettings, faults, generation) -> None:
        self.table: dict[str, NodeDef] = table
        self.base, self.hub, self.queue = base, hub, queue
        self.settings, self.faults = settings, faults
        self.generation = generation
        self.cache: dict[Any, CacheEntry] = {}
        self.interrupt_flag = False
        self.success = True
        self.trainings: list[dict[str, Any]] = []  # what each training node saw

    def interrupt(self) -> None:
        self.interrupt_flag = True

    def check_interrupt(self) -> None:
        if self.interrupt_flag:
            self.interrupt_flag = False
            raise InterruptProcessingException()

    async def run_forever(self) -> None:
        while True:
            item, item_id = await self.queue.get()
            number, prompt_id, prompt, extra_data, outputs = item
            self.hub.last_prompt_id = prompt_id
            try:
                await self.execute(prompt, prompt_id, extra_data, outputs)
            except Exception:
                # A fault of the stand-in itself, not of the prompt: say so where the test
                # log shows it, and keep the queue moving rather than hang.
                traceback.print_exc()
                self.success, self.history_result = False, {"outputs": {}, "meta": {}}
                self.hub.last_node_id = None
            status = {
                "status_str": "success" if self.success else "error",
                "completed": self.success,
                "messages": self.messages,
            }
            self.queue.task_done(item_id, self.history_result, status)
            if self.hub.client_id is not None:
                data = {"node": None, "prompt_id": prompt_id}
                self.hub.send_sync("executing", data, self.hub.client_id)

    def add_message(self, event: str, data: dict, broadcast: bool) -> None:
        data = {**data, "timestamp": int(time.time() * 1000)}
        self.messages.append((event, data))
        if self.hub.client_id is not None or broadcast:
            self.hub.send_sync(event, data, self.hub.client_id)

    async def execute(self, prompt, prompt_id, extra_data, execute_outputs) -> None:
        self.interrupt_flag = False
        self.hub.client_id = extra_data.get("client_id")
        self.messages: list[tuple[str, dict]] = []
        self.add_message("execution_start", {"prompt_id": prompt_id}, broadcast=False)
        self.keys = signatures(prompt, self.table, self.base)
        wanted = set(self.keys.values())
        self.cache = {key: entry for key, entry in self.cache.items() if key in wanted}
        self.progress = Progress(self.hub, prompt_id)
        cached = [node_id for node_id in prompt if self._cached(node_id)]
        self.add_message("execution_cached", {"nodes": cached, "prompt_id": prompt_id}, False)
        executed: list[str] = []
        run_ui: dict[str, dict] = {}
        order = ExecutionList(prompt, self.table, self._cached)
        for node_id in execute_outputs:
            order.add_node(node_id)
        while not order.is_empty():
            node_id = order.stage()
            outcome, error, ex = await self._execute_node(
                prompt, prompt_id, extra_data, node_id, run_ui
            )
            self.success = outcome != "failed"
            if outcome == "failed":
                self._report_error(prompt, prompt_id, executed, error, ex)
                break
            if outcome == "ran":
                executed.append(node_id)
            order.complete(node_id)
        else:
            self.add_message("execution_success", {"prompt_id": prompt_id}, broadcast=False)
        if self.generation != "2026":  # every cached ui of this prompt's nodes
            run_ui = {n: e.ui for n in prompt if (e := self._entry(n)) and e.ui is not None}
        self.history_result = {
            "outputs": {node_id: ui["output"] for node_id, ui in run_ui.items()},
            "meta": {node_id: ui["meta"] for node_id, ui in run_ui.items()},
        }
        self.hub.last_node_id = None

    def _entry(self, node_id: str) -> CacheEntry | None:
        return self.cache.get(self.keys.get(node_id))

    def _cached(self, node_id: str) -> bool:
        return self._entry(node_id) is not None

    async def _execute_node(self, prompt, prompt_id, extra_data, node_id, run_ui):
        """("ran" | "cached" | "failed", error details, exception), as `execution.execute`."""
        class_type = prompt[node_id]["class_type"]
        node = self.table[class_type]
        client = self.hub.client_id
        entry = self._entry(node_id)
        if entry is not None:
            if entry.ui is not None:
                run_ui[node_id] = entry.ui
            if client is not None:
                output = (entry.ui or {}).get("output")
                data = {"node": node_id, "display_node": node_id, "output": output}
                self.hub.send_sync("executed", {**data, "prompt_id": prompt_id}, client)
            self.progress.finish(node_id)
            return "cached", None, None
        inputs = None
        try:
            self.progress.start(node_id)
            inputs = self._input_data(prompt[node_id]["inputs"], node)
            if client is not None:
                self.hub.last_node_id = node_id
                data = {"node": node_id, "display_node": node_id, "prompt_id": prompt_id}
                self.hub.send_sync("executing", data, client)
            self.check_interrupt()  # nodes.before_node_execution()
            ctx = self._context(node_id, node, prompt, extra_data, prompt_id)
            if class_type in self.settings.slow_classes and node.timed is None:
                await step_through(ctx, self.settings.steps or 10, report=True)
            elif node.timed is None:
                raise_fault(ctx, 0)
            operation = {**OPERATIONS, **TRAINING_OPERATIONS, **AUDIO_OPERATIONS}[class_type]
            result = await map_over_lists(ctx, node, operation, inputs)
            ui = None
            if result.ui:
                meta = {"node_id": node_id, "display_node": node_id, "parent_node": None}
                ui = {"meta": {**meta, "real_node_id": node_id}, "output": result.ui}
                run_ui[node_id] = ui
                if client is not None:
                    data = {"node": node_id, "display_node": node_id, "output": result.ui}
                    self.hub.send_sync("executed", {**data, "prompt_id": prompt_id}, client)
            self.cache[self.keys[node_id]] = CacheEntry(tuple(result.outputs), ui)
        except InterruptProcessingException as ex:
            return "failed", {"node_id": node_id}, ex
        except Exception as ex:
            return "failed", self._error_details(node_id, inputs, ex), ex
        self.progress.finish(node_id)
        return "ran", None, None

    def _context(self, node_id, node, prompt, extra_data, prompt_id) -> RunContext:
        async def progress(value, total, image):
            # main.py's hook: interrupt check, progress_state, `progress`, then the old preview.
            self.check_interrupt()
            fmt = "PNG" if self.settings.preview == "png" else "JPEG"
            preview = (fmt, image, 512) if image is not None else None
            self.progress.update(node_id, value, total, preview)
            data = {"value": value, "max": total, "prompt_id": prompt_id, "node": node_id}
            self.hub.send_sync("progress", data, self.hub.client_id)
            if preview is not None and not self.hub.supports_preview_metadata(self.hub.client_id):
                self.hub.send_sync(hub_module.UNENCODED_PREVIEW_IMAGE, preview, self.hub.client_id)

        return RunContext(
            node_id=node_id,
            node=node,
            base=self.base,
            generation=self.generation,
            prompt=prompt,
            extra_data=extra_data,
            progress=progress,
            steps_override=self.settings.steps,
            step_seconds=self.settings.step_seconds,
            preview=self.settings.preview,
            fault=self.faults.node_fault(node.name),
            trainings=self.trainings,
        )

    def _input_data(self, inputs: dict, node: NodeDef) -> dict[str, list]:
        declared = {**node.required, **node.optional}
        data: dict[str, list] = {}
        for name, value in inputs.items():
            if is_link(value):
                entry = self._entry(value[0])
                outputs = entry.outputs if entry is not None else ()
                index = int(value[1])
                data[name] = list(outputs[index]) if index < len(outputs) else [None]
            elif name in declared:
                data[name] = [value]
        return data

    def _error_details(self, node_id: str, inputs: dict | None, ex: Exception) -> dict:
        exception_type = type_name(ex)
        tips = OOM_TIPS if exception_type.endswith("OutOfMemoryError") else ""
        shown = {}
        for name, values in (inputs or {}).items():
            shown[name] = [
                v if v is None or isinstance(v, int | float | str) else str(v) for v in values
            ]
        return {
            "node_id": node_id,
            "exception_message": f"{ex}\n{tips}",
            "exception_type": exception_type,
            "traceback": traceback.format_tb(ex.__traceback__),
            "current_inputs": shown,
        }

    def _report_error(self, prompt, prompt_id, executed, error, ex) -> None:
        node_id = error["node_id"]
        base = {
            "prompt_id": prompt_id,
            "node_id": node_id,
            "node_type": prompt[node_id]["class_type"],
            "executed": list(executed),
        }
        if isinstance(ex, InterruptProcessingException):
            self.add_message("execution_interrupted", base, broadcast=True)
            return
        details = {k: error[k] for k in ("exception_message", "exception_type", "traceback")}
        current = {"current_inputs": error["current_inputs"], "current_outputs": list(prompt)}
        self.add_message("execution_error", {**base, **details, **current}, broadcast=False)
