"""GET /health: Redis, live workers per queue, queue depths, engines.

The same report goes out in `health` frames on /ws (see hub.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from redis.exceptions import RedisError
from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from ..errors import REDIS_OUTAGE
from ..jobs.model import KINDS
from ..jobs.store import JobStore

log = logging.getLogger("myspinbot.api")

# Load balancers probe with short timeouts: answer "degraded" before they give up on us.
HEALTH_TIMEOUT = 3.0

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


async def health_report(store: JobStore) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of /health; the same body goes out in `health` frames on /ws."""
    try:
        parts = await asyncio.wait_for(store.health(), HEALTH_TIMEOUT)
    except (*REDIS_OUTAGE, OSError):  # asyncio.TimeoutError is TimeoutError
        return 503, degraded("unreachable")
    except RedisError:
        # Redis answered, with an error: not an outage, a fault for the operator to see.
        log.exception("the health check's Redis commands failed")
        return 503, degraded("error")
    return 200, {"status": "ok", "redis": "ok", **parts}


def degraded(redis: str) -> dict[str, Any]:
    return {
        "status": "degraded",
        "redis": redis,
        "workers": dict.fromkeys(KINDS, 0),
        "queues": dict.fromkeys(KINDS, None),
    }
