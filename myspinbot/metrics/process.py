"""Metrics each server process keeps itself: HTTP latency and open WebSockets.

In the one-process layout they live in the default registry. With several HTTP workers
(prometheus_client's multiprocess mode, PROMETHEUS_MULTIPROC_DIR set by the main process)
each worker writes them to files that the scraped worker merges.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

from prometheus_client import Gauge, Histogram
from prometheus_client.multiprocess import mark_process_dead

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # set only in the multi-process layout
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass(frozen=True)
class ProcessMetrics:
    http: Histogram
    ws_clients: Gauge


@cache
def process_metrics() -> ProcessMetrics:
    """Created on first use, once per process (the default registry refuses duplicates)."""
    if os.environ.get(MULTIPROC_ENV):
        # A process reusing the pid of a dead one would start from that one's gauge values.
        mark_process_dead(os.getpid())
    return ProcessMetrics(
        http=Histogram(
            "myspinbot_http_request_duration_seconds",
            "HTTP request latency by method, route template and status",
            ["method", "route", "status"],
            buckets=HTTP_BUCKETS,
        ),
        # livesum: the sum over the processes alive now (see forget_dead_processes).
        ws_clients=Gauge(
            "myspinbot_ws_clients",
            "Open WebSocket connections",
            multiprocess_mode="livesum",
        ),
    )
