"""A worker's runtime: its runner, its two queues, its heartbeats and background loops."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from pathlib import Path

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


def worker_identity() -> str:
    """`host:pid:random`, made once per process. Host and PID alone collide between
    containers: replicas share a hostname under `--network host` or in one pod, and each
    container's first process has the same PID."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def write_heartbeat(path: Path, identity: str, stamp: int) -> None:
    """The beat for `myspinbot health --worker`, which reads the file's age: written
    whole, then renamed over the old one."""
    part = path.with_name(path.name + ".part")
    part.write_text(f"{identity} {stamp}\n")
    os.replace(part, path)


class WorkerRuntime:
    """What a worker needs to take and run jobs: built at consumer start-up, never at import.

    Its queues are its own, bound to its Redis with its runner as their claimer, and its
    tasks are registered on them: two runtimes in one process share nothing.
    """

    def __init__(
        self,
        settings: Settings,
        redis_url: str,
        *,
        maintenance: bool = True,
        heartbeat_file: Path | None = None,
    ) -> None:
        self.settings = settings
        self.heartbeat_file = heartbeat_file  # rewritten after each beat Redis took
        self._file_failed = False
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
        self.identity = worker_identity()
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
        log.info("worker %s started", self.identity)
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
        if self.heartbeat_file is not None:
            self.heartbeat_file.unlink(missing_ok=True)  # a stopped worker is not healthy
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

    def _beat_file(self, stamp: int) -> None:
        """The file beat; a file that cannot be written must not stop the Redis beats."""
        assert self.heartbeat_file is not None
        try:
            write_heartbeat(self.heartbeat_file, self.identity, stamp)
        except OSError as exc:
            if not self._file_failed:
                log.warning("heartbeat file %s cannot be written: %s", self.heartbeat_file, exc)
            self._file_failed = True
        else:
            self._file_failed = False

    def beat(self) -> None:
        stamp = now_ms()
        pipe = self.client.pipeline(transaction=False)
        for queue in self.served:
            pipe.zadd(keys.workers(queue), {self.identity: stamp})
            pipe.zremrangebyscore(keys.workers(queue), 0, stamp - keys.WORKER_TTL_MS)
        pipe.execute()
        if self.heartbeat_file is not None:
            self._beat_file(stamp)
        for attempt in self.runner.running():
            if attempt.lost or attempt.ending:
                continue
            if not self.ledger.heartbeat(attempt) and not attempt.ending:
                log.warning(
                    "job %s run %d was superseded; it stops at its next step",
                    attempt.job_id,
                    attempt.number,
                )
