"""Job metrics built from what the workers keep in Redis, so one scrape covers every host."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from ..jobs.model import DURATION_BUCKETS, FINISHED, KINDS, STATES

BUCKET_BOUNDS = [*map(floatToGoString, DURATION_BUCKETS), "+Inf"]


class RedisJobCollector:
    """Every series for both queues, zeros included; None (Redis unreachable): only redis_up."""

    def __init__(self, snapshot: dict[str, Any] | None) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("myspinbot_redis_up", "Whether /metrics could read Redis")
        up.add_metric([], 0 if self.snapshot is None else 1)
        yield up
        if self.snapshot is None:
            return
        snap = self.snapshot
        depth = GaugeMetricFamily("myspinbot_queue_depth", "Jobs waiting", labels=["queue"])
        workers = GaugeMetricFamily("myspinbot_workers", "Live worker processes", labels=["queue"])
        jobs = GaugeMetricFamily(
            "myspinbot_jobs", "Jobs known per state", labels=["queue", "state"]
        )
        finished = CounterMetricFamily(
            "myspinbot_jobs_finished", "Jobs finished per outcome", labels=["queue", "state"]
        )
        for kind in KINDS:
            depth.add_metric([kind], snap["health"]["queues"][kind])
            workers.add_metric([kind], snap["health"]["workers"][kind])
            for state in STATES:
                jobs.add_metric([kind, state], snap["counts"][kind][state])
            for outcome in sorted(FINISHED):
                finished.add_metric([kind, outcome], snap["finished"].get(f"{kind}:{outcome}", 0))
        engines = GaugeMetricFamily(
            "myspinbot_engine_up",
            "Whether a worker reaches the engine server (ComfyUI, Ollama, voice)",
            labels=["engine", "server"],
        )
        for entry in snap["health"].get("engines", []):
            engines.add_metric([entry["engine"], entry.get("url", "")], 1 if entry["up"] else 0)
        yield from (depth, workers, jobs, finished, engines)
        yield self._durations(snap["durations"])

    @staticmethod
    def _durations(durations: dict[str, dict[str, float]]) -> HistogramMetricFamily:
        family = HistogramMetricFamily(
            "myspinbot_job_duration_seconds", "Job duration, start to finish", labels=["queue"]
        )
        for kind in KINDS:
            hist = durations[kind]
            cumulative, buckets = 0.0, []
            for index, bound in enumerate(BUCKET_BOUNDS):
                cumulative += hist.get(f"b{index}", 0)
                buckets.append((bound, cumulative))
            family.add_metric([kind], buckets, sum_value=hist.get("sum", 0.0))
        return family
