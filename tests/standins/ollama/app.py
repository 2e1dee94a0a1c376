"""The Ollama stand-in's aiohttp app: Ollama's routes, then the fault knobs."""

from __future__ import annotations

from aiohttp import web

from .faults import arm, state
from .server import Ollama, chat, generate, gin_like, ps, root, tags, version


def build_app(ollama: Ollama) -> web.Application:
    app = web.Application(middlewares=[gin_like])
    app["ollama"] = ollama
    for path, handler in (("/", root), ("/api/version", version), ("/api/tags", tags)):
        app.router.add_route("GET", path, handler)
        app.router.add_route("HEAD", path, handler)
    app.router.add_get("/api/ps", ps, allow_head=False)
    app.router.add_post("/api/chat", chat)
    app.router.add_post("/api/generate", generate)
    app.router.add_post("/_standin/fault/{kind}", arm)
    app.router.add_get("/_standin/state", state)
    return app
