"""Against a real ComfyUI on the CPU: the per-photo path of the shipped 0.3 training workflow
gives one latent per photo, where one batch through Wan's VAE gives one clip.

The VAE is ComfyUI's own Wan 2.1 VAE class with random weights, made by the GPU smoke
script's checkpoint maker (`tests/gpu/make_checkpoints.py --parts vae`): no download, and
the encoder is the real one (`comfy/ldm/wan/vae.py`, 1 + 4k frames kept). The photos are
`EmptyImage` batches; `RebatchImages` -> `VAEEncode` -> `RebatchLatents` is the chain of
`train_comfyui_0_3.json`, and `SaveLatent` writes what it made for us to measure.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from myspinbot.engines.comfyui import ComfyUI

from .comfyui_rig import ComfyUIProcess
from .support_engines import safetensors_header

pytestmark = pytest.mark.comfyui
MAKER = Path(__file__).parent.parent / "gpu" / "make_checkpoints.py"
VAE = "wan_2.1_vae.safetensors"


@pytest.fixture(scope="module")
def wan_vae(comfyui_process: ComfyUIProcess) -> str:
    models = comfyui_process.base / "models"
    if not (models / "vae" / VAE).exists():
        subprocess.run(
            [str(comfyui_process.python), str(MAKER), "--comfyui", str(comfyui_process.checkout),
             "--models", str(models), "--parts", "vae", "--device", "cpu"],
            check=True, capture_output=True, timeout=600,
        )  # fmt: skip
    return VAE


def photos(count: int) -> dict[str, Any]:
    size = {"width": 64, "height": 64, "batch_size": count, "color": 0x336699}
    return {"class_type": "EmptyImage", "inputs": size}


def save(latent: str, prefix: str) -> dict[str, Any]:
    inputs = {"samples": [latent, 0], "filename_prefix": prefix}
    return {"class_type": "SaveLatent", "inputs": inputs}


def saved_shape(engine: ComfyUI, base: Path, graph: dict[str, Any]) -> list[int]:
    entry = engine.run(graph, engine.new_submission())
    (saved,) = [o["latents"][0] for o in entry["outputs"].values() if "latents" in o]
    path = base / "output" / saved["subfolder"] / saved["filename"]
    return safetensors_header(path)["latent_tensor"]["shape"]


def per_photo(count: int, vae: str) -> dict[str, Any]:
    prefix = f"per-photo/{uuid.uuid4().hex[:8]}"
    return {
        "1": photos(count),
        "2": {"class_type": "VAELoader", "inputs": {"vae_name": vae}},
        "3": {"class_type": "RebatchImages", "inputs": {"images": ["1", 0], "batch_size": 1}},
        "4": {"class_type": "VAEEncode", "inputs": {"pixels": ["3", 0], "vae": ["2", 0]}},
        "5": {"class_type": "RebatchLatents", "inputs": {"latents": ["4", 0], "batch_size": 4096}},
        "6": save("5", prefix),
    }  # fmt: skip


def one_batch(count: int, vae: str) -> dict[str, Any]:
    prefix = f"one-batch/{uuid.uuid4().hex[:8]}"
    return {
        "1": photos(count),
        "2": {"class_type": "VAELoader", "inputs": {"vae_name": vae}},
        "3": {"class_type": "VAEEncode", "inputs": {"pixels": ["1", 0], "vae": ["2", 0]}},
        "4": save("3", prefix),
    }  # fmt: skip


@pytest.mark.parametrize(("count", "clip_frames"), [(4, 1), (10, 3)])
def test_each_photo_is_encoded_alone_and_gathered_into_one_sample_each(
    engine: ComfyUI, comfyui_process: ComfyUIProcess, wan_vae: str, count: int, clip_frames: int
) -> None:
    base = comfyui_process.base
    # [samples, channels, latent frames, h, w]: one latent frame per photo, all photos kept.
    assert saved_shape(engine, base, per_photo(count, wan_vae)) == [count, 16, 1, 8, 8]
    # The batch the old workflow sent: one clip, 1 + (count - 1) // 4 latent frames.
    assert saved_shape(engine, base, one_batch(count, wan_vae)) == [1, 16, clip_frames, 8, 8]
