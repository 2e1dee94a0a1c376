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
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .comfyui_follow import PromptFollower, RunListener
from .comfyui_http import ComfyUIHTTP, ComfyUIServer, OutputFile, QueueState, collect_outputs
from .comfyui_socket import EventSocket
from .errors import EngineError, OutputMissing, WorkflowInvalid
from .preflight import check_graph

LORA_SAVE_CLASSES = ("SaveLoRANode", "SaveLoRA")
MEDIA_ORDER = (
    (".mp4", ".webm", ".mov", ".mkv"),
    (".webp", ".gif", ".png", ".jpg", ".jpeg", ".apng"),
    (".flac", ".mp3", ".opus", ".wav", ".ogg"),
)
SAFE_SUFFIX = re.compile(r"^\.[a-z0-9]{1,10}$")


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


def lora_name_of(output_path: str) -> str | None:
    """The lora_name of a file under output/loras/, once that folder is a loras path."""
    head, _, rest = output_path.partition("/")
    return rest if head == "loras" and rest else None


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


def media_rank(suffix: str) -> int:
    for rank, suffixes in enumerate(MEDIA_ORDER):
        if suffix in suffixes:
            return rank
    return len(MEDIA_ORDER)


def safe_suffix(suffix: str) -> str:
    return suffix if SAFE_SUFFIX.match(suffix) else ".bin"


def listed_under(entry: Mapping[str, Any], prefix: str) -> list[OutputFile]:
    folder, name = posixpath.split(prefix.strip("/"))
    return [
        output
        for output in collect_outputs(entry)
        if output.type == "output"
        and output.subfolder == folder
        and output.filename.startswith(name)
    ]


def predicted_lora_files(
    graph: Mapping[str, Any], prefix: str, counters: int = 3
) -> list[OutputFile]:
    """The names ComfyUI's SaveLoRA gives a file saved with this prefix, likeliest first."""
    folder, name = posixpath.split(posixpath.normpath(prefix.strip("/")))
    if not name:
        raise WorkflowInvalid(f"the LoRA prefix {prefix!r} has no file name part")
    steps = [steps_of(graph, node) for node in savers_of(graph, prefix)]
    stems = [f"{name}_{value}_steps" for value in steps if value is not None] + [name]
    candidates = []
    for stem in stems:
        for counter in range(1, counters + 1):
            candidates.append(f"{stem}_{counter:05}_.safetensors")
    # With steps in the name ComfyUI's counter parser reads the steps as the counter, so a
    # prefix used before continues at steps + 1.
    candidates += [f"{name}_{v}_steps_{v + 1:05}_.safetensors" for v in steps if v is not None]
    return [OutputFile("", "lora", filename, folder, "output") for filename in candidates]


def savers_of(graph: Mapping[str, Any], prefix: str) -> list[Mapping[str, Any]]:
    return [
        node
        for node in graph.values()
        if node["class_type"] in LORA_SAVE_CLASSES or prefix in node["inputs"].values()
    ]


def steps_of(graph: Mapping[str, Any], node: Mapping[str, Any]) -> int | None:
    """The steps a save node names its file with: a number, or the trainer's steps input."""
    steps = node["inputs"].get("steps")
    if isinstance(steps, int) and not isinstance(steps, bool):
        return steps
    if isinstance(steps, list) and len(steps) == 2:
        source = graph.get(str(steps[0])) or {}
        value = source.get("inputs", {}).get("steps")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None
