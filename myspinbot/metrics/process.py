"""Metrics each server process keeps itself (aggregated across processes at scrape time)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from prometheus_client import Gauge, Histogram

HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass(frozen=True)
class ProcessMetrics:
    http: Histogram
    ws_clients: Gauge


@cache
def process_metrics() -> ProcessMetrics:
    """Created on first use, once per process (the default registry refuses duplicates)."""
    return ProcessMetrics(
        http=Histogram(
            "myspinbot_http_request_duration_seconds",
            "HTTP request latency by method, route template and status",
            ["method", "route", "status"],
            buckets=HTTP_BUCKETS,
        ),
        ws_clients=Gauge(
            "myspinbot_ws_clients",
            "Open WebSocket connections",
            multiprocess_mode="livesum",
        ),
    )
