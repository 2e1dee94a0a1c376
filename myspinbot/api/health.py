"""GET /health: Redis, live workers per queue, queue depths."""

from __future__ import annotations

import orjson
from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from ..health import health_report

bp = Blueprint("health")


@bp.get("/health")
async def health(request: Request) -> HTTPResponse:
    status, body = await health_report(request.app.ctx.store)
    return HTTPResponse(
        orjson.dumps(body),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store", **({"Retry-After": "5"} if status == 503 else {})},
    )
