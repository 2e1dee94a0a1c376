"""The ComfyUI engine: what a pipeline composes to render or train with a real ComfyUI.

A pipeline's round, each step a call it can store the result of:

    engine = ComfyUI(ComfyUIServer(url, token))
    engine.health()                                  # reachable? version, queue length
    graph = load_workflow(folder, "generate").fill(values)
    engine.preflight(graph)                          # MissingNode / MissingModel, at once
    images = engine.upload_inputs(photos, subfolder) # names as ComfyUI's nodes see them
    submission = engine.new_submission()             # store prompt_id + client_id first ...
    entry = engine.run(graph, submission, listener)  # ... then submit and follow it
    files = engine.download_outputs(entry, folder)   # every output, under names we make

On a new attempt after a lost worker, `engine.attach(stored_submission, graph, listener)`
follows the prompt still queued, running or finished, or returns None when ComfyUI no
longer knows it (the caller resubmits). `engine.cancel(prompt_id)` touches that prompt
only. Errors are the engine tree (`errors.py`): `transient` ones are worth a retry.
"""

from __future__ import annotations

import posixpath
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .comfyui_follow import PromptFollower, RunListener
from .comfyui_http import ComfyUIHTTP, ComfyUIServer, QueueState
from .comfyui_outputs import (
    OutputFile,
    collect_outputs,
    listed_under,
    lora_name_of,
    media_rank,
    predicted_lora_files,
    safe_suffix,
)
from .comfyui_socket import EventSocket
from .errors import EngineError, OutputMissing
from .preflight import check_graph


@dataclass(frozen=True)
class Submission:
    """What identifies a prompt across attempts: store both before submitting."""

    prompt_id: str
    client_id: str


@dataclass(frozen=True)
class Health:
    reachable: bool
    version: str | None = None
    queue_length: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class SavedLoRA:
    """A trained LoRA: where ComfyUI saved it, and the name its LoRA loaders know it by."""

    output_path: (
        str  # relative to ComfyUI's output folder, e.g. loras/myspinbot/x_00001_.safetensors
    )
    lora_name: str | None  # relative to output/loras (None when saved elsewhere)
    size: int


@dataclass(frozen=True)
class Downloaded:
    """An output saved locally under `name` (ours), with where it came from (ComfyUI's)."""

    name: str
    size: int
    source: OutputFile


class ComfyUI:
    """One ComfyUI server, as the pipelines use it. Synchronous; one per worker thread."""

    def __init__(self, server: ComfyUIServer, http: ComfyUIHTTP | None = None) -> None:
        self.server = server
        self.http = http or ComfyUIHTTP(server)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ComfyUI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- health --------------------------------------------------------------------------

    def health(self) -> Health:
        """Never raises: an unreachable server is reported, with a message safe to show."""
        try:
            version = self.http.version()
            return Health(True, version=version, queue_length=len(self.http.queue()))
        except EngineError as exc:
            return Health(False, error=str(exc))

    def queue(self) -> QueueState:
        return self.http.queue()

    # -- before a prompt -----------------------------------------------------------------

    def preflight(self, graph: Mapping[str, Any]) -> None:
        """Fail now, naming them, on node classes or model files the server lacks."""
        classes = {str(node["class_type"]) for node in graph.values()}
        check_graph(graph, self.http.object_info_for(classes))

    def upload_inputs(self, files: Iterable[Path], subfolder: str) -> list[str]:
        """Upload files to ComfyUI's input/<subfolder>/ (overwriting); their node-side names."""
        return [self.http.upload(Path(path), subfolder) for path in files]

    def known_classes(self, classes: Iterable[str]) -> set[str]:
        """Those of `classes` the server has a node for (its /object_info lists them)."""
        return {name for name, info in self.http.object_info_for(classes).items() if info}

    def has_lora(self, lora_name: str) -> bool:
        return lora_name in (self.http.models("loras") or [])

    def place_lora(
        self, lora_name: str, weights: Path, wait: Callable[[], None], seconds: float = 10.0
    ) -> bool:
        """Upload `weights` to output/loras/<lora_name>, where a ComfyUI whose loras paths
        include output/loras (as the one that trained it) lists it; True once it does.

        `wait` is called between checks (it may raise: a cancelled job). ComfyUI's lists
        are cached until the folder changes, so a new file shows on the next request.
        """
        subfolder, _, filename = f"loras/{lora_name}".rpartition("/")
        self.http.upload(weights, subfolder, filename, folder="output")
        deadline = time.monotonic() + seconds
        while not self.has_lora(lora_name):
            if time.monotonic() >= deadline:
                return False
            wait()
        return True

    @staticmethod
    def new_submission() -> Submission:
        # Lowercase hyphenated uuid4: what every ComfyUI version accepts as a prompt_id.
        return Submission(prompt_id=str(uuid.uuid4()), client_id=uuid.uuid4().hex)

    # -- running -------------------------------------------------------------------------

    def run(
        self,
        graph: Mapping[str, Any],
        submission: Submission,
        listener: RunListener | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> dict[str, Any]:
        """Submit `graph` as `submission` and follow it to the end; its /history entry.

        The socket is opened before the POST, so no event of the prompt is missed.
        """
        listener = listener or RunListener()
        socket = EventSocket(self.server, submission.client_id).open()
        try:
            self.http.submit(graph, submission.prompt_id, submission.client_id)
        except BaseException:
            socket.close()
            raise
        follower = PromptFollower(
            self.http, submission.prompt_id, submission.client_id, graph, listener, should_cancel
        )
        return follower.follow(socket)

    def attach(
        self,
        submission: Submission,
        graph: Mapping[str, Any],
        listener: RunListener | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> dict[str, Any] | None:
        """Follow a prompt submitted earlier; None when ComfyUI no longer knows it."""
        listener = listener or RunListener()
        follower = PromptFollower(
            self.http, submission.prompt_id, submission.client_id, graph, listener, should_cancel
        )
        queue = self.http.queue()
        if submission.prompt_id not in queue.running + queue.pending:
            entry = self.http.history(submission.prompt_id)
            return None if entry is None else follower.finish(entry)
        socket = EventSocket(self.server, submission.client_id).open()
        return follower.follow(socket)

    def cancel(self, prompt_id: str) -> None:
        """Delete the prompt from the queue, or interrupt it if it is the one running."""
        self.http.cancel(prompt_id)

    def wait_until_stopped(self, prompt_id: str, seconds: float) -> bool:
        """After `cancel`: True once ComfyUI no longer queues or runs the prompt.

        ComfyUI stops a prompt at its next interrupt check: a sampler's or a newer
        trainer's next step, or (ComfyUI 0.3's training loop checks none) the next node.
        """
        deadline = time.monotonic() + seconds
        while True:
            queue = self.http.queue()
            if prompt_id not in queue.running + queue.pending:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.25)

    # -- after a prompt ------------------------------------------------------------------

    def download_outputs(
        self, entry: Mapping[str, Any], folder: Path, stem: str = "output"
    ) -> list[Downloaded]:
        """Save every output file of a history entry into `folder` as <stem>-<n><suffix>.

        Videos come first, then images, audio and the rest, each in ComfyUI's order. Files
        of type temp (previews, loss graphs) are included; the suffix is ComfyUI's only when
        it is a plain extension.
        """
        saved = []
        outputs = sorted(collect_outputs(entry), key=lambda output: media_rank(output.suffix))
        for number, output in enumerate(outputs, start=1):
            name = f"{stem}-{number}{safe_suffix(output.suffix)}"
            size = self.http.download(output, Path(folder) / name)
            saved.append(Downloaded(name=name, size=size, source=output))
        return saved

    def download_lora(
        self,
        entry: Mapping[str, Any],
        graph: Mapping[str, Any],
        lora_prefix: str,
        destination: Path,
    ) -> SavedLoRA:
        """Save the LoRA a training prompt wrote under `lora_prefix` into `destination`.

        A file listed in the history under that prefix is taken; save nodes that report
        nothing (SaveLoRANode) are found by ComfyUI's own naming rule,
        <prefix>_<counter:05>_.safetensors or <prefix>_<steps>_steps_<counter:05>_.safetensors.
        """
        candidates = listed_under(entry, lora_prefix) + predicted_lora_files(graph, lora_prefix)
        for output in candidates:
            try:
                size = self.http.download(output, destination)
            except FileNotFoundError:
                continue
            path = posixpath.join(output.subfolder, output.filename)
            return SavedLoRA(output_path=path, lora_name=lora_name_of(path), size=size)
        raise OutputMissing(
            f"the training workflow finished but saved nothing under {lora_prefix!r} in "
            "ComfyUI's output folder: its save node's prefix should be {{lora_prefix}}"
        )
