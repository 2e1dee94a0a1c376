"""A training job's photos as a captioned dataset: one square PNG and one caption per photo.

Every photo becomes one training sample on both ComfyUI lines, so the files are made the
way both dataset loaders read them: `photo-NN.png` with its caption in `photo-NN.txt`
beside it (ComfyUI's `LoadImageTextSetFromFolderNode` and `LoadImageTextDataSetFromFolder`
take a same-name .txt as the caption). Photos are turned upright (EXIF), cropped to a
square a little above the centre (where a portrait keeps the face) and scaled to
`SIZE`, so every latent has one shape and no loader has to stretch anything.
"""

from __future__ import annotations

from pathlib import Path

from .base import PipelineError
from .trigger import caption

SIZE = 512  # pixels a side: a multiple of 16, as Wan's VAE and patching need
CENTRE = (0.5, 0.4)  # ImageOps.fit centring: a little above the middle


def captioned_photos(photos: list[Path], token: str, name: str | None, folder: Path) -> list[Path]:
    """Write the dataset into `folder`; the files to upload, each PNG before its caption."""
    # Imported here: only a training worker with real engines needs Pillow.
    from PIL import Image, ImageOps, UnidentifiedImageError

    files: list[Path] = []
    text = caption(token, name) + "\n"
    for number, photo in enumerate(photos, start=1):
        stem = folder / f"photo-{number:02d}"
        try:
            with Image.open(photo) as source:
                image = ImageOps.exif_transpose(source).convert("RGB")
        except (OSError, UnidentifiedImageError) as exc:
            raise PipelineError(
                f"photo {number} ({photo.name}) cannot be read as an image: {exc}",
                code="bad_photo",
            ) from None
        square = ImageOps.fit(image, (SIZE, SIZE), Image.Resampling.LANCZOS, centering=CENTRE)
        square.save(stem.with_suffix(".png"))
        stem.with_suffix(".txt").write_text(text, encoding="utf-8")
        files += [stem.with_suffix(".png"), stem.with_suffix(".txt")]
    return files
