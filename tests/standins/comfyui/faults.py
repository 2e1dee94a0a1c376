"""Fault knobs for tests, under `/_standin/` (a path ComfyUI does not serve) and on the CLI.

- `POST /_standin/fault/http` `{"path": "/prompt", "status": 503, "count": 1, "method": "POST"}`:
  the next `count` matching requests (`/x` and `/api/x` alike; a trailing `*` matches a prefix;
  `method` optional) get `status` with the plain-text body aiohttp gives its own errors.
- `POST /_standin/fault/node_error` `{"class_type": "KSampler", "exception_type":
  "torch.OutOfMemoryError", "message": "Allocation on device ", "at_step": 0, "count": 1}`:
  that class raises when it runs (at its start, or after `at_step` steps of a timed node:
  KSampler, TrainLoraNode, a `--slow` class);
  `count` 0 means every time. The `execution_error` carries the real fields, a traceback from
  where it was raised, and ComfyUI's OOM tips when the type is an OutOfMemoryError.
- `POST /_standin/fault/close_sockets`: every WebSocket's TCP connection is dropped, no close
  frame. `POST /_standin/fault/silence` `{"on": true}`: no frame reaches any socket until
  `{"on": false}`, while prompts keep running and history keeps filling; frames queued while
  silent are dropped, and the answer to `{"on": false}` comes once they are.
- `POST /_standin/fault/clear`: all of the above off, but what the command line armed.
- `GET /_standin/state`: what is armed, how many sockets are connected, which sids events reach.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
DEFAULT_NODE_ERROR = {
    "exception_type": "torch.OutOfMemoryError",
    "message": "Allocation on device ",
}


@dataclass
class Faults:
    http: list[dict[str, Any]] = field(default_factory=list)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # What the command line armed (--http-fault, --fail-class): left alone by `clear`.
    cli_http: list[dict[str, Any]] = field(default_factory=list)
    permanent: dict[str, dict[str, Any]] = field(default_factory=dict)

    def clear(self) -> None:
        self.http.clear()
        self.nodes = {name: dict(spec) for name, spec in self.permanent.items()}

    def arm_http(self, path: str, status: int = 500, count: int = 1, method: str | None = None):
        self.http.append(
            {"path": path, "status": int(status), "count": int(count), "method": method}
        )

    def arm_node(self, class_type: str, **spec: Any) -> None:
        self.nodes[class_type] = {**DEFAULT_NODE_ERROR, "at_step": 0, "count": 1, **spec}

    def node_fault(self, class_type: str) -> dict[str, Any] | None:
        """The armed error for one run of `class_type`, used up unless its count is 0."""
        spec = self.nodes.get(class_type)
        if spec is None:
            return None
        if spec["count"] == 1:
            del self.nodes[class_type]
        elif spec["count"] > 1:
            spec["count"] -= 1
        return dict(spec)

    def take_http(self, method: str, path: str) -> int | None:
        path = path[4:] if path.startswith("/api/") else path
        return self._take(self.cli_http, method, path) or self._take(self.http, method, path)

    def _take(self, faults: list[dict[str, Any]], method: str, path: str) -> int | None:
        for fault in faults:
            wanted = fault["path"]
            hit = path.startswith(wanted[:-1]) if wanted.endswith("*") else path == wanted
            if hit and fault["method"] in (None, method):
                fault["count"] -= 1
                if fault["count"] <= 0:
                    faults.remove(fault)
                return fault["status"]
        return None


@web.middleware
async def fault_middleware(request: web.Request, handler):
    if not request.path.startswith("/_standin/"):
        status = request.app["standin"].faults.take_http(request.method, request.path)
        if status is not None:
            reason = REASONS.get(status, "Error")
            text = f"{status} {reason}\n\nServer got itself in trouble"
            return web.Response(status=status, text=text)
    return await handler(request)


async def _body(request: web.Request) -> dict:
    return await request.json() if request.can_read_body else {}


async def arm(request: web.Request) -> web.Response:
    standin = request.app["standin"]
    kind = request.match_info["kind"]
    body = await _body(request)
    if kind == "http":
        standin.faults.arm_http(**body)
    elif kind == "node_error":
        standin.faults.arm_node(**body)
    elif kind == "close_sockets":
        return web.json_response({"closed": standin.hub.close_all_abruptly()})
    elif kind == "silence":
        if not body.get("on", True):
            await standin.hub.messages.join()  # what was sent while silent stays lost
        standin.hub.silent = bool(body.get("on", True))
    elif kind == "clear":
        standin.faults.clear()
        standin.hub.silent = False
    else:
        return web.json_response({"error": f"unknown fault {kind!r}"}, status=404)
    return await state(request)


async def state(request: web.Request) -> web.Response:
    standin = request.app["standin"]
    faults = standin.faults
    body = {
        "http": faults.cli_http + faults.http,
        "nodes": faults.nodes,
        "silent": standin.hub.silent,
        "sockets": len(standin.hub.live),
        "sids": sorted(standin.hub.sockets),
        "trainings": standin.executor.trainings,
    }
    return web.json_response(body)


def add_control_routes(app: web.Application) -> None:
    app.router.add_post("/_standin/fault/{kind}", arm)
    app.router.add_get("/_standin/state", state)
