"""Which workflow a job runs on a given ComfyUI: a person's own folder, or the shipped file
made for that server's generation of nodes.

ComfyUI's training nodes changed between 0.3.x and the current line (the dataset nodes of
`comfy_extras/nodes_dataset.py`, `SaveLoRA`, `TrainLoraNode`'s inputs and outputs), so the
package ships one training workflow per line and picks, per server, the first whose node
classes that server's `/object_info` lists. The rendering workflow runs on both lines.
A folder of one's own (`MYSPINBOT_COMFYUI_WORKFLOWS`) always wins: its `<kind>.json` is
used as it is, on every server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from .workflows import SHIPPED_WORKFLOWS, Workflow, load_workflow

# kind -> shipped files, newest ComfyUI first; the first is used when none fits
# (the pre-flight check then names what the server lacks).
SHIPPED_VARIANTS: dict[str, tuple[str, ...]] = {
    "generate": ("generate",),
    "train": ("train", "train_comfyui_0_3"),
}

KnownClasses = Callable[[Iterable[str]], set[str]]


def is_shipped(folder: Path) -> bool:
    return Path(folder).resolve() == SHIPPED_WORKFLOWS.resolve()


def choose_workflow(folder: Path, kind: str, known: KnownClasses) -> Workflow:
    """The `kind` workflow for the server whose node classes `known` reports."""
    if not is_shipped(folder):
        return load_workflow(folder, kind)
    variants = [load_workflow(folder, kind, stem) for stem in SHIPPED_VARIANTS[kind]]
    if len(variants) == 1:
        return variants[0]
    for workflow in variants:
        classes = workflow.class_types()
        if classes <= known(classes):
            return workflow
    return variants[0]
