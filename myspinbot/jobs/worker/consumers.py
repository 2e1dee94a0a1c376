"""Huey consumers for our queues: as threads of the server (the default) or as a replica.

Both run Huey's own worker loop on the same queues, so `myspinbot worker`, plain
`huey_consumer myspinbot.jobs.worker.train_queue` and the server's in-process workers behave
alike: claim, run, report, hand back on stop.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

import redis
from huey.consumer import Consumer, Scheduler, Worker

from ...config import QUEUES as QUEUE_KINDS
from ...config import Settings
from .runtime import WorkerRuntime

log = logging.getLogger("myspinbot.worker")

SHUTDOWN_TIMEOUT = 7.0  # what a stop waits for running jobs to reach their next step
POLL_DELAY, POLL_MAX_DELAY = 0.05, 1.0  # Huey's polling backoff while Redis is away


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

    def __init__(self, runtime: WorkerRuntime, queue: str, **kwargs: Any) -> None:
        super().__init__(runtime.queues[queue], **kwargs)
        self.runtime = runtime
        # Huey re-execs the whole command line on SIGHUP; a closed terminal must not do that.
        self._signal_actions.pop(signal.SIGHUP, None)

    def stop(self, graceful: bool = False) -> None:
        self.runtime.stop()
        # Graceful (SIGINT): attempts hand back at their next step while Huey joins the
        # threads. Immediate (SIGTERM), or a step longer than the shutdown timeout: Huey
        # cannot interrupt its threads, so hand their jobs back from here; fencing refuses
        # whatever those threads still try to write before the process exits.
        super().stop(graceful=graceful)
        self.runtime.runner.hand_back_all()


def run_consumer(
    queue: str, settings: Settings, threads: int, heartbeat_file: Path | None = None
) -> None:
    """A replica: serve one queue until SIGINT (hand back at the next step) or SIGTERM (now)."""
    rt = WorkerRuntime(settings, settings.store_url, heartbeat_file=heartbeat_file)
    consumer = _Consumer(
        rt,
        queue,
        workers=threads,
        worker_type="thread",
        periodic=False,
        initial_delay=POLL_DELAY,
        max_delay=POLL_MAX_DELAY,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )
    try:
        consumer.run()
    finally:
        rt.close()


class InProcessWorkers:
    """Both queues' Huey workers as threads of this process: the one-process layout.

    Pipelines run on these threads, off the server's event loop; their progress goes out
    through Redis pub/sub like a replica's. Upkeep (reaper, retries, sweep, retention) is
    the server's own loop, so the runtime here runs none.
    """

    def __init__(self, settings: Settings, per_queue: int) -> None:
        """`per_queue` workers of `settings.worker_threads` threads each, for each queue."""
        self.runtime = WorkerRuntime(settings, settings.store_url, maintenance=False)
        self.stop_flag = threading.Event()
        self.threads = [
            threading.Thread(
                target=self._run,
                args=(self._worker(queue),),
                name=f"worker-{queue}-{index}",
                daemon=True,
            )
            for queue in QUEUE_KINDS
            for index in range(per_queue * settings.worker_threads)
        ]

    def _worker(self, queue: str) -> _Worker:
        return _Worker(
            self.runtime.queues[queue], self.stop_flag, POLL_DELAY, POLL_MAX_DELAY, backoff=1.15
        )

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _run(self, worker: _Worker) -> None:
        worker.initialize()  # the queue's startup hook: heartbeats from now on
        try:
            while not self.stop_flag.is_set():
                worker.loop()
        except Exception:
            log.exception("worker thread %s stopped", threading.current_thread().name)
        finally:
            worker.shutdown()

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Hand running jobs back at their next step; past `timeout`, hand them back from here."""
        self.runtime.stop()
        self.stop_flag.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.runtime.runner.hand_back_all()
        self.runtime.close()
