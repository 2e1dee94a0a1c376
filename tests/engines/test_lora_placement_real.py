"""Against a real ComfyUI: a LoRA uploaded with `type=output` into `loras/myspinbot` is
listed by its LoRA loaders (output/loras being a loras path, as the docs ask), which is
how a generate job brings a LoRA trained elsewhere to the box that renders."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from myspinbot.engines.comfyui import ComfyUI

from .comfyui_rig import ComfyUIProcess
from .support_engines import safetensors_header

pytestmark = pytest.mark.comfyui


def tiny_safetensors(path: Path) -> Path:
    header = b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    header += b" " * (-len(header) % 8)
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\x00" * 4)
    return path


def test_an_uploaded_lora_lands_where_the_loaders_list_it(
    engine: ComfyUI, comfyui_process: ComfyUIProcess, tmp_path: Path
) -> None:
    name = f"myspinbot/placed-{uuid.uuid4().hex[:8]}_4_steps_00001_.safetensors"
    assert not engine.has_lora(name)
    weights = tiny_safetensors(tmp_path / "lora.safetensors")
    assert engine.place_lora(name, weights, wait=lambda: time.sleep(0.2), seconds=10)
    landed = comfyui_process.base / "output" / "loras" / name
    assert safetensors_header(landed)["w"]["shape"] == [1]
    info = engine.http.object_info("LoraLoaderModelOnly") or {}
    assert name in info["input"]["required"]["lora_name"][0]
