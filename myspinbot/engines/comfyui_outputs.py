"""What a finished prompt produced: the files /history lists, and the LoRA it does not list.

Names and subfolders here are ComfyUI's: they select what /view serves and are never
joined into a local path.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import WorkflowInvalid

LORA_SAVE_CLASSES = ("SaveLoRANode", "SaveLoRA")
MEDIA_ORDER = (
    (".mp4", ".webm", ".mov", ".mkv"),
    (".webp", ".gif", ".png", ".jpg", ".jpeg", ".apng"),
    (".flac", ".mp3", ".opus", ".wav", ".ogg"),
)
SAFE_SUFFIX = re.compile(r"^\.[a-z0-9]{1,10}$")


@dataclass(frozen=True)
class OutputFile:
    """One file a prompt produced, as /history lists it (ComfyUI's names: never a local path)."""

    node_id: str
    key: str  # the history key it was listed under: images, audio, gifs ...
    filename: str
    subfolder: str
    type: str  # output, temp or input

    @property
    def suffix(self) -> str:
        return os.path.splitext(self.filename)[1].lower()


def collect_outputs(entry: Mapping[str, Any]) -> list[OutputFile]:
    """Every file listed in a history entry's outputs, in node order (walks every list key)."""
    found: list[OutputFile] = []
    outputs = entry.get("outputs") or {}
    for node_id, ui in outputs.items():
        if not isinstance(ui, Mapping):
            continue
        for key, items in ui.items():
            if not isinstance(items, list):
                continue
            for item in items:
                if isinstance(item, Mapping) and "filename" in item and "type" in item:
                    found.append(
                        OutputFile(
                            node_id=str(node_id),
                            key=str(key),
                            filename=str(item["filename"]),
                            subfolder=str(item.get("subfolder") or ""),
                            type=str(item["type"]),
                        )
                    )
    return found


def lora_name_of(output_path: str) -> str | None:
    """The lora_name of a file under output/loras/, once that folder is a loras path."""
    head, _, rest = output_path.partition("/")
    return rest if head == "loras" and rest else None


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
