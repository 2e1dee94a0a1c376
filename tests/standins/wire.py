"""Raw-protocol helpers for the stand-ins' own tests: a recording WebSocket and ready-made graphs.

Deliberately no engine-client code: frames are read as they come off the wire, with deadlines.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from websockets.sync.client import connect

Frame = dict[str, Any] | bytes

SMOKE_PROMPT = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 64, "height": 64, "batch_size": 8, "color": 16711680},
    },
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {
        "class_type": "ImageScale",
        "inputs": {
            "image": ["2", 0],
            "upscale_method": "nearest-exact",
            "width": 32,
            "height": 32,
            "crop": "disabled",
        },
    },
    "4": {
        "class_type": "SaveAnimatedWEBP",
        "inputs": {
            "images": ["3", 0],
            "filename_prefix": "smoke/anim",
            "fps": 8.0,
            "lossless": False,
            "quality": 80,
            "method": "default",
        },
    },
    "5": {"class_type": "CreateVideo", "inputs": {"images": ["3", 0], "fps": 8.0}},
    "6": {
        "class_type": "SaveVideo",
        "inputs": {
            "video": ["5", 0],
            "filename_prefix": "smoke/clip",
            "format": "mp4",
            "codec": "h264",
        },
    },
}


def sampler_prompt(steps: int = 3, prefix: str = "render/job", seed: int = 1) -> dict:
    """The text-to-video graph of ENGINES.md §4.5 A without a LoRA, at a tiny size."""
    return {
        "1": {
            "class_type": "UNETLoader",
            "inputs": {"unet_name": "wan.safetensors", "weight_dtype": "default"},
        },
        "2": {
            "class_type": "CLIPLoader",
            "inputs": {"clip_name": "umt5.safetensors", "type": "wan"},
        },
        "3": {"class_type": "VAELoader", "inputs": {"vae_name": "wan_vae.safetensors"}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["2", 0], "text": "a fox"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["2", 0], "text": "blurry"}},
        "7": {
            "class_type": "EmptyHunyuanLatentVideo",
            "inputs": {"width": 64, "height": 48, "length": 5, "batch_size": 1},
        },
        "8": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["1", 0],
                "seed": seed,
                "steps": steps,
                "cfg": 6.0,
                "sampler_name": "uni_pc",
                "scheduler": "simple",
                "positive": ["5", 0],
                "negative": ["6", 0],
                "latent_image": ["7", 0],
                "denoise": 1.0,
            },
        },
        "9": {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0], "vae": ["3", 0]}},
        "10": {"class_type": "CreateVideo", "inputs": {"images": ["9", 0], "fps": 16.0}},
        "11": {
            "class_type": "SaveVideo",
            "inputs": {
                "video": ["10", 0],
                "filename_prefix": prefix,
                "format": "auto",
                "codec": "auto",
            },
        },
    }


SAMPLER_MODELS = {
    "diffusion_models": ["wan.safetensors"],
    "text_encoders": ["umt5.safetensors"],
    "vae": ["wan_vae.safetensors"],
}


class Socket:
    """A WebSocket that keeps every frame it reads, text frames decoded."""

    def __init__(self, url: str, first_message: dict | None = None) -> None:
        # Unbounded: a full queue would stop the reader, and with it the close handshake.
        self.ws = connect(url, max_size=None, max_queue=None, open_timeout=10)
        self.frames: list[Frame] = []
        if first_message is not None:
            self.ws.send(json.dumps(first_message))

    def __enter__(self) -> Socket:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.ws.close()

    def next(self, timeout: float = 10.0) -> Frame:
        raw = self.ws.recv(timeout=timeout)
        frame = raw if isinstance(raw, bytes) else json.loads(raw)
        self.frames.append(frame)
        return frame

    def until(self, predicate: Callable[[Frame], bool], timeout: float = 10.0) -> list[Frame]:
        """Read until a frame satisfies `predicate`; the frames read, that one last."""
        deadline = time.monotonic() + timeout
        read: list[Frame] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching frame in {timeout}s; read {types(read)}")
            frame = self.next(remaining)
            read.append(frame)
            if predicate(frame):
                return read

    def until_done(self, prompt_id: str, timeout: float = 10.0) -> list[Frame]:
        """Read up to ComfyUI's end marker, `executing {node: null}` for `prompt_id`."""
        return self.until(lambda f: is_done(f, prompt_id), timeout)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `condition` until it holds, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met in {timeout}s")
        time.sleep(0.01)


def is_done(frame: Frame, prompt_id: str) -> bool:
    return (
        isinstance(frame, dict)
        and frame["type"] == "executing"
        and frame["data"].get("node") is None
        and frame["data"].get("prompt_id") == prompt_id
    )


def of_type(kind: str) -> Callable[[Frame], bool]:
    return lambda f: isinstance(f, dict) and f["type"] == kind


def types(frames: list[Frame]) -> list[str]:
    return [
        f["type"] if isinstance(f, dict) else f"binary{int.from_bytes(f[:4], 'big')}"
        for f in frames
    ]


def squeeze(names: list[str]) -> list[str]:
    """Consecutive duplicates folded (`progress_state` comes in runs)."""
    out: list[str] = []
    for name in names:
        if not out or out[-1] != name:
            out.append(name)
    return out


def queue_left(count: int) -> Callable[[Frame], bool]:
    """A `status` frame saying `count` prompts remain."""
    return lambda f: (
        isinstance(f, dict)
        and f["type"] == "status"
        and f["data"]["status"]["exec_info"]["queue_remaining"] == count
    )


def data_of(frames: list[Frame], kind: str) -> list[dict]:
    """The `data` of every text frame of type `kind`."""
    return [f["data"] for f in frames if isinstance(f, dict) and f["type"] == kind]
