"""The HTTP application's connections: Redis clients, job store and service, events hub."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from sanic import Sanic

from ..config import Settings
from ..jobs.service import JobService
from ..jobs.store import JobStore
from ..metrics.process import process_metrics
from .health import health_report
from .hub import SNAPSHOT_SIZE, Hub

# A request waits at most ~2 x REDIS_TIMEOUT for an unresponsive Redis (one retry), then
# answers 503: well inside any sensible client timeout.
REDIS_TIMEOUT = 2.5


def setup_connections(app: Sanic) -> None:
    app.before_server_start(open_connections)
    app.after_server_stop(close_connections)


def redis_client(url: str, retries: int = 1) -> aioredis.Redis:
    """Bounded waits everywhere (redis-py's defaults wait forever, or retry ten times)."""
    backoff = ExponentialWithJitterBackoff(base=0.05, cap=0.5) if retries else NoBackoff()
    return aioredis.Redis.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT,
        socket_connect_timeout=REDIS_TIMEOUT,
        health_check_interval=30,
        max_connections=256,
        retry=Retry(backoff, retries),
    )


async def open_connections(app: Sanic) -> None:
    settings: Settings = app.ctx.settings
    app.ctx.redis = redis_client(settings.store_url)
    # The subscriber must see every disconnect (no silent reconnect inside redis-py), or it
    # could not tell its clients that events were missed.
    app.ctx.pubsub_redis = redis_client(settings.store_url, retries=0)
    app.ctx.store = JobStore(app.ctx.redis)
    app.ctx.jobs = JobService(app.ctx.store, settings)

    async def health() -> dict:
        return (await health_report(app.ctx.store))[1]

    app.ctx.hub = Hub(
        app.ctx.pubsub_redis,
        lambda: app.ctx.store.newest_raw(SNAPSHOT_SIZE),
        health,
        on_count=process_metrics().ws_clients.set,
    )
    app.ctx.hub.start()


async def close_connections(app: Sanic) -> None:
    await app.ctx.hub.stop()
    await app.ctx.redis.aclose()
    await app.ctx.pubsub_redis.aclose()
