"""A worker process: its runner, its heartbeats, and the consumer loop for one queue."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from typing import Any

import redis
from huey.consumer import Consumer, Scheduler, Worker
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from ..config import Settings
from . import keys
from .ledger import Ledger
from .maintenance import Maintenance, MaintenanceLoop
from .model import now_ms
from .pipelines.mock import MockGenerate, MockTrain
from .queues import QUEUES, bind_queues, default_redis_url
from .runner import Runner

log = logging.getLogger("myspinbot.worker")

SHUTDOWN_TIMEOUT = 7.0  # under Sanic's ~10 s grace for managed processes


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
    """Process-wide state of a worker: built once, at consumer start-up, never at import."""

    def __init__(self, settings: Settings, redis_url: str) -> None:
        self.settings = settings
        self.client = redis_client(redis_url)
        self.ledger = Ledger(self.client, settings.lease_seconds)
        self.runner = Runner(
            self.ledger,
            {
                "train": MockTrain(
                    settings.mock_steps, settings.mock_step_seconds, settings.mock_faults
                ),
                "generate": MockGenerate(
                    settings.mock_steps,
                    settings.mock_step_seconds,
                    settings.mock_faults,
                    settings.artifacts_dir,
                ),
            },
            uploads_dir=settings.uploads_dir,
            artifacts_dir=settings.artifacts_dir,
            max_attempts=settings.max_attempts,
            retry_base=settings.retry_base_seconds,
        )
        self.maintenance = MaintenanceLoop(
            Maintenance(self.client, settings), settings.maintenance_interval
        )
        self.identity = f"{socket.gethostname()}:{os.getpid()}"
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
        threading.Thread(target=self._beat_loop, name="heartbeat", daemon=True).start()
        self.maintenance.start()

    def stop(self) -> None:
        """Stop taking new steps: running attempts hand their jobs back at the next step."""
        self.runner.stopping.set()

    def close(self) -> None:
        self._stop.set()
        self.maintenance.stop()
        try:
            for queue in self.queues:
                self.client.zrem(keys.workers(queue), self.identity)
        except redis.RedisError:
            pass

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

    def beat(self) -> None:
        stamp = now_ms()
        pipe = self.client.pipeline(transaction=False)
        for queue in self.queues:
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


_runtime: WorkerRuntime | None = None
_runtime_lock = threading.Lock()


def runtime() -> WorkerRuntime:
    """This process's runtime, built from the environment on first use."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            settings = Settings.from_env()
            _runtime = WorkerRuntime(settings, default_redis_url(settings))
        return _runtime


def install_runtime(settings: Settings, redis_url: str) -> WorkerRuntime:
    global _runtime
    with _runtime_lock:
        bind_queues(redis_url)
        _runtime = WorkerRuntime(settings, redis_url)
        return _runtime


class _Worker(Worker):
    """Huey's worker loop, saying once that Redis is away instead of a traceback per poll."""

    redis_down = False

    def loop(self, now: Any = None) -> None:
        try:
            task = self.huey.dequeue()
        except redis.RedisError as exc:
            if not self.redis_down:
                log.warning(
                    "queue %s: Redis unreachable (%s); polling with backoff", self.huey.name, exc
                )
            self.redis_down = True
            self.sleep()  # Huey's backoff: delay grows by `backoff` up to `max_delay`
            return
        if self.redis_down:
            log.info("queue %s: Redis reachable again", self.huey.name)
            self.redis_down = False
            self.delay = self.default_delay
        if task is None:
            return  # the storage blocks (BRPOP with a timeout): poll again at once
        try:
            self.huey.execute(task, now)
        except Exception:
            log.exception("unhandled error while running task %s", task.id)


class _IdleScheduler(Scheduler):
    """No schedule to read: our retries live in our own zset and no task has an eta.

    Huey's scheduler would poll an always-empty schedule every second and log a
    traceback each time Redis is away.
    """

    def loop(self, now: Any = None) -> None:
        self.stop_flag.wait(1.0)


class _Consumer(Consumer):
    """Huey's consumer, telling our runner to hand jobs back as soon as a stop begins."""

    worker_class = _Worker
    scheduler_class = _IdleScheduler

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Huey re-execs the whole command line on SIGHUP; a closed terminal must not do that.
        self._signal_actions.pop(signal.SIGHUP, None)

    def stop(self, graceful: bool = False) -> None:
        rt = runtime()
        rt.stop()
        # Graceful (SIGINT): attempts hand back at their next step while Huey joins the
        # threads. Immediate (SIGTERM), or a step longer than the shutdown timeout: Huey
        # cannot interrupt its threads, so hand their jobs back from here; fencing refuses
        # whatever those threads still try to write before the process exits.
        super().stop(graceful=graceful)
        rt.runner.hand_back_all()


def run_consumer(queue: str, settings: Settings, threads: int, **_: Any) -> None:
    """Serve one queue until SIGINT (drain: hand back at the next step) or SIGTERM."""
    redis_url = settings.redis_url or default_redis_url(settings)
    rt = install_runtime(settings, redis_url)
    consumer = _Consumer(
        QUEUES[queue],
        workers=threads,
        worker_type="thread",
        periodic=False,
        initial_delay=0.05,
        max_delay=1.0,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )
    try:
        consumer.run()
    finally:
        rt.close()


def run_managed_consumer(
    queue: str, settings_env: dict[str, str], threads: int, parent_pid: int
) -> None:
    """Entry point of an in-process worker that Sanic's manager runs."""
    from ..logs import configure_logging
    from ..processes import arm_parent_death_signal

    os.setsid()  # one Ctrl-C must not reach Huey twice (it takes the second as "now")
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # Huey re-execs the command line on SIGHUP
    arm_parent_death_signal(signal.SIGTERM, expected_parent=parent_pid)
    os.environ.update(settings_env)
    settings = Settings.from_env()
    configure_logging(settings)
    run_consumer(queue, settings, threads)
