"""Metrics each server process keeps itself, aggregated across processes at scrape time.

prometheus_client's multiprocess mode: every HTTP worker writes its samples to files
in PROMETHEUS_MULTIPROC_DIR, which the main process creates (empty) before any worker
starts, and any worker merges them when scraped.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from prometheus_client import Gauge, Histogram
from prometheus_client.multiprocess import mark_process_dead

from ..processes import pid_alive
from .samples_dir import MULTIPROC_ENV

HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# A `live*` gauge's file per process: gauge_livesum_<pid>.db
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")


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


def forget_dead_processes(folder: str) -> list[int]:
    """Drop the live gauges of processes that are gone (a crashed or restarted HTTP worker).

    Sanic tells nobody when a worker dies, so the scraping process checks. Counters and
    histograms of a dead worker stay: they are totals, and dropping them would make
    them go backwards.
    """
    dead = set()
    for entry in Path(folder).iterdir():
        match = _LIVE_GAUGE_FILE.match(entry.name)
        if match and not pid_alive(int(match.group(1))):
            dead.add(int(match.group(1)))
    for pid in dead:
        with contextlib.suppress(FileNotFoundError):  # another worker's scrape was first
            mark_process_dead(pid, folder)
    return sorted(dead)
