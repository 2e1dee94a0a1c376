"""HTTP latency by method, route template and status, with bounded label values."""

from __future__ import annotations

import re
import time
from functools import lru_cache

from sanic import Request
from sanic.response import HTTPResponse

from .process import process_metrics

UNMATCHED = "unmatched"  # every path that matches no route: one label value, never the path
OTHER_METHOD = "other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Sanic's `<job_id:str>` or `<__file_uri__:path>` reads as `<job_id>`, `<file_uri>`.
_PARAMETER = re.compile(r"<_*([^:>]+?)_*(?::[^>]*)?>")


@lru_cache(maxsize=512)
def route_template(path: str) -> str:
    """A route's path as a label value: `api/status/<job_id:str>` -> `/api/status/<job_id>`."""
    return "/" + _PARAMETER.sub(r"<\1>", path).lstrip("/")


def route_label(request: Request) -> str:
    route = request.route
    return UNMATCHED if route is None else route_template(route.path)


def method_label(method: str) -> str:
    """Clients can send any method name; only the standard ones become label values."""
    return method if method in METHODS else OTHER_METHOD


def start_timer(request: Request) -> None:
    request.ctx.started = time.perf_counter()


def observe(request: Request, response: HTTPResponse) -> None:
    started = getattr(request.ctx, "started", None)
    if started is None:
        return
    process_metrics().http.labels(
        method_label(request.method), route_label(request), str(response.status)
    ).observe(time.perf_counter() - started)
