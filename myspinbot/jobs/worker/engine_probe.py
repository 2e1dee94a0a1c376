"""Each worker's view of its engines, kept in Redis for /health, the dashboard and /metrics.

A worker with engines configured checks them every PROBE_INTERVAL seconds (ComfyUI:
reachable, its version, its queue length; Ollama: reachable, its version; the voice
engine: reachable, its status word) and writes
what it found under its own name in one hash. Readers keep only fresh entries and merge
them per engine server (jobs/engine_reports.py), so with one ComfyUI per GPU and a
replica per ComfyUI, every GPU box shows up, and a lost one goes away.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import orjson
import redis

from ...config import Settings
from ...every import Every
from .. import keys
from ..model import now_ms

log = logging.getLogger("myspinbot.worker")

PROBE_INTERVAL = 10.0


def probe(settings: Settings) -> dict[str, Any]:
    """The configured engines, as one worker sees them now (never raises)."""
    from ...engines.comfyui import ComfyUI
    from ...engines.configured import comfyui_server, ollama_server, voice_server
    from ...engines.errors import EngineError
    from ...engines.ollama import Ollama
    from ...engines.voice import VoiceEngine

    found: dict[str, Any] = {}
    comfyui = comfyui_server(settings)
    if comfyui is not None:
        with ComfyUI(comfyui) as engine:
            health = engine.health()
        found["comfyui"] = {
            "url": comfyui.shown,
            "up": health.reachable,
            "version": health.version,
            "queue": health.queue_length,
            "error": health.error,
        }
    ollama = ollama_server(settings)
    if ollama is not None:
        entry: dict[str, Any] = {"url": ollama.shown, "model": ollama.model}
        try:
            with Ollama(ollama) as client:
                entry.update(up=True, version=client.version(), error=None)
        except EngineError as exc:
            entry.update(up=False, version=None, error=str(exc))
        found["ollama"] = entry
    voice = voice_server(settings)
    if voice is not None:
        entry = {"url": voice.shown}
        try:
            with VoiceEngine(voice) as client:
                entry.update(up=True, status=client.health(), error=None)
        except EngineError as exc:
            entry.update(up=False, status=None, error=str(exc))
        found["voice"] = entry
    return found


class EngineProbe:
    """A daemon thread that probes this worker's engines and reports them to Redis."""

    def __init__(self, client: redis.Redis, settings: Settings, identity: str) -> None:
        self.client = client
        self.settings = settings
        self.identity = identity
        # The first probe at once: /health shows the engines from the start.
        self._every = Every(PROBE_INTERVAL, self._report, name="engine-probe", first=0.0)

    def start(self) -> None:
        self._every.start()

    def stop(self) -> None:
        self._every.stop()
        with contextlib.suppress(redis.RedisError):  # readers drop it once it is stale
            self.client.hdel(keys.ENGINES, self.identity)

    def _report(self) -> None:
        report = {"at": now_ms(), "engines": probe(self.settings)}
        try:
            self.client.hset(keys.ENGINES, self.identity, orjson.dumps(report))
        except redis.RedisError as exc:
            log.debug("engine report not written: %s", exc)
