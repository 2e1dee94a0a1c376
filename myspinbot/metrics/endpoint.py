"""/metrics: job metrics read from Redis at scrape time, plus the server's process metrics."""

from __future__ import annotations

import logging
import os

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    multiprocess,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from redis.exceptions import RedisError
from sanic import Request, Sanic
from sanic.response import HTTPResponse

from .http import observe, start_timer
from .jobs import RedisJobCollector
from .process import MULTIPROC_ENV

log = logging.getLogger("myspinbot.metrics")


def setup_metrics(app: Sanic) -> None:
    app.on_request(start_timer, priority=99)
    app.on_response(observe)
    app.add_route(metrics_endpoint, "/metrics", methods=["GET"], name="metrics")


def scrape_registry() -> CollectorRegistry:
    """This deployment's per-process metrics: every HTTP worker's, merged."""
    folder = os.environ.get(MULTIPROC_ENV)
    if not folder:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, folder)
    # Process and platform metrics describe the process that answers the scrape.
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


async def metrics_endpoint(request: Request) -> HTTPResponse:
    try:
        snapshot = await request.app.ctx.store.job_metrics()
    except (RedisError, OSError, TimeoutError) as exc:
        # Still serve the per-process metrics; the job metrics are missing, not zero.
        log.warning("metrics without job metrics: Redis unreachable (%s)", exc)
        snapshot = None
    before_scrape = getattr(request.app.ctx, "before_scrape", None)
    if before_scrape is not None:  # the multi-process layout forgets dead workers' gauges
        before_scrape()
    jobs = CollectorRegistry(auto_describe=False)
    jobs.register(RedisJobCollector(snapshot))
    output = generate_latest(scrape_registry()) + generate_latest(jobs)
    return HTTPResponse(output, content_type=CONTENT_TYPE_LATEST)
