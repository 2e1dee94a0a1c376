"""/bench/noop: the plain-route ceiling `make bench` compares POST /api/generate with.

Registered only with MYSPINBOT_BENCH_ROUTES=true. It goes through the same middleware
and JSON handling as a real route, and does no I/O.
"""

from __future__ import annotations

import orjson
from sanic import Request, Sanic
from sanic.response import HTTPResponse


async def noop(request: Request) -> HTTPResponse:
    if request.body:
        orjson.loads(request.body)
    return HTTPResponse(b'{"ok":true}', status=202, content_type="application/json")


def setup_bench(app: Sanic) -> None:
    app.add_route(noop, "/bench/noop", methods=["GET", "POST"], name="bench_noop")
