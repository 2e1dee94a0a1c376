"""The deployment's health: Redis, live workers per queue, queue depths."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import RedisError

from .jobs.model import KINDS
from .jobs.store import JobStore

# Load balancers probe with short timeouts: answer "degraded" before they give up on us.
HEALTH_TIMEOUT = 3.0


async def health_report(store: JobStore) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of /health; the same body goes out in `health` frames on /ws."""
    try:
        parts = await asyncio.wait_for(store.health(), HEALTH_TIMEOUT)
    except (RedisError, OSError, TimeoutError):  # asyncio.TimeoutError is TimeoutError
        return 503, {
            "status": "degraded",
            "redis": "unreachable",
            "workers": dict.fromkeys(KINDS, 0),
            "queues": dict.fromkeys(KINDS, None),
        }
    return 200, {"status": "ok", "redis": "ok", **parts}
