"""/metrics: job metrics read from Redis at scrape time, plus this server's process metrics."""

from __future__ import annotations

import os
import shutil
import tempfile
import time

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    multiprocess,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sanic import Request, Sanic
from sanic.response import HTTPResponse

from .jobs import RedisJobCollector
from .process import process_metrics

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def setup_metrics(app: Sanic) -> None:
    app.main_process_start(_prepare_multiprocess_dir)
    app.main_process_stop(_remove_multiprocess_dir)
    app.on_request(_start_timer, priority=99)
    app.on_response(_observe)
    app.add_route(metrics_endpoint, "/metrics", methods=["GET"], name="metrics")


def _prepare_multiprocess_dir(app: Sanic) -> None:
    """Before any worker starts: a fresh folder where each process writes its samples."""
    folder = tempfile.mkdtemp(prefix="myspinbot-metrics-")
    os.environ[MULTIPROC_ENV] = folder
    app.ctx.metrics_dir = folder


def _remove_multiprocess_dir(app: Sanic) -> None:
    folder = getattr(app.ctx, "metrics_dir", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def _start_timer(request: Request) -> None:
    request.ctx.started = time.perf_counter()


def _observe(request: Request, response: HTTPResponse) -> None:
    started = getattr(request.ctx, "started", None)
    if started is None:
        return
    # The route template, never the raw path, keeps label values bounded.
    route = request.route.path if request.route else "unmatched"
    process_metrics().http.labels(
        request.method, "/" + route.lstrip("/"), str(response.status)
    ).observe(time.perf_counter() - started)


def scrape_registry() -> CollectorRegistry:
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        return registry
    return REGISTRY


async def metrics_endpoint(request: Request) -> HTTPResponse:
    registry = scrape_registry()
    snapshot = await request.app.ctx.store.job_metrics()
    output = generate_latest(registry) + generate_latest(_single(RedisJobCollector(snapshot)))
    return HTTPResponse(output, content_type=CONTENT_TYPE_LATEST)


def _single(collector: RedisJobCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
