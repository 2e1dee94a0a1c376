"""The LoRA-training nodes: dataset loaders, TrainLoraNode, SaveLoRANode/SaveLoRA, LossGraphNode.

2025 follows ComfyUI 0.3.64 `comfy_extras/nodes_train.py` (Comfy-Org/ComfyUI@a125cd84): the
training loop reports only to the console (tqdm), so no `progress` frames and no interrupt
checks until the node returns; SaveLoRANode writes `<prefix>_<counter>_.safetensors` (or
`<prefix>_<steps>_steps_<counter>_.safetensors`) and returns no ui; LossGraphNode writes
`temp/<prefix>_<date>.png`. 2026 follows the V3 rewrite (yzkee/ComfyUI@5ebb0c2e): a ProgressBar
of steps x grad_accumulation_steps, outputs (lora, loss_map, steps), LossGraphNode as a
PreviewImage; `LoadImageDataSetFromFolder`, `LoadImageTextDataSetFromFolder` and
`MakeTrainingDataset` as in `nodes_dataset.py` (Comfy-Org/ComfyUI@ef59e4b7,
comfyanonymous/ComfyUI@0120eb68): lists, one item per photo. Each training node records
the dataset it saw (samples, captions) for `GET /_standin/state`.
"""

from __future__ import annotations

import datetime
import os
import random
import struct

from PIL import Image, ImageDraw

from . import media
from .operations import TEMP_LETTERS, save_pngs, step_through, vae_encode
from .paths import save_path
from .values import Conditioning, Handle, Images, Lora, NodeResult, RunContext

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
    """0.3.64 LoadImageSetFromFolderNode: every photo in ONE IMAGE batch."""
    where = os.path.join(ctx.base.input, folder)
    names = [n for n in os.listdir(where) if n.lower().endswith(IMAGE_EXTENSIONS)]
    return NodeResult((_load_images(names, where, resize_method),))


def _folder_files(ctx: RunContext, folder: str) -> tuple[str, list[str]]:
    where = os.path.abspath(os.path.join(ctx.base.input, folder))
    if os.path.commonpath((ctx.base.input, where)) != ctx.base.input:
        raise ValueError(f"Invalid folder name {folder!r}: resolves outside of {ctx.base.input}")
    names = sorted(n for n in os.listdir(where) if n.lower().endswith(IMAGE_EXTENSIONS))
    if not names:
        raise ValueError("No valid images found in input")
    return where, names


def _captions(where: str, names: list[str]) -> list[str]:
    """The same-name .txt beside each image, stripped; "" where there is none."""
    captions = []
    for name in names:
        path = os.path.join(where, os.path.splitext(name)[0] + ".txt")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                captions.append(handle.read().strip())
        else:
            captions.append("")
    return captions


def _one_by_one(where: str, names: list[str]) -> list[Images]:
    images = []
    for name in names:
        with Image.open(os.path.join(where, name)) as source:
            images.append(Images([source.convert("RGB")]))
    return images


async def load_image_dataset_from_folder(ctx: RunContext, folder):
    """nodes_dataset.py LoadImageDataSetFromFolder: a list, one IMAGE per photo."""
    where, names = _folder_files(ctx, folder)
    return NodeResult((_one_by_one(where, names),))


async def load_image_text_dataset_from_folder(ctx: RunContext, folder):
    """LoadImageTextDataSetFromFolder: a list of images and a list of their captions."""
    where, names = _folder_files(ctx, folder)
    return NodeResult((_one_by_one(where, names), _captions(where, names)))


async def load_image_text_set_from_folder(
    ctx: RunContext, folder, clip, resize_method="None", width=-1, height=-1
):
    """0.3.64 LoadImageTextSetFromFolderNode: one IMAGE batch, one conditioning per caption."""
    where, names = _folder_files(ctx, folder)
    images = _load_images(names, where, resize_method)
    if width != -1 and height != -1:
        images = Images(image.resize((width, height)) for image in images)
    return NodeResult((images, Conditioning(_captions(where, names))))


async def make_training_dataset(ctx: RunContext, images, vae, clip, texts=None):
    """MakeTrainingDataset: each image encoded on its own, each text on its own."""
    texts = texts or [""]
    if len(texts) == 1 and len(images) > 1:
        texts = texts * len(images)
    elif len(texts) != len(images):
        raise ValueError(
            f"Number of texts ({len(texts)}) does not match number of images ({len(images)}). "
            f"Text list should have length {len(images)}, 1, or 0."
        )
    latents = [(await vae_encode(ctx, image, vae[0])).outputs[0] for image in images]
    return NodeResult((latents, [Conditioning([text]) for text in texts]))


def _dataset(ctx: RunContext, latents, positive) -> tuple[int, list[str]]:
    """(samples, captions) as TrainLoraNode counts them: the latent batch (0.3.64), or every
    latent of the list (current, is_input_list); one conditioning repeats for all."""
    if ctx.new:
        samples = sum(latent.batch for latent in latents)
        positive = [text for cond in positive for text in cond]
    else:
        samples = latents.batch
    if len(positive) == 1 and samples > 1:
        positive = list(positive) * samples
    elif len(positive) != samples:
        raise ValueError(
            f"Number of positive conditions ({len(positive)}) does not match number of images "
            f"({samples})."
        )
    return samples, list(positive)


async def train_lora(ctx: RunContext, model, latents, positive, **settings):
    if ctx.new:  # is_input_list: every widget value arrives as a list
        model = model[0]
        settings = {name: value[0] for name, value in settings.items()}
    steps, accumulate = settings["steps"], settings["grad_accumulation_steps"]
    existing_lora = settings.get("existing_lora", "[None]")
    samples, captions = _dataset(ctx, latents, positive)
    ctx.trainings.append({"node_id": ctx.node_id, "samples": samples, "captions": captions})
    existing_steps = 0
    if existing_lora != "[None]":
        if ctx.base.model_path("loras", existing_lora) is None:
            raise FileNotFoundError(
                f"Model in folder 'loras' with filename '{existing_lora}' not found."
            )
        # ComfyUI reads the step count from names like "trained_lora_10_steps_2025...".
        existing_steps = int(existing_lora.split("_steps_")[0].split("_")[-1])
    total = ctx.steps_override or steps * accumulate
    await step_through(ctx, total, report=ctx.new)
    rng = random.Random(settings["seed"])
    losses = [0.25 * 0.97**i + rng.uniform(0, 0.01) for i in range(total)]
    tensors = _lora_tensors(settings["rank"], settings["lora_dtype"], rng)
    lora = Lora(tensors, steps + existing_steps)
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
    "LoadImageTextDataSetFromFolder": load_image_text_dataset_from_folder,
    "LoadImageTextSetFromFolderNode": load_image_text_set_from_folder,
    "MakeTrainingDataset": make_training_dataset,
    "TrainLoraNode": train_lora,
    "SaveLoRANode": save_lora,
    "SaveLoRA": save_lora,
    "LossGraphNode": loss_graph,
}
