"""The speech server's routes (see the package docstring for what they follow)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from . import DEFAULT_VOICE, SAMPLE_RATE, pitch_of, seconds_for

SUPPORTED = {".mp3", ".wav", ".flac", ".m4a", ".ogg"}
INVALID_NAME_CHARS = ["/", "\\", ":", "*", "?", '"', "<", ">", "|"]


@dataclass
class Speaker:
    pcm16: bool
    token: str | None
    folder: Path | None
    voices: dict[str, bytes] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)
    faults: list[dict] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            for path in self.folder.glob("*.wav"):
                self.voices[path.stem] = path.read_bytes()

    def store(self, name: str, sample: bytes) -> None:
        self.voices[name] = sample
        if self.folder is not None:
            (self.folder / f"{name}.wav").write_bytes(sample)

    def take_fault(self) -> dict | None:
        if not self.faults:
            return None
        fault = self.faults[0]
        fault["count"] -= 1
        if fault["count"] <= 0:
            self.faults.pop(0)
        return fault


def error(status: int, message: str, kind: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind}}, status=status)


def validation(loc: list, msg: str, kind: str, value=None) -> web.Response:
    detail = [{"type": kind, "loc": loc, "msg": msg, "input": value}]
    return web.json_response({"detail": detail}, status=422)


@web.middleware
async def fastapi_like(request: web.Request, handler):
    speaker: Speaker = request.app["speaker"]
    wanted = f"Bearer {speaker.token}"
    guarded = speaker.token and not request.path.startswith("/_standin/")
    if guarded and request.headers.get("Authorization") != wanted:
        return web.json_response({"detail": "Not authenticated"}, status=401)
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return web.json_response({"detail": "Not Found"}, status=404)
    except web.HTTPMethodNotAllowed:
        return web.json_response({"detail": "Method Not Allowed"}, status=405)


def wav(samples: list[float], pcm16: bool) -> bytes:
    """A WAV as torchaudio (FFmpeg's muxer) writes it: float32 with fact + LIST, or PCM 16."""
    if pcm16:
        data = struct.pack(f"<{len(samples)}h", *(round(x * 32767) for x in samples))
        fmt = struct.pack("<HHIIHH", 1, 1, SAMPLE_RATE, SAMPLE_RATE * 2, 2, 16)
        extra = b""
    else:
        data = struct.pack(f"<{len(samples)}f", *samples)
        fmt = struct.pack("<HHIIHHH", 3, 1, SAMPLE_RATE, SAMPLE_RATE * 4, 4, 32, 0)
        extra = b"fact" + struct.pack("<II", 4, len(samples))
    info = b"INFO" + b"ISFT" + struct.pack("<I", 14) + b"Lavf61.7.100\0\0"
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra
    body += b"LIST" + struct.pack("<I", len(info)) + info
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def speech(text: str, sample: bytes | None, silent: bool) -> list[float]:
    count = round(seconds_for(text) * SAMPLE_RATE)
    if silent:
        return [0.0] * count
    step = 2 * math.pi * pitch_of(sample) / SAMPLE_RATE
    return [0.4 * math.sin(step * n) for n in range(count)]


async def answer(request: web.Request, text: str, asked: str | None, sample: bytes | None):
    """Speak `text` in the uploaded sample, else the library voice, else the default."""
    speaker: Speaker = request.app["speaker"]
    used = "upload" if sample is not None else DEFAULT_VOICE
    if sample is None and asked in speaker.voices:
        sample, used = speaker.voices[asked], asked
    speaker.requests.append(
        {
            "path": request.path,
            "input": text,
            "voice": asked,
            "spoken_with": used,
            "pitch": pitch_of(sample),
        }
    )
    fault = speaker.take_fault()
    kind = fault["kind"] if fault else None
    if kind == "http":
        status = int(fault["status"])
        message = fault.get("message") or f"TTS generation failed: stand-in fault {status}"
        return error(status, message, "generation_error")
    if kind == "garbage":
        return web.Response(text="<html><body>Bad gateway</body></html>", content_type="text/html")
    if kind == "stall":
        await speaker.release.wait()
    samples = speech(text, sample, silent=kind == "silence")
    return web.Response(
        body=wav(samples, speaker.pcm16),
        content_type="audio/wav",
        headers={"Content-Disposition": "attachment; filename=speech.wav"},
    )


def _text_error(text) -> web.Response | None:
    if not isinstance(text, str) or not text:
        return validation(
            ["body", "input"], "String should have at least 1 character", "string_too_short", text
        )
    if len(text) > 3000:
        return validation(
            ["body", "input"], "String should have at most 3000 characters", "string_too_long", text
        )
    if not text.strip():
        return validation(
            ["body", "input"], "Value error, Input text cannot be empty", "value_error", text
        )
    return None


async def speak_json(request: web.Request) -> web.StreamResponse:
    try:
        body = json.loads(await request.read())
    except ValueError:
        return validation(["body", 0], "JSON decode error", "json_invalid")
    if not isinstance(body, dict):
        return validation(["body"], "Input should be a valid dictionary", "model_attributes_type")
    problem = _text_error(body.get("input"))
    if problem is not None:
        return problem
    return await answer(request, body["input"].strip(), body.get("voice", "alloy"), None)


async def speak_upload(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    problem = _text_error(form.get("input"))
    if problem is not None:
        return problem
    upload = form.get("voice_file")
    sample = None
    if isinstance(upload, web.FileField):
        bad = _bad_file(upload)
        if bad is not None:
            return bad
        sample = upload.file.read()
    return await answer(request, str(form["input"]).strip(), form.get("voice", "alloy"), sample)


def _bad_file(upload: web.FileField) -> web.Response | None:
    if not upload.filename:
        return error(400, "No filename provided", "invalid_request_error")
    ext = os.path.splitext(upload.filename.lower())[1]
    if ext not in SUPPORTED:
        return error(
            400,
            f"Unsupported audio format: {ext}. Supported formats: {', '.join(sorted(SUPPORTED))}",
            "invalid_request_error",
        )
    return None


async def list_voices(request: web.Request) -> web.Response:
    speaker: Speaker = request.app["speaker"]
    voices = [
        {"name": name, "filename": f"{name}.wav", "file_size": len(data)}
        for name, data in speaker.voices.items()
    ]
    return web.json_response({"voices": voices, "count": len(voices)})


async def upload_voice(request: web.Request) -> web.Response:
    speaker: Speaker = request.app["speaker"]
    form = await request.post()
    name, upload = form.get("voice_name"), form.get("voice_file")
    if not isinstance(name, str) or not name:
        return validation(["body", "voice_name"], "Field required", "missing")
    if not isinstance(upload, web.FileField):
        return validation(["body", "voice_file"], "Field required", "missing")
    bad = _bad_file(upload)
    if bad is not None:
        return bad
    name = name.strip()
    if any(char in name for char in INVALID_NAME_CHARS):
        return error(
            400, f"Voice name contains invalid characters: {INVALID_NAME_CHARS}", "validation_error"
        )
    if name in speaker.voices:
        return error(409, f"Voice '{name}' already exists", "voice_exists_error")
    data = upload.file.read()
    speaker.store(name, data)
    voice = {
        "name": name,
        "filename": f"{name}.wav",
        "file_size": len(data),
        "upload_date": "2026-01-01T00:00:00",
        "language": form.get("language", "en"),
    }
    return web.json_response({"message": "Voice uploaded successfully", "voice": voice}, status=201)


async def voice_info(request: web.Request) -> web.Response:
    speaker: Speaker = request.app["speaker"]
    name = request.match_info["name"]
    if name not in speaker.voices:
        return error(404, f"Voice '{name}' not found", "voice_not_found_error")
    data = speaker.voices[name]
    return web.json_response(
        {
            "voice": {
                "name": name,
                "filename": f"{name}.wav",
                "file_size": len(data),
                "language": "en",
            }
        }
    )


async def delete_voice(request: web.Request) -> web.Response:
    speaker: Speaker = request.app["speaker"]
    name = request.match_info["name"]
    if speaker.voices.pop(name, None) is None:
        return error(404, f"Voice '{name}' not found", "voice_not_found_error")
    if speaker.folder is not None:
        (speaker.folder / f"{name}.wav").unlink(missing_ok=True)
    return web.json_response({"message": f"Voice '{name}' deleted successfully"})


async def health(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "status": "healthy",
            "model_loaded": True,
            "device": "cpu",
            "config": {"max_chunk_length": 280, "max_total_length": 3000},
        }
    )
