"""The mock clip: a small animated WebP of the prompt, rendered once per prompt."""

from __future__ import annotations

import hashlib
import io
from functools import cache, lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

CLIP_SIZE = (320, 180)
CLIP_FRAMES = 12


@cache
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=16)


@cache
def _sweep(width: int, height: int) -> Image.Image:
    """A light band on dark, twice the clip's width: each frame shows a shifted window of it."""
    ramp = Image.linear_gradient("L").rotate(90).resize((width, height))
    return (
        Image.merge("L", [ramp])
        .transform((2 * width, height), Image.Transform.EXTENT, (0, 0, width, height))
        .point(lambda v: 255 - abs(255 - 2 * v))
    )


def render_clip(path: Path, prompt: str, frames: int) -> None:
    """Write the clip of `prompt`; the rendering is deterministic, so repeats reuse it."""
    path.write_bytes(_clip(prompt, frames))


@lru_cache(maxsize=64)
def _clip(prompt: str, frames: int) -> bytes:
    """An animated WebP: the prompt over a drifting light band, colours seeded by the prompt."""
    hue = hashlib.sha256(prompt.encode()).digest()
    width, height = CLIP_SIZE
    tint = Image.new("RGB", (width, height), (hue[0], hue[1], hue[2]))
    dark = Image.new("RGB", (width, height), (24, 24, 32))
    text = prompt if len(prompt) <= 60 else prompt[:57] + "…"
    sweep = _sweep(width, height)
    images = []
    for frame in range(frames):
        offset = width * frame // frames
        image = Image.composite(tint, dark, sweep.crop((offset, 0, offset + width, height)))
        draw = ImageDraw.Draw(image)
        x = 12 + 20 * frame // frames
        draw.text((x + 1, height // 2 - 9), text, font=_font(), fill=(0, 0, 0))
        draw.text((x, height // 2 - 10), text, font=_font(), fill=(250, 250, 250))
        bar = width * (frame + 1) // frames
        draw.rectangle((0, height - 4, bar, height), fill=(250, 250, 250))
        images.append(image)
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="WEBP",
        save_all=True,
        append_images=images[1:],
        duration=120,
        loop=0,
        quality=70,
        method=0,
    )
    return buffer.getvalue()
