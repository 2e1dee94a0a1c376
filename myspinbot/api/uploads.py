"""Training uploads: stream, limit, judge files by their content, store under our own names."""

from __future__ import annotations

import asyncio
import shutil
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sanic import Request

from ..config import Settings
from ..errors import (
    InsufficientStorage,
    InvalidField,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from .multipart import FilePart, StreamingForm, boundary_of
from .text_limits import TEXT_LIMITS, check_length

IMAGE_TYPES = {
    "PNG": ("image/png", ".png"),
    "JPEG": ("image/jpeg", ".jpg"),
    "WEBP": ("image/webp", ".webp"),
}
AUDIO_TYPES = {
    "WAV": ("audio/wav", ".wav"),
    "MP3": ("audio/mpeg", ".mp3"),
    "FLAC": ("audio/flac", ".flac"),
    "OGG": ("audio/ogg", ".ogg"),
}
MAX_FILENAME_CHARS = 200


@dataclass
class TrainingUpload:
    folder: Path  # staged files, moved to the job's upload folder on success
    name: str | None
    job_input: dict[str, Any]


def sniff_audio(head: bytes) -> tuple[str, str] | None:
    """(content type, extension) of a WAV, MP3, FLAC or OGG file, judged by its first bytes."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return AUDIO_TYPES["WAV"]
    if head[:4] == b"fLaC":
        return AUDIO_TYPES["FLAC"]
    if head[:4] == b"OggS":
        return AUDIO_TYPES["OGG"]
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return AUDIO_TYPES["MP3"]
    return None


def inspect_image(path: Path, max_pixels: int) -> tuple[str, str, tuple[int, int]]:
    """(content type, extension, size) of a PNG/JPEG/WebP, refusing bombs before decoding."""
    # Imported on the first upload: Pillow and its codecs are ~2.3 MiB (PSS) that a server
    # nobody trains on need not carry.
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                kind = image.format
                if width * height > max_pixels:
                    raise PayloadTooLarge(
                        f"image is {width}x{height} pixels; the limit is {max_pixels} pixels",
                        field="images",
                        code="image_too_large",
                    )
                if kind not in IMAGE_TYPES:
                    raise UnsupportedMediaType(
                        f"{kind or 'unknown'} images are not accepted; use PNG, JPEG or WebP",
                        field="images",
                    )
                image.verify()
    except Image.DecompressionBombError:
        raise PayloadTooLarge(
            f"an image declares more than {max_pixels} pixels",
            field="images",
            code="image_too_large",
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise UnsupportedMediaType(
            "a file in images is not a readable PNG, JPEG or WebP image", field="images"
        ) from None
    content_type, extension = IMAGE_TYPES[kind]
    return content_type, extension, (width, height)


def display_name(raw: str, limit: int) -> str:
    """A file or job name fit to show: no control characters, no folders, bounded length."""
    cleaned = "".join(c for c in raw if unicodedata.category(c)[0] != "C")
    return cleaned.replace("\\", "/").rsplit("/", 1)[-1].strip()[:limit]


class TrainingUploadReader:
    """Reads POST /api/train's body within the settings' limits into a staging folder."""

    def __init__(self, settings: Settings, staging: Path) -> None:
        self.settings = settings
        self.staging = staging

    def check(self, field: str, size: int, count: int) -> None:
        s = self.settings
        if field == "images":
            if count > s.max_images:
                raise InvalidField(f"at most {s.max_images} images are accepted", field="images")
            if size > s.max_image_bytes:
                raise PayloadTooLarge(
                    f"each image must be at most {s.max_image_bytes} bytes", field="images"
                )
        elif field == "voice":
            if count > 1:
                raise InvalidField("send exactly one voice file", field="voice")
            if size > s.max_voice_bytes:
                raise PayloadTooLarge(
                    f"the voice file must be at most {s.max_voice_bytes} bytes", field="voice"
                )
        else:
            raise InvalidField(
                f"unexpected file field {field!r}; use images and voice", field=field or None
            )

    async def read(self, request: Request) -> TrainingUpload:
        try:
            return await self._read(request)
        except BaseException:
            # The rest of the body is not wanted: Sanic would otherwise read and discard it
            # after our answer; a limit below what was received makes it stop, and the
            # connection closes (Connection: close), lingering so the client reads the
            # answer (server/lingering.py).
            request.stream.request_max_size = 0
            request.stream.keep_alive = False
            raise

    async def _read(self, request: Request) -> TrainingUpload:
        boundary = boundary_of(request.headers.get("content-type", ""))
        if boundary is None:
            raise UnsupportedMediaType("send multipart/form-data with images and voice")
        length = int(request.headers.get("content-length") or 0)
        if length > self.settings.max_request_bytes:
            raise PayloadTooLarge(
                f"the upload is larger than {self.settings.max_request_bytes} bytes"
            )
        self.ensure_disk_space(length)
        self.staging.mkdir(parents=True)
        try:
            form = StreamingForm(boundary, self.staging, self.check, TEXT_LIMITS)
            received = 0
            try:
                while (chunk := await request.stream.read()) is not None:
                    received += len(chunk)
                    if received > self.settings.max_request_bytes:
                        raise PayloadTooLarge(
                            f"the upload is larger than {self.settings.max_request_bytes} bytes"
                        )
                    form.write(chunk)
            finally:
                form.close()
            # Decoding the voice sample and checking images take CPU time: off the event loop.
            return await asyncio.to_thread(self.validate, form.finish().files, form.form.fields)
        except BaseException:
            shutil.rmtree(self.staging, ignore_errors=True)
            raise

    def ensure_disk_space(self, incoming: int) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.settings.data_dir).free
        if free - incoming < self.settings.disk_reserve_bytes:
            raise InsufficientStorage("not enough free disk space to store this upload")

    def validate(self, files: list[FilePart], fields: dict[str, str]) -> TrainingUpload:
        images = [part for part in files if part.field == "images"]
        voices = [part for part in files if part.field == "voice"]
        if not images:
            raise InvalidField(f"send 1 to {self.settings.max_images} images", field="images")
        if len(voices) != 1:
            raise InvalidField("send exactly one voice file", field="voice")
        name = display_name(check_length("name", fields.get("name", "")), TEXT_LIMITS["name"])
        described = []
        (self.staging / "images").mkdir()
        for index, part in enumerate(images):
            if part.size == 0:
                raise InvalidField("an image file is empty", field="images")
            content_type, extension, (width, height) = inspect_image(
                part.path, self.settings.max_image_pixels
            )
            part.path.rename(self.staging / "images" / f"{index:03d}{extension}")
            described.append(
                {
                    "name": display_name(part.filename, MAX_FILENAME_CHARS),
                    "size": part.size,
                    "content_type": content_type,
                    "width": width,
                    "height": height,
                }
            )
        voice = voices[0]
        with voice.path.open("rb") as handle:
            sniffed = sniff_audio(handle.read(16))
        if sniffed is None:
            raise UnsupportedMediaType(
                "the voice file is not WAV, MP3, FLAC or OGG audio", field="voice"
            )
        # Imported on the first upload, like Pillow: the decoder is only needed here.
        from .voice_sample import normalise

        seconds = normalise(voice.path, self.staging)
        voice.path.unlink()
        job_input = {
            "name": name or None,
            "images": described,
            "voice": {
                "name": display_name(voice.filename, MAX_FILENAME_CHARS),
                "size": voice.size,
                "content_type": sniffed[0],
                "seconds": seconds,
            },
        }
        return TrainingUpload(self.staging, name or None, job_input)
