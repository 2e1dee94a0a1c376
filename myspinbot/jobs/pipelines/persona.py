"""What a trained persona shows and speaks with: `voice.wav` and a `photo.jpg` thumbnail.

Every train pipeline (mock or engine) adds both to its artifacts, so a generate job finds
the persona's voice under the training job's artifacts whatever trained it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

VOICE, PHOTO = "voice.wav", "photo.jpg"
THUMBNAIL = (256, 256)


def keep_persona(inputs: Path, outputs: Path) -> list[str]:
    """Copy the normalised voice and a thumbnail of the first photo; their names."""
    kept = []
    voice = inputs / VOICE
    if voice.is_file():
        shutil.copyfile(voice, outputs / VOICE)
        kept.append(VOICE)
    photos = sorted((inputs / "images").glob("*")) if (inputs / "images").is_dir() else []
    if photos:
        # Imported here: Pillow is ~2 MiB a process (see MockGenerate).
        from PIL import Image, ImageOps

        with Image.open(photos[0]) as image:
            thumbnail = ImageOps.exif_transpose(image).convert("RGB")
            thumbnail.thumbnail(THUMBNAIL)
            thumbnail.save(outputs / PHOTO, format="JPEG", quality=85)
        kept.append(PHOTO)
    return kept


def persona_voice(artifacts_dir: Path, train_job: str) -> Path | None:
    """The training job's voice.wav (a completed job keeps its final attempt's folder)."""
    found = sorted((artifacts_dir / train_job).glob(f"*/{VOICE}"))
    return found[-1] if found else None
