"""A worker process's runtime: its runner, its heartbeats, built once per process."""

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

from ..config import Settings
from . import handoff, keys
from .engine_probe import EngineProbe
from .ledger import Ledger
from .maintenance import Maintenance, MaintenanceLoop
from .model import now_ms
from .pipelines.factory import build_pipelines
from .queues import bind_queues
from .runner import Runner

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
    """Process-wide state of a worker: built once, at consumer start-up, never at import."""

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
        handoff.install(self.runner.pop_claim)  # the queues' storage claims as it pops
        self.maintenance = MaintenanceLoop(
            Maintenance(self.client, settings), settings.maintenance_interval
        )
        self.identity = worker_identity()
        self.engines = (
            EngineProbe(self.client, settings, self.identity) if settings.comfyui_url else None
        )
        self.queues: set[str] = set()
        self._lock = threading.Lock()
        self._started = False
        self._stop = threading.Event()

    def serving(self, queue: str) -> None:
        """Called by each consumer thread at start-up; starts the background loops once."""
        with self._lock:
            self.queues.add(queue)
            if self._started:
                return
            self._started = True
        log.info("worker %s started", self.identity)
        threading.Thread(target=self._beat_loop, name="heartbeat", daemon=True).start()
        if self.engines is not None:
            self.engines.start()
        if self.runs_maintenance:
            self.maintenance.start()

    def stop(self) -> None:
        """Stop taking new steps: running attempts hand their jobs back at the next step."""
        self.runner.stopping.set()

    def close(self) -> None:
        self._stop.set()
        self.maintenance.stop()
        if self.engines is not None:
            self.engines.stop()
        try:
            for queue in self.queues:
                self.client.zrem(keys.workers(queue), self.identity)
        except redis.RedisError:
            pass
        if self.heartbeat_file is not None:
            self.heartbeat_file.unlink(missing_ok=True)  # a stopped worker is not healthy
        self.ledger.close()

    def _beat_loop(self) -> None:
        interval = min(2.0, self.settings.lease_seconds / 3)
        down = False
        wait = 0.0  # the first beat at once: /health counts this worker from its start
        while not self._stop.wait(wait):
            wait = interval
            try:
                self.beat()
            except redis.RedisError as exc:
                if not down:
                    log.warning("heartbeat failed: Redis unreachable (%s); retrying", exc)
                down = True
                continue
            if down:
                log.info("heartbeat restored")
            down = False

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
        for queue in self.queues:
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
                    "job %s attempt %d was superseded; it stops at its next step",
                    attempt.job_id,
                    attempt.number,
                )


_runtime: WorkerRuntime | None = None
_runtime_lock = threading.Lock()


def runtime() -> WorkerRuntime:
    """This process's runtime, built from the environment on first use."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            settings = Settings.from_env()
            _runtime = WorkerRuntime(settings, settings.store_url)
        return _runtime


def install_runtime(
    settings: Settings, *, maintenance: bool = True, heartbeat_file: Path | None = None
) -> WorkerRuntime:
    """Build this process's runtime (and point the queues at its Redis) before consuming."""
    global _runtime
    with _runtime_lock:
        bind_queues(settings.store_url)
        _runtime = WorkerRuntime(
            settings, settings.store_url, maintenance=maintenance, heartbeat_file=heartbeat_file
        )
        return _runtime
