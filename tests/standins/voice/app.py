"""The speech stand-in's aiohttp app: the routes under every alias, then the test knobs."""

from __future__ import annotations

from aiohttp import web

from .server import (
    Speaker,
    delete_voice,
    fastapi_like,
    health,
    list_voices,
    speak_json,
    speak_upload,
    upload_voice,
    voice_info,
)

# app/core/aliases.py: the primary path and its aliases.
SPEECH = ("/audio/speech", "/v1/audio/speech", "/tts")
UPLOAD = ("/audio/speech/upload", "/v1/audio/speech/upload", "/tts/upload")
VOICES = ("/voices", "/v1/voices", "/voice-library", "/voice_library")
VOICE = ("/voices/{name}", "/v1/voices/{name}")
HEALTH = ("/health", "/v1/health")


async def arm(request: web.Request) -> web.Response:
    speaker: Speaker = request.app["speaker"]
    kind = request.match_info["kind"]
    params = await request.json() if request.can_read_body else {}
    if kind == "clear":
        speaker.faults.clear()
    elif kind == "release":
        speaker.release.set()
    elif kind in ("http", "garbage", "silence", "stall"):
        speaker.faults.append({"kind": kind, "count": 1, **params})
    else:
        return web.json_response({"error": f"unknown fault {kind}"}, status=400)
    return web.json_response({"faults": speaker.faults})


async def state(request: web.Request) -> web.Response:
    speaker: Speaker = request.app["speaker"]
    return web.json_response(
        {
            "voices": sorted(speaker.voices),
            "requests": speaker.requests,
            "faults": speaker.faults,
        }
    )


def build_app(speaker: Speaker) -> web.Application:
    app = web.Application(middlewares=[fastapi_like])
    app["speaker"] = speaker
    for path in SPEECH:
        app.router.add_post(path, speak_json)
    for path in UPLOAD:
        app.router.add_post(path, speak_upload)
    for path in VOICES:
        app.router.add_get(path, list_voices, allow_head=False)
        app.router.add_post(path, upload_voice)
    for path in VOICE:
        app.router.add_get(path, voice_info, allow_head=False)
        app.router.add_delete(path, delete_voice)
    for path in HEALTH:
        app.router.add_get(path, health, allow_head=False)
    app.router.add_post("/_standin/fault/{kind}", arm)
    app.router.add_get("/_standin/state", state)
    return app
