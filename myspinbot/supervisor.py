"""Restart processes that Sanic's manager lets die (it restarts nothing on its own)."""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from .processes import run_on_spawner_thread

log = logging.getLogger("myspinbot.supervisor")

GIVE_UP_AFTER = 10  # restarts within STABLE_SECONDS of each other before we stop trying
STABLE_SECONDS = 60.0


class Supervisor:
    """A thread in the main process that polls the manager's processes."""

    def __init__(
        self, manager: Any, poll: float = 0.5, on_ready: Callable[[], None] = lambda: None
    ) -> None:
        self.manager = manager
        self.poll = poll
        self.on_ready = on_ready
        self.stopping = threading.Event()
        self._failures: dict[str, tuple[int, float]] = {}  # name -> (streak, next try at)
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()

    def _all_acknowledged(self) -> bool:
        # worker_state is a manager proxy; each thread has its own connection to it.
        servers = [s for s in self.manager.worker_state.values() if s.get("server")]
        return len(servers) >= self.manager.num_server and all(
            s.get("state") == "ACKED" for s in servers
        )

    def _run(self) -> None:
        while not self.stopping.wait(0.05):
            if self._all_acknowledged():
                self.on_ready()
                break
        while not self.stopping.wait(self.poll):
            if getattr(self.manager, "_shutting_down", False):
                return
            for process in list(self.manager.processes):
                if not process.is_alive() and process.exitcode is not None:
                    self._maybe_restart(process)

    def _maybe_restart(self, process: Any) -> None:
        now = time.monotonic()
        streak, next_try = self._failures.get(process.name, (0, 0.0))
        if now < next_try or streak >= GIVE_UP_AFTER:
            return
        if self.stopping.is_set() or getattr(self.manager, "_shutting_down", False):
            return
        backoff = min(30.0, 0.5 * 2**streak)
        log.warning(
            "process %s exited with %s; restarting (restart %d, next backoff %.1fs)",
            process.name,
            process.exitcode,
            streak + 1,
            backoff,
        )
        try:
            # A child's parent-death signal belongs to the thread that spawned it: restart from
            # the thread that lives as long as the process, not from this one.
            run_on_spawner_thread(process.restart)
        except Exception:
            log.exception("could not restart %s", process.name)
        streak = streak + 1 if now - next_try < STABLE_SECONDS else 1
        self._failures[process.name] = (streak, now + backoff)
        if streak >= GIVE_UP_AFTER:
            log.error("process %s keeps crashing; giving up on it", process.name)


def defer_shutdown_signals(manager: Any) -> None:
    """Handle SIGINT/SIGTERM on a thread instead of inside the signal handler.

    Sanic's handler talks to its multiprocessing manager through the main thread's
    proxy connection; when the signal lands while the main thread is itself in a proxy
    call, the two interleave on one socket and the main process hangs. A proxy gives
    each thread its own connection, so a thread makes the same calls safely.
    """
    pending: queue.SimpleQueue[int] = queue.SimpleQueue()

    def relay() -> None:
        while True:
            signum = pending.get()
            try:
                manager.shutdown_signal(signum, None)
            except BaseException:  # ServerKilled on a second signal: the kill already happened
                log.info("shutdown forced by a second signal")

    threading.Thread(target=relay, name="signal-relay", daemon=True).start()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, frame: pending.put(number))
