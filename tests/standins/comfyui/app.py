"""Wires the stand-in together: one aiohttp app, one hub, one queue, one executor task.

The route layout follows ComfyUI 0.3.64 `PromptServer.add_routes` (Comfy-Org/ComfyUI@a125cd84):
each route is registered at `/api<path>` and at `<path>`, GET without an implicit HEAD; the
request body limit is `--max-upload-size` MB (aiohttp answers 413 past it); when a request
has both `Host` and `Origin`, the host is loopback and they differ, the answer is 403 (2026:
also for `Sec-Fetch-Site: cross-site`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from .executor import Executor, RunSettings
from .faults import Faults, add_control_routes, fault_middleware
from .hub import Hub
from .nodes import node_table
from .paths import BaseDir, load_extra_model_paths
from .prompt_queue import PromptQueue
from .routes import JOB_ROUTES, ROUTES
from .validation import Validator

VERSIONS = {"2025": "0.3.64", "2026": "0.38.1"}


@dataclass
class Options:
    base_directory: Path
    generation: str = "2025"
    steps: int = 0
    step_seconds: float = 0.05
    preview: str | None = None
    slow_classes: tuple[str, ...] = ()
    max_upload_size_mb: float = 100
    version: str | None = None
    http_faults: list[tuple[str, int, int]] = field(default_factory=list)
    failing_classes: tuple[str, ...] = ()
    extra_model_paths: Path | None = None  # --extra-model-paths-config


class StandIn:
    """Everything a request handler can reach, as `request.app["standin"]`."""

    def __init__(self, options: Options) -> None:
        self.generation = options.generation
        self.version = options.version or VERSIONS[options.generation]
        extra = (
            load_extra_model_paths(options.extra_model_paths) if options.extra_model_paths else {}
        )
        self.base = BaseDir(options.base_directory, extra)
        self.base.prepare()
        self.table = node_table(options.generation)
        max_bytes = round(options.max_upload_size_mb * 1024 * 1024)
        self.max_upload_bytes = max_bytes
        self.hub = Hub(options.generation, max_bytes)
        self.queue = PromptQueue(self.hub, options.generation)
        self.validator = Validator(self.table, self.base, options.generation)
        self.faults = Faults()
        for path, status, count in options.http_faults:
            self.faults.arm_http(path, status, count)
        self.faults.cli_http, self.faults.http = self.faults.http, []
        for class_type in options.failing_classes:
            self.faults.arm_node(class_type, count=0)
        self.faults.permanent = dict(self.faults.nodes)
        settings = RunSettings(
            options.steps, options.step_seconds, options.preview, options.slow_classes
        )
        self.executor = Executor(
            self.table, self.base, self.hub, self.queue, settings, self.faults, options.generation
        )
        self.number = 0


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@web.middleware
async def origin_middleware(request: web.Request, handler):
    new = request.app["standin"].generation == "2026"
    if new and request.headers.get("Sec-Fetch-Site") == "cross-site":
        return web.Response(status=403)
    if "Host" in request.headers and "Origin" in request.headers:
        host = request.headers["Host"].lower()
        origin = urllib.parse.urlparse(request.headers["Origin"])
        host_parts = urllib.parse.urlsplit("//" + host)
        origin_domain = origin.netloc.lower()
        if origin.port is None:
            host = host_parts.hostname
        if host_parts.port is None:
            origin_domain = origin.hostname
        if _is_loopback(host_parts.hostname) and host and origin_domain and host != origin_domain:
            return web.Response(status=403)
    if request.method == "OPTIONS":
        return web.Response()
    return await handler(request)


def build_app(options: Options) -> web.Application:
    standin = StandIn(options)
    app = web.Application(
        client_max_size=standin.max_upload_bytes,
        middlewares=[fault_middleware, origin_middleware],
    )
    app["standin"] = standin
    add_control_routes(app)
    routes = [("GET", "/ws", standin.hub.handle), *ROUTES]
    if options.generation == "2026":
        routes += JOB_ROUTES
    for method, path, handler in routes:
        app.router.add_route(method, "/api" + path, handler)
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)

    async def background(app: web.Application):
        tasks = [
            asyncio.create_task(standin.hub.publish_loop()),
            asyncio.create_task(standin.executor.run_forever()),
        ]
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    app.cleanup_ctx.append(background)
    return app
