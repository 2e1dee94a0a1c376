"""Workflow files: ComfyUI's API-format graphs with {{placeholders}}, loaded and filled in.

A workflow is what ComfyUI's "Export (API)" writes: an object keyed by node id, each node
`{"class_type": ..., "inputs": {...}, "_meta": {"title": ...}}`, an input being a literal
or a link `[source_node_id, output_index]`. In string inputs, `{{name}}` marks a value the
job supplies:

- an input whose whole value is one placeholder takes the value itself, with its type
  (`"seed": "{{seed}}"` becomes the number 42);
- a placeholder inside a longer string is replaced by the value's text
  (`"filename_prefix": "clips/{{prefix}}"`);
- `{{lora}}`, `{{voice}}` and `{{voice_audio}}` are optional: when the job has none (the
  value is None), every node with an input that uses it is *bypassed*, as ComfyUI's own
  bypass does — each link to the node's output k is rewired to the node's k-th linked
  input (a LoraLoaderModelOnly hands its `model` straight on); a link to an output with no
  such input is dropped from its consumer (an optional `audio` input simply goes unset),
  and a node left with none of its links (a TrimAudioDuration after a bypassed LoadAudio)
  is bypassed too;
- any other `{{name}}` is an error that names it, found when the file is loaded.

Substitution is one pass: text a user typed into a prompt is never scanned again.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import WorkflowInvalid

SHIPPED_WORKFLOWS = Path(__file__).parent / "workflows"
WORKFLOW_KINDS = ("generate", "train")
WRITER_PROMPT_FILE = "writer.txt"

PLACEHOLDERS = {
    "prompt": "the prompt to render (as written by Ollama when it is configured)",
    "negative_prompt": "what the render should avoid",
    "seed": "a number (the same seed gives the same render)",
    "lora": "the LoRA file the job names, relative to ComfyUI's loras folders (optional)",
    "images": "the ComfyUI input subfolder holding the job's photos",
    "voice": "the uploaded voice file, relative to ComfyUI's input folder (optional)",
    "name": "the name given to the training job",
    "trigger": "the training job's trigger token (msb_<name>_<tag>; its captions start with it)",
    "prefix": "an output prefix unique to this attempt",
    "lora_prefix": "where the training workflow saves its LoRA (under ComfyUI's output/)",
    "voice_audio": "the spoken line's WAV, relative to ComfyUI's input folder (optional)",
    "fps": "the clip's frames per second (MYSPINBOT_CLIP_FPS): CreateVideo's fps",
    "frames": "the clip's length in frames (MYSPINBOT_CLIP_FRAMES)",
    "seconds": "the clip's length in seconds (frames / fps): where the speech is cut",
}
OPTIONAL_PLACEHOLDERS = frozenset({"lora", "voice", "voice_audio"})
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


@dataclass(frozen=True)
class NodeRef:
    """A node as a person recognises it: id, class and the title shown in ComfyUI."""

    id: str
    class_type: str
    title: str | None = None

    def __str__(self) -> str:
        title = f', "{self.title}"' if self.title and self.title != self.class_type else ""
        return f"node {self.id} ({self.class_type}{title})"


def node_ref(graph: Mapping[str, Any], node_id: str) -> NodeRef:
    """The NodeRef of `node_id` in an API-format graph (unknown ids still get one)."""
    node = graph.get(str(node_id))
    if not isinstance(node, Mapping):
        return NodeRef(str(node_id), "unknown")
    meta = node.get("_meta")
    title = meta.get("title") if isinstance(meta, Mapping) else None
    return NodeRef(str(node_id), str(node.get("class_type", "unknown")), title)


def is_link(value: Any) -> bool:
    """An input value that links to another node's output: `["<node id>", <index>]`."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str | int)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


@dataclass(frozen=True)
class Workflow:
    """One workflow file, checked for shape and for unknown placeholders."""

    kind: str
    source: str
    graph: Mapping[str, Any]

    def uses(self) -> dict[str, list[tuple[NodeRef, str]]]:
        """Each placeholder used, with the (node, input) pairs that use it."""
        used: dict[str, list[tuple[NodeRef, str]]] = {}
        for node_id, input_name, text in _string_inputs(self.graph):
            for name in PLACEHOLDER.findall(text):
                used.setdefault(name, []).append((node_ref(self.graph, node_id), input_name))
        return used

    def class_types(self) -> set[str]:
        return {str(node["class_type"]) for node in self.graph.values()}

    def fill(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A fresh API-format graph with every placeholder replaced (see the module doc)."""
        used = self.uses()
        missing = sorted(
            name for name in used if name not in OPTIONAL_PLACEHOLDERS and values.get(name) is None
        )
        if missing:
            names = ", ".join("{{" + name + "}}" for name in missing)
            raise WorkflowInvalid(f"{self.source}: no value for {names}")
        graph = copy.deepcopy(dict(self.graph))
        bypassed: set[str] = set()
        for node_id, node in graph.items():
            inputs = node["inputs"]
            for input_name, value in list(inputs.items()):
                if not isinstance(value, str) or not PLACEHOLDER.search(value):
                    continue
                if any(values.get(name) is None for name in PLACEHOLDER.findall(value)):
                    bypassed.add(node_id)
                    continue
                inputs[input_name] = _substitute(value, values)
        return _bypass(graph, bypassed) if bypassed else graph


def _substitute(text: str, values: Mapping[str, Any]) -> Any:
    whole = PLACEHOLDER.fullmatch(text)
    if whole:
        return values[whole.group(1)]
    return PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), text)


def _bypass(graph: dict[str, Any], bypassed: set[str]) -> dict[str, Any]:
    """Remove the bypassed nodes, rewiring their consumers as ComfyUI's bypass does."""

    def through(link: list[Any], seen: frozenset[str] = frozenset()) -> list[Any] | None:
        source = str(link[0])
        if source not in bypassed:
            return link
        if source in seen:
            return None
        linked = [v for v in graph[source]["inputs"].values() if is_link(v)]
        if link[1] >= len(linked):
            return None
        return through(linked[link[1]], seen | {source})

    bypassed = set(bypassed)
    while orphans := _orphans(graph, bypassed, through):
        bypassed |= orphans
    kept = {node_id: node for node_id, node in graph.items() if node_id not in bypassed}
    for node in kept.values():
        inputs = node["inputs"]
        for input_name, value in list(inputs.items()):
            if is_link(value) and str(value[0]) in bypassed:
                rewired = through(value)
                if rewired is None:
                    del inputs[input_name]
                else:
                    inputs[input_name] = list(rewired)
    return kept


def _orphans(graph: dict[str, Any], bypassed: set[str], through: Any) -> set[str]:
    """Kept nodes whose every link leads to a bypassed node with nothing to hand on."""
    found = set()
    for node_id, node in graph.items():
        links = [v for v in node["inputs"].values() if is_link(v)]
        if node_id not in bypassed and links and all(through(link) is None for link in links):
            found.add(node_id)
    return found


def _string_inputs(graph: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    for node_id, node in graph.items():
        for input_name, value in node["inputs"].items():
            if isinstance(value, str):
                yield node_id, input_name, value


def parse_workflow(text: str, kind: str, source: str) -> Workflow:
    """Check the text is an API-format graph whose placeholders are all known."""
    try:
        graph = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkflowInvalid(f"{source} is not JSON: {exc}") from None
    if isinstance(graph, Mapping) and "nodes" in graph and "links" in graph:
        raise WorkflowInvalid(
            f"{source} is ComfyUI's UI format; export it with Workflow → Export (API) instead"
        )
    if not isinstance(graph, Mapping) or not graph:
        raise WorkflowInvalid(f"{source} must be a JSON object of nodes keyed by node id")
    for node_id, node in graph.items():
        if (
            not isinstance(node, Mapping)
            or not isinstance(node.get("class_type"), str)
            or not isinstance(node.get("inputs"), Mapping)
        ):
            raise WorkflowInvalid(
                f'{source}: node {node_id} needs a "class_type" text and an "inputs" object'
            )
    workflow = Workflow(kind=kind, source=source, graph=graph)
    unknown = {name: refs for name, refs in workflow.uses().items() if name not in PLACEHOLDERS}
    if unknown:
        described = "; ".join(
            "{{" + name + "}} in " + ", ".join(f"{ref} input {inp}" for ref, inp in refs)
            for name, refs in sorted(unknown.items())
        )
        known = ", ".join("{{" + name + "}}" for name in PLACEHOLDERS)
        raise WorkflowInvalid(f"{source}: unknown placeholder {described} (known: {known})")
    return workflow


def load_workflow(folder: Path, kind: str, file_stem: str | None = None) -> Workflow:
    """Read `<folder>/<kind>.json`, or `<folder>/<file_stem>.json` as a `kind` workflow."""
    stem = file_stem or kind
    if not re.fullmatch(r"[a-z][a-z0-9_]*", stem):
        raise ValueError(f"not a workflow name: {stem!r}")
    path = Path(folder) / f"{stem}.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkflowInvalid(f"no {kind} workflow: {path.name} is missing from {folder}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowInvalid(f"cannot read {path.name} in {folder}: {exc}") from None
    return parse_workflow(text, kind, source=path.name)


def load_writer_prompt(folder: Path) -> str:
    """The system prompt Ollama writes shots with: `writer.txt` beside the workflows."""
    path = Path(folder) / WRITER_PROMPT_FILE
    if not path.is_file():
        path = SHIPPED_WORKFLOWS / WRITER_PROMPT_FILE
    return path.read_text(encoding="utf-8").strip()
