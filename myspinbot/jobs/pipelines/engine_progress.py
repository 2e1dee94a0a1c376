"""What ComfyUI says while a prompt runs, as job progress a person can read.

"2 ahead in ComfyUI", then the running node ("KSampler 12/30"), with a percent that
moves steadily: every node has a weight (samplers and trainers, which take nearly all
the time, weigh most) and a node's own steps fill its share. Preview frames are kept as
the attempt's `preview` file, and the job's result says which frame it is, so a card
can show the latest one live. Writes are throttled, but a node's last step always shows;
cancels and shutdowns are noticed at every event and at least twice a second (`waiting`).

A trainer that reports no steps (ComfyUI 0.3's training loop writes only to its console)
is shown as "training (ComfyUI reports no steps), 1:05 elapsed", the time counting up
every second, instead of a bar that looks stuck.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...engines.comfyui_follow import RunListener
from ...engines.workflows import NodeRef
from .base import Reporter

HEAVY = ("KSampler", "Sampler", "TrainLora", "Train")  # class names that take the time
HEAVY_WEIGHT, NODE_WEIGHT = 40.0, 1.0
MIN_INTERVAL = 0.25  # seconds between progress writes of the same kind
PREVIEW_INTERVAL = 1.0  # seconds between kept preview frames
PREVIEW_STEM = "preview"
NO_STEPS = "training (ComfyUI reports no steps)"
ELAPSED_EVERY = 1.0  # seconds between elapsed-time messages of a silent trainer


def node_weight(node: Mapping[str, Any]) -> float:
    """A sampler or a trainer (by its class or its title) weighs most."""
    named = f"{node.get('class_type', '')} {(node.get('_meta') or {}).get('title', '')}"
    return HEAVY_WEIGHT if any(word in named for word in HEAVY) else NODE_WEIGHT


class ProgressListener(RunListener):
    """Maps one prompt's run onto the job's progress between `low` and `high` percent."""

    def __init__(
        self,
        reporter: Reporter,
        graph: Mapping[str, Any],
        outputs: Path,
        low: int,
        high: int,
        comfyui: Mapping[str, Any],
    ) -> None:
        """`comfyui` is the job result's `comfyui` entry (prompt id, client id, server)."""
        self.reporter = reporter
        self.outputs = outputs
        self.comfyui = dict(comfyui)
        self.low, self.high = low, high
        self.weights = {node_id: node_weight(node) for node_id, node in graph.items()}
        self.total = sum(self.weights.values()) or 1.0
        self.done: set[str] = set()
        self.current: NodeRef | None = None
        self.percent = low
        self.frames = 0
        self._last_write = 0.0
        self._last_preview = 0.0
        self._node_since = 0.0  # when the current node began
        self._node_steps = False  # whether the current node reported a step
        self._last_elapsed = 0.0

    # -- RunListener ---------------------------------------------------------------------

    def queued(self, ahead: int) -> None:
        text = "next in ComfyUI" if ahead == 0 else f"{ahead} ahead in ComfyUI"
        self._write(text, force=True, result=self._ahead(ahead))

    def started(self) -> None:
        self._write("running in ComfyUI", force=True, result=self._ahead(None))

    def node(self, node: NodeRef) -> None:
        if self.current is not None:
            self.done.add(self.current.id)
        self.current = node
        self._node_since, self._node_steps = time.monotonic(), False
        self._advance(0.0)
        self._write(_label(node), force=True)

    def progress(self, value: float, maximum: float, node: NodeRef | None) -> None:
        if node is not None and (self.current is None or node.id != self.current.id):
            self.node(node)
        self._node_steps = True
        fraction = value / maximum if maximum > 0 else 0.0
        self._advance(fraction)
        label = _label(node or self.current)
        last_step = maximum > 0 and value >= maximum  # never throttled away: "KSampler 30/30"
        self._write(f"{label} {int(value)}/{int(maximum)}" if maximum > 0 else label, last_step)

    def preview(self, image: bytes, mime: str, node: NodeRef | None) -> None:
        now = time.monotonic()
        if now - self._last_preview < PREVIEW_INTERVAL:
            return
        self._last_preview = now
        suffix = ".png" if mime == "image/png" else ".jpg"
        name = PREVIEW_STEM + suffix
        tmp = self.outputs / f".{name}.tmp"
        tmp.write_bytes(image)
        os.replace(tmp, self.outputs / name)  # readers never see half a frame
        self.frames += 1
        self._write(
            _label(node or self.current),
            force=True,
            result={"preview": {"name": name, "frame": self.frames}},
        )

    def waiting(self) -> None:
        now = time.monotonic()
        if (
            self.current is not None
            and not self._node_steps
            and is_trainer(self.current)
            and now - self._node_since >= ELAPSED_EVERY
            and now - self._last_elapsed >= ELAPSED_EVERY
        ):
            self._last_elapsed = now
            self._write(f"{NO_STEPS}, {elapsed(now - self._node_since)} elapsed", force=True)
            return
        self.reporter.check()

    # -- helpers -------------------------------------------------------------------------

    def _ahead(self, ahead: int | None) -> dict[str, Any]:
        self.comfyui["ahead"] = ahead
        return {"comfyui": dict(self.comfyui)}

    def _advance(self, fraction: float) -> None:
        done = sum(self.weights.get(node_id, NODE_WEIGHT) for node_id in self.done)
        if self.current is not None:
            done += self.weights.get(self.current.id, NODE_WEIGHT) * min(1.0, fraction)
        share = min(1.0, done / self.total)
        # Monotonic: ComfyUI can re-run a node's steps (a second sampler pass).
        self.percent = max(self.percent, int(self.low + (self.high - self.low) * share))

    def _write(
        self, message: str, force: bool = False, result: Mapping[str, Any] | None = None
    ) -> None:
        now = time.monotonic()
        if not force and now - self._last_write < MIN_INTERVAL:
            self.reporter.check()
            return
        self._last_write = now
        self.reporter.report(self.percent, message, result=result)


def _label(node: NodeRef | None) -> str:
    if node is None:
        return "running in ComfyUI"
    return node.title or node.class_type


def is_trainer(node: NodeRef) -> bool:
    return "Train" in f"{node.class_type} {node.title or ''}"


def elapsed(seconds: float) -> str:
    """1:05, or 1:02:05 past an hour."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
