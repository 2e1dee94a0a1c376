"""A job's files: where each attempt writes them, and how the API describes and serves them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CONTENT_TYPES = {
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".flac": "audio/flac",
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".json": "application/json",
    ".safetensors": "application/octet-stream",
}


def artifact_folder(artifacts_dir: Path, job_id: str, attempt: int) -> Path:
    """Each attempt writes its own folder, so a zombie attempt cannot touch the result."""
    return artifacts_dir / job_id / str(attempt)


def describe_artifacts(job_id: str, folder: Path, names: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "url": f"/api/jobs/{job_id}/artifacts/{name}",
            "size": (folder / name).stat().st_size,
            "content_type": CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream"),
        }
        for name in names
    ]
