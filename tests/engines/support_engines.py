"""Helpers of the engine tests: a listener that records, test inputs made on the spot."""

from __future__ import annotations

import json
import math
import struct
import threading
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from myspinbot.engines.comfyui_follow import RunListener
from myspinbot.engines.workflows import NodeRef, load_workflow

WORKFLOWS = Path(__file__).parent.parent / "data" / "workflows"


class Recorder(RunListener):
    """Keeps everything it hears; `on_progress` may act (cancel, kill) at a chosen step."""

    def __init__(self, on_progress: Callable[[float], None] | None = None) -> None:
        self.queued_ahead: list[int] = []
        self.started_count = 0
        self.nodes: list[NodeRef] = []
        self.steps: list[tuple[float, float, str | None]] = []
        self.previews: list[tuple[bytes, str]] = []
        self.waits = 0
        self.on_progress = on_progress
        self.progressed = threading.Event()

    def queued(self, ahead: int) -> None:
        self.queued_ahead.append(ahead)

    def started(self) -> None:
        self.started_count += 1

    def node(self, node: NodeRef) -> None:
        self.nodes.append(node)

    def progress(self, value: float, maximum: float, node: NodeRef | None) -> None:
        self.steps.append((value, maximum, node.class_type if node else None))
        self.progressed.set()
        if self.on_progress is not None:
            self.on_progress(value)

    def preview(self, image: bytes, mime: str, node: NodeRef | None) -> None:
        self.previews.append((image, mime))

    def waiting(self) -> None:
        self.waits += 1


def generate_graph(prefix: str, seed: int = 1, lora: str | None = None, **node3: Any) -> dict:
    values = {"prompt": "a fox", "negative_prompt": "blur", "seed": seed, "lora": lora}
    graph = load_workflow(WORKFLOWS, "generate").fill({**values, "prefix": prefix})
    graph["3"]["inputs"].update(node3)
    return graph


def make_photos(folder: Path, count: int = 3) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, color in enumerate(["red", "green", "blue", "white"][:count]):
        path = folder / f"photo-{index}.png"
        Image.new("RGB", (48 + index * 8, 40), color).save(path)
        paths.append(path)
    return paths


def make_voice(path: Path, seconds: float = 0.5, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        samples = (
            int(8000 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(int(seconds * rate))
        )
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return path


def safetensors_header(path: Path) -> dict:
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + length])
