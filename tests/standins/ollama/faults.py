"""The Ollama stand-in's fault knobs: `POST /_standin/fault/<kind>` and `GET /_standin/state`.

The kinds are listed in the package docstring.
"""

from __future__ import annotations

from aiohttp import web

from .server import Ollama, error_response, json_response


async def arm(request: web.Request) -> web.Response:
    ollama: Ollama = request.app["ollama"]
    kind = request.match_info["kind"]
    spec = await request.json() if request.can_read_body else {}
    if kind == "http":
        ollama.http_faults.append({"count": 1, **spec})
    elif kind in ("stream_error", "stall"):
        message = spec.get("message", "an error was encountered while running the model")
        ollama.stream_faults.append(
            {"after": 1, "count": 1, **spec, "kind": kind, "message": message}
        )
        ollama.release.clear()
    elif kind == "release":
        ollama.release.set()
    elif kind == "clear":
        ollama.http_faults.clear()
        ollama.stream_faults.clear()
        ollama.release.set()
    else:
        return error_response(404, f"unknown fault {kind!r}")
    return await state(request)


async def state(request: web.Request) -> web.Response:
    ollama: Ollama = request.app["ollama"]
    return json_response(
        {
            "http": ollama.cli_faults + ollama.http_faults,
            "stream": ollama.stream_faults,
            "stalled": ollama.stalled,
            "loaded": sorted(ollama.loaded),
            "calls": ollama.calls,
        }
    )
