"""What each image, video, audio, loader and sampler node does when the stand-in runs it.

Outputs are real files named by ComfyUI's rules (`paths.save_path`), with the ui dicts the real
nodes return (ComfyUI 0.3.64: `nodes.py` SaveImage/PreviewImage, `nodes_images.py`
SaveAnimatedWEBP, `nodes_audio.py` SaveAudio -> `audio`; SaveVideo and LoadAudio are in
`audio_video.py`). Models are never read: a loader only hands on the file's name.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import os
import random
from dataclasses import replace

from PIL import Image, ImageDraw, ImageOps, ImageSequence
from PIL.PngImagePlugin import PngInfo

from . import media
from .paths import save_path
from .values import Conditioning, Handle, Images, Latent, NodeResult, RunContext, Video

RESAMPLING = {
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
WEBP_METHODS = {"default": 4, "fastest": 0, "slowest": 6}
TEMP_LETTERS = "abcdefghijklmnopqrstupvxyz"  # sic: ComfyUI's alphabet for temp names


def make_exception(type_name: str, message: str) -> Exception:
    """An exception whose `module.QualName` is `type_name`, as `execution_error` reports it."""
    module, _, name = type_name.rpartition(".")
    if not module and isinstance(getattr(builtins, name, None), type):
        return getattr(builtins, name)(message)
    cls = type(name, (RuntimeError,), {"__module__": module or "builtins", "__qualname__": name})
    return cls(message)


def raise_fault(ctx: RunContext, step: int) -> None:
    fault = ctx.fault
    if fault is not None and int(fault.get("at_step") or 0) == step:
        raise make_exception(fault["exception_type"], fault["message"])


async def step_through(
    ctx: RunContext, total: int, *, report: bool, preview_size: tuple[int, int] | None = None
) -> None:
    """Take `total` steps of `step_seconds`; `report` sends ProgressBar updates.

    With `preview_size` (a sampler's latent size) and `--preview`, each step carries a preview
    image of that size, as ComfyUI's Latent2RGB previewer produces.
    """
    raise_fault(ctx, 0)
    for step in range(1, total + 1):
        await asyncio.sleep(ctx.step_seconds)
        raise_fault(ctx, step)
        if report:
            preview = None
            if preview_size and ctx.preview:
                shade = int(255 * step / total)
                preview = Image.new("RGB", preview_size, (shade, 96, 255 - shade))
            await ctx.progress(step, total, preview)


def _metadata_png(ctx: RunContext) -> PngInfo:
    info = PngInfo()
    info.add_text("prompt", json.dumps(ctx.prompt))
    for key, value in (ctx.extra_data.get("extra_pnginfo") or {}).items():
        info.add_text(key, json.dumps(value))
    return info


def save_pngs(ctx: RunContext, images: Images, prefix: str, folder: str, kind: str, level: int):
    width, height = images[0].size
    target, filename, counter, subfolder, _ = save_path(prefix, folder, width, height)
    results = []
    for number, image in enumerate(images):
        name = f"{filename.replace('%batch_num%', str(number))}_{counter:05}_.png"
        image.save(os.path.join(target, name), pnginfo=_metadata_png(ctx), compress_level=level)
        results.append({"filename": name, "subfolder": subfolder, "type": kind})
        counter += 1
    return results


async def empty_image(ctx, width, height, batch_size=1, color=0):
    rgb = ((color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF)
    return NodeResult((Images(Image.new("RGB", (width, height), rgb) for _ in range(batch_size)),))


async def image_invert(ctx, image):
    return NodeResult((Images(ImageOps.invert(frame) for frame in image),))


async def image_scale(ctx, image, upscale_method, width, height, crop):
    if width == 0 and height == 0:
        return NodeResult((image,))
    old_w, old_h = image[0].size
    width = width or max(1, round(old_w * height / old_h))
    height = height or max(1, round(old_h * width / old_w))
    frames = Images()
    for frame in image:
        if crop == "center":
            frame = ImageOps.fit(frame, (width, height), RESAMPLING[upscale_method])
        frames.append(frame.resize((width, height), RESAMPLING[upscale_method]))
    return NodeResult((frames,))


async def load_image(ctx, image):
    with Image.open(ctx.base.annotated_path(image)) as source:
        frames = Images()
        for frame in ImageSequence.Iterator(source):
            if not frames or frame.size == frames[0].size:
                frames.append(frame.convert("RGB"))
    return NodeResult((frames, Handle("MASK", image)))


async def save_image(ctx, images, filename_prefix="ComfyUI"):
    results = save_pngs(ctx, images, filename_prefix, ctx.base.output, "output", 4)
    return NodeResult(ui={"images": results})


async def preview_image(ctx, images):
    suffix = "".join(random.choice(TEMP_LETTERS) for _ in range(5))
    results = save_pngs(ctx, images, f"ComfyUI_temp_{suffix}", ctx.base.temp, "temp", 1)
    return NodeResult(ui={"images": results})


async def save_animated_webp(ctx, images, fps, filename_prefix, lossless, quality, method):
    width, height = images[0].size
    target, filename, counter, subfolder, _ = save_path(
        filename_prefix, ctx.base.output, width, height
    )
    exif = images[0].getexif()
    exif[0x0110] = f"prompt:{json.dumps(ctx.prompt)}"
    name = f"{filename}_{counter:05}_.webp"
    images[0].save(
        os.path.join(target, name),
        save_all=True,
        duration=int(1000.0 / fps),
        append_images=images[1:],
        exif=exif,
        lossless=lossless,
        quality=quality,
        method=WEBP_METHODS.get(method),
    )
    result = {"filename": name, "subfolder": subfolder, "type": "output"}
    return NodeResult(ui={"images": [result], "animated": [len(images) != 1]})


async def create_video(ctx, images, fps, audio=None):
    return NodeResult((Video(images, fps, audio),))


async def save_audio(ctx, audio, filename_prefix="ComfyUI"):
    target, filename, counter, subfolder, _ = save_path(filename_prefix, ctx.base.output)
    name = f"{filename.replace('%batch_num%', '0')}_{counter:05}_.flac"
    media.write_flac(os.path.join(target, name), audio.channels, audio.sample_rate)
    return NodeResult(ui={"audio": [{"filename": name, "subfolder": subfolder, "type": "output"}]})


async def unet_loader(ctx, unet_name, weight_dtype):
    return NodeResult((Handle("MODEL", unet_name),))


async def clip_loader(ctx, clip_name, type, device="default"):
    return NodeResult((Handle("CLIP", clip_name),))


async def vae_loader(ctx, vae_name):
    return NodeResult((Handle("VAE", vae_name),))


async def checkpoint_loader(ctx, ckpt_name):
    return NodeResult(
        (Handle("MODEL", ckpt_name), Handle("CLIP", ckpt_name), Handle("VAE", ckpt_name))
    )


async def lora_loader_model_only(ctx, model, lora_name, strength_model):
    if strength_model == 0:
        return NodeResult((model,))
    return NodeResult((Handle("MODEL", model.name, (*model.loras, lora_name)),))


async def clip_text_encode(ctx, text, clip):
    return NodeResult((Conditioning([text]),))


async def empty_latent_video(ctx, width, height, length, batch_size=1):
    return NodeResult((Latent(batch_size, width, height, ((length - 1) // 4) + 1, video=True),))


async def ksampler(
    ctx,
    model,
    seed,
    steps,
    cfg,
    sampler_name,
    scheduler,
    positive,
    negative,
    latent_image,
    denoise=1.0,
):
    latent = latent_image
    size = (max(1, latent.width // 8), max(1, latent.height // 8))
    await step_through(ctx, ctx.steps_override or steps, report=True, preview_size=size)
    return NodeResult(
        (Latent(latent.batch, latent.width, latent.height, latent.frames, latent.video, seed),)
    )


async def vae_decode(ctx, samples, vae):
    count = ((samples.frames - 1) * 4 + 1) if samples.video else 1
    frames = Images()
    for index in range(samples.batch * count):
        frame = Image.new("RGB", (samples.width, samples.height), _colour(samples.seed, index))
        x = (index * 7) % max(1, samples.width - 8)
        ImageDraw.Draw(frame).rectangle((x, 2, x + 8, 10), fill=(255, 255, 255))
        frames.append(frame)
    return NodeResult((frames,))


def _colour(seed: int, index: int) -> tuple[int, int, int]:
    return ((seed * 37 + index * 5) % 256, (seed * 11) % 256, (200 - index * 3) % 256)


def is_video_vae(vae) -> bool:
    # ComfyUI tells a Wan VAE by its weights (comfy/sd.py); the stand-in by its file name.
    return "wan" in vae.name.lower()


async def vae_encode(ctx, pixels, vae):
    """An IMAGE batch of N into a Wan VAE is N frames of one clip (comfy/sd.py VAE.encode);
    its encoder (comfy/ldm/wan/vae.py) keeps 1 + 4k of them: one latent, 1 + (N-1)//4 frames."""
    width, height = pixels[0].size
    if is_video_vae(vae):
        return NodeResult((Latent(1, width, height, 1 + (len(pixels) - 1) // 4, video=True),))
    return NodeResult((Latent(len(pixels), width, height),))


async def rebatch_images(ctx, images, batch_size):
    """comfy_extras/nodes_rebatch.py ImageRebatch: every frame of every batch, re-cut."""
    frames = [frame for batch in images for frame in batch]
    size = batch_size[0]
    return NodeResult(([Images(frames[i : i + size]) for i in range(0, len(frames), size)],))


async def rebatch_latents(ctx, latents, batch_size):
    """LatentRebatch: consecutive latents of one size joined, then cut into batches."""
    size, joined = batch_size[0], []
    for latent in latents:
        last = joined[-1] if joined else None
        if last is not None and (last.width, last.height, last.frames) == (
            latent.width,
            latent.height,
            latent.frames,
        ):
            last.batch += latent.batch
        else:
            joined.append(replace(latent))
    out = []
    for latent in joined:
        for start in range(0, latent.batch, size):
            out.append(replace(latent, batch=min(size, latent.batch - start)))
    return NodeResult((out,))


OPERATIONS = {
    "EmptyImage": empty_image,
    "ImageInvert": image_invert,
    "ImageScale": image_scale,
    "LoadImage": load_image,
    "SaveImage": save_image,
    "PreviewImage": preview_image,
    "SaveAnimatedWEBP": save_animated_webp,
    "CreateVideo": create_video,
    "SaveAudio": save_audio,
    "UNETLoader": unet_loader,
    "CLIPLoader": clip_loader,
    "VAELoader": vae_loader,
    "CheckpointLoaderSimple": checkpoint_loader,
    "LoraLoaderModelOnly": lora_loader_model_only,
    "CLIPTextEncode": clip_text_encode,
    "EmptyHunyuanLatentVideo": empty_latent_video,
    "KSampler": ksampler,
    "VAEDecode": vae_decode,
    "VAEEncode": vae_encode,
    "RebatchImages": rebatch_images,
    "RebatchLatents": rebatch_latents,
}
