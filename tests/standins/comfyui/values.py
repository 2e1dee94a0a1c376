"""What flows along the stand-in's links, and what its nodes run with.

ComfyUI passes torch tensors and model objects; the stand-in passes these small stand-ins for
them. Their `str()` is what an `execution_error`'s `current_inputs` shows for a linked input.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from .nodes import NodeDef
from .paths import BaseDir


class Images(list):
    """An IMAGE batch: RGB frames of one size."""

    def __str__(self) -> str:
        w, h = self[0].size if self else (0, 0)
        return f"tensor of shape [{len(self)}, {h}, {w}, 3]"


@dataclass
class Latent:
    batch: int
    width: int
    height: int
    frames: int = 1  # latent frames; a video latent decodes to (frames - 1) * 4 + 1 images
    video: bool = False
    seed: int = 0

    def __str__(self) -> str:
        if self.video:
            shape = [self.batch, 16, self.frames, self.height // 8, self.width // 8]
        else:
            shape = [self.batch, 4, self.height // 8, self.width // 8]
        return "{'samples': tensor of shape " + str(shape) + "}"


@dataclass
class Video:
    frames: Images
    fps: float
    audio: Audio | None = None

    def __str__(self) -> str:
        return f"<VideoFromComponents {len(self.frames)} frames at {self.fps} fps>"


@dataclass
class Audio:
    channels: list[list[float]]
    sample_rate: int

    def __str__(self) -> str:
        shape = [1, len(self.channels), len(self.channels[0])]
        return f"{{'waveform': tensor of shape {shape}, 'sample_rate': {self.sample_rate}}}"


@dataclass
class Handle:
    """A loaded model, CLIP, VAE or conditioning: only its name matters here."""

    kind: str
    name: str
    loras: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"<{self.kind} {self.name}>"


class Conditioning(list):
    """CONDITIONING: one entry per text encoded (ComfyUI: `[[cond, {...}], ...]`)."""

    def __str__(self) -> str:
        return f"[conditioning of {len(self)} text(s)]"


@dataclass
class Lora:
    tensors: dict[str, tuple[str, list[int], bytes]]
    steps: int

    def __str__(self) -> str:
        return f"<LoRA state dict with {len(self.tensors)} tensors>"


@dataclass
class NodeResult:
    outputs: tuple = ()
    ui: dict | None = None


Progress = Callable[[int, int, "Image.Image | None"], Awaitable[None]]


@dataclass
class RunContext:
    node_id: str
    node: NodeDef
    base: BaseDir
    generation: str
    prompt: dict
    extra_data: dict
    progress: Progress
    steps_override: int = 0
    step_seconds: float = 0.0
    preview: str | None = None  # "jpeg", "png" or None
    fault: dict[str, Any] | None = field(default=None)
    # What training nodes saw (dataset size, captions): GET /_standin/state "trainings".
    trainings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def new(self) -> bool:
        return self.generation == "2026"
