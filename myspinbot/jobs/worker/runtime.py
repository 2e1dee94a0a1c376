"""A worker's runtime: its runner, its two queues, its heartbeats and background loops."""

from __future__ import annotations

import logging
import os
import socket
import threading

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from ...config import Settings
from ...every import Every
from .. import keys
from ..model import KINDS, now_ms
from ..pipelines.factory import build_pipelines
from ..queues import JobQueue, job_queue
from .engine_probe import EngineProbe
from .ledger import Ledger
from .maintenance import Maintenance, MaintenanceLoop
from .runner import Runner
from .tasks import register_task

log = logging.getLogger("myspinbot.worker")


def redis_client(url: str) -> redis.Redis:
    """Bounded waits, and one quick reconnect: the ledger owns longer retries (with fencing)."""
    return redis.Redis.from_url(
        url,
        socket_timeout=5,
        socket_connect_timeout=3,
        health_check_interval=30,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 1),
    )


class WorkerRuntime:
    """What a worker needs to take and run jobs: built at consumer start-up, never at import.

    Its queues are its own, bound to its Redis with its runner as their claimer, and its
    tasks are registered on them: two runtimes in one process share nothing.
    """

    def __init__(self, settings: Settings, redis_url: str, *, maintenance: bool = True) -> None:
        self.settings = settings
        self.runs_maintenance = maintenance
        self.client = redis_client(redis_url)
        self.ledger = Ledger(self.client, settings.lease_seconds)
        self.runner = Runner(
            self.ledger,
            build_pipelines(settings),
            uploads_dir=settings.uploads_dir,
            artifacts_dir=settings.artifacts_dir,
            max_attempts=settings.max_attempts,
            retry_base=settings.retry_base_seconds,
        )
        self.maintenance = MaintenanceLoop(
            Maintenance(self.client, settings), settings.maintenance_interval
        )
        self.identity = f"{socket.gethostname()}:{os.getpid()}"
        self.engines = (
            EngineProbe(self.client, settings, self.identity) if settings.comfyui_url else None
        )
        self.queues: dict[str, JobQueue] = {
            kind: job_queue(kind, redis_url, claimer=self.runner) for kind in KINDS
        }
        for kind, queue in self.queues.items():
            register_task(queue, kind, self.runner, self.serving)
        self.served: set[str] = set()
        self._lock = threading.Lock()
        self._started = False
        # The first beat at once: /health counts this worker from its start.
        beat_every = min(2.0, settings.lease_seconds / 3)
        self._beats = Every(beat_every, self._beat, name="heartbeat", first=0.0)
        self._beats_down = False

    def serving(self, queue: str) -> None:
        """Called by each consumer thread at start-up; starts the background loops once."""
        with self._lock:
            self.served.add(queue)
            if self._started:
                return
            self._started = True
        self._beats.start()
        if self.engines is not None:
            self.engines.start()
        if self.runs_maintenance:
            self.maintenance.start()

    def stop(self) -> None:
        """Stop taking new steps: running attempts hand their jobs back at the next step."""
        self.runner.stopping.set()

    def close(self) -> None:
        self._beats.stop()
        self.maintenance.stop()
        if self.engines is not None:
            self.engines.stop()
        try:
            for queue in self.served:
                self.client.zrem(keys.workers(queue), self.identity)
        except redis.RedisError:
            pass
        self.ledger.close()

    def _beat(self) -> None:
        try:
            self.beat()
        except redis.RedisError as exc:
            if not self._beats_down:
                log.warning("heartbeat failed: Redis unreachable (%s); retrying", exc)
            self._beats_down = True
            return
        if self._beats_down:
            log.info("heartbeat restored")
        self._beats_down = False

    def beat(self) -> None:
        stamp = now_ms()
        pipe = self.client.pipeline(transaction=False)
        for queue in self.served:
            pipe.zadd(keys.workers(queue), {self.identity: stamp})
            pipe.zremrangebyscore(keys.workers(queue), 0, stamp - keys.WORKER_TTL_MS)
        pipe.execute()
        for attempt in self.runner.running():
            if attempt.lost or attempt.ending:
                continue
            if not self.ledger.heartbeat(attempt) and not attempt.ending:
                log.warning(
                    "job %s attempt %d was superseded; it stops at its next step",
                    attempt.job_id,
                    attempt.number,
                )
