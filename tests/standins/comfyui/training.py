"""The LoRA-training nodes: dataset loaders, TrainLoraNode, SaveLoRANode/SaveLoRA, LossGraphNode.

2025 follows ComfyUI 0.3.64 `comfy_extras/nodes_train.py` (Comfy-Org/ComfyUI@a125cd84): the
training loop reports only to the console (tqdm), so no `progress` frames and no interrupt
checks until the node returns; SaveLoRANode writes `<prefix>_<counter>_.safetensors` (or
`<prefix>_<steps>_steps_<counter>_.safetensors`) and returns no ui; LossGraphNode writes
`temp/<prefix>_<date>.png`. 2026 follows the V3 rewrite (yzkee/ComfyUI@5ebb0c2e): a ProgressBar
of steps x grad_accumulation_steps, outputs (lora, loss_map, steps), LossGraphNode as a
PreviewImage; `LoadImageDataSetFromFolder` as in Comfy-Org/ComfyUI@ef59e4b7 `nodes_dataset.py`.
"""

from __future__ import annotations

import datetime
import os
import random
import struct

from PIL import Image, ImageDraw

from . import media
from .operations import TEMP_LETTERS, save_pngs, step_through
from .paths import save_path
from .values import Handle, Images, Lora, NodeResult, RunContext

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
MISMATCH = (
    "Your input image size does not match the first image in the dataset. Either select a valid "
    "resize method or use the same size for all images."
)


def _load_images(names: list[str], folder: str, resize_method: str = "None") -> Images:
    if not names:
        raise ValueError("No valid images found in input")
    images = Images()
    for name in names:
        with Image.open(os.path.join(folder, name)) as source:
            image = source.convert("RGB")
        if images and image.size != images[0].size:
            if resize_method == "None":
                raise ValueError(MISMATCH)
            if resize_method == "Crop":
                image = image.crop((0, 0, *images[0].size))
            else:  # Stretch, and Pad (which ComfyUI 0.3.64 also resizes)
                image = image.resize(images[0].size, Image.Resampling.LANCZOS)
        images.append(image)
    return images


async def load_image_set_from_folder(ctx: RunContext, folder, resize_method="None"):
    where = os.path.join(ctx.base.input, folder)
    names = [n for n in os.listdir(where) if n.lower().endswith(IMAGE_EXTENSIONS)]
    return NodeResult((_load_images(names, where, resize_method),))


async def load_image_dataset_from_folder(ctx: RunContext, folder):
    where = os.path.abspath(os.path.join(ctx.base.input, folder))
    if os.path.commonpath((ctx.base.input, where)) != ctx.base.input:
        raise ValueError(f"Invalid folder name {folder!r}: resolves outside of {ctx.base.input}")
    names = sorted(n for n in os.listdir(where) if n.lower().endswith(IMAGE_EXTENSIONS))
    images = Images()
    for name in names or [None]:
        if name is None:
            raise ValueError("No valid images found in input")
        with Image.open(os.path.join(where, name)) as source:
            images.append(source.convert("RGB"))
    return NodeResult((images,))


async def train_lora(
    ctx: RunContext,
    model,
    latents,
    positive,
    batch_size,
    grad_accumulation_steps,
    steps,
    learning_rate,
    rank,
    optimizer,
    loss_function,
    seed,
    training_dtype,
    lora_dtype,
    algorithm,
    gradient_checkpointing,
    existing_lora="[None]",
    **newer_inputs,
):
    existing_steps = 0
    if existing_lora != "[None]":
        if ctx.base.model_path("loras", existing_lora) is None:
            raise FileNotFoundError(
                f"Model in folder 'loras' with filename '{existing_lora}' not found."
            )
        # ComfyUI reads the step count from names like "trained_lora_10_steps_2025...".
        existing_steps = int(existing_lora.split("_steps_")[0].split("_")[-1])
    total = ctx.steps_override or steps * grad_accumulation_steps
    await step_through(ctx, total, report=ctx.new)
    rng = random.Random(seed)
    losses = [0.25 * 0.97**i + rng.uniform(0, 0.01) for i in range(total)]
    lora = Lora(_lora_tensors(rank, lora_dtype, rng), steps + existing_steps)
    loss_map = {"loss": losses}
    if ctx.new:
        return NodeResult((lora, loss_map, steps + existing_steps))
    lora_model = Handle("MODEL", model.name, (*model.loras, "<trained>"))
    return NodeResult((lora_model, lora, loss_map, steps + existing_steps))


def _lora_tensors(rank: int, dtype: str, rng: random.Random) -> dict:
    kind, width = ("BF16", 2) if dtype == "bf16" else ("F32", 4)
    tensors = {}
    for block in range(2):
        for part, shape in (("lora_down", [rank, 16]), ("lora_up", [16, rank])):
            count = shape[0] * shape[1]
            values = [rng.uniform(-0.01, 0.01) for _ in range(count)]
            data = struct.pack(f"<{count}f", *values)
            if width == 2:  # bfloat16: the high half of each float32
                data = b"".join(data[i + 2 : i + 4] for i in range(0, len(data), 4))
            tensors[f"diffusion_model.blocks.{block}.attn.q.{part}.weight"] = (kind, shape, data)
    return tensors


async def save_lora(ctx: RunContext, lora, prefix, steps=None):
    target, filename, counter, _, _ = save_path(prefix, ctx.base.output)
    if steps is None:
        name = f"{filename}_{counter:05}_.safetensors"
    else:
        name = f"{filename}_{steps}_steps_{counter:05}_.safetensors"
    media.write_safetensors(os.path.join(target, name), lora.tensors, {"steps": lora.steps})
    return NodeResult()  # no ui: nothing in `executed` or in history


async def loss_graph(ctx: RunContext, loss, filename_prefix):
    values = loss["loss"]
    width, height, margin = 800, 480, 40
    image = Image.new("RGB", (width + margin, height + margin), "white")
    draw = ImageDraw.Draw(image)
    low, high = min(values), max(values)
    scaled = [(v - low) / (high - low) for v in values]  # ZeroDivisionError when flat, as upstream
    previous = (margin, height - int(scaled[0] * height))
    for i, value in enumerate(scaled[1:], start=1):
        point = (margin + int(i / len(values) * width), height - int(value * height))
        draw.line([previous, point], fill="blue", width=2)
        previous = point
    draw.line([(margin, 0), (margin, height)], fill="black", width=2)
    draw.line([(margin, height), (width + margin, height)], fill="black", width=2)
    if ctx.new:
        suffix = "".join(random.choice(TEMP_LETTERS) for _ in range(5))
        results = save_pngs(
            ctx, Images([image]), f"ComfyUI_temp_{suffix}", ctx.base.temp, "temp", 1
        )
        return NodeResult(ui={"images": results, "animated": [False]})
    date = datetime.datetime.now().strftime("%Y%m%d_%H%M%S")
    name = f"{filename_prefix}_{date}.png"
    image.save(os.path.join(ctx.base.temp, name))
    return NodeResult(ui={"images": [{"filename": name, "subfolder": "", "type": "temp"}]})


TRAINING_OPERATIONS = {
    "LoadImageSetFromFolderNode": load_image_set_from_folder,
    "LoadImageDataSetFromFolder": load_image_dataset_from_folder,
    "TrainLoraNode": train_lora,
    "SaveLoRANode": save_lora,
    "SaveLoRA": save_lora,
    "LossGraphNode": loss_graph,
}
