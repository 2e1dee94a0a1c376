"""GET /health: Redis, live workers per queue, queue depths."""

from __future__ import annotations

from typing import Any

import orjson
from redis.exceptions import RedisError
from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from ..jobs.model import KINDS

bp = Blueprint("health")


async def health_report(app: Any) -> tuple[int, dict[str, Any]]:
    try:
        parts = await app.ctx.store.health()
    except (RedisError, OSError, TimeoutError):
        return 503, {
            "status": "degraded",
            "redis": "unreachable",
            "workers": dict.fromkeys(KINDS, 0),
            "queues": dict.fromkeys(KINDS, None),
        }
    return 200, {"status": "ok", "redis": "ok", **parts}


@bp.get("/health")
async def health(request: Request) -> HTTPResponse:
    status, body = await health_report(request.app)
    return HTTPResponse(
        orjson.dumps(body),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )
