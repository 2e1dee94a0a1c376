"""Restart processes that Sanic's manager lets die (it restarts nothing on its own)."""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..every import Every
from .processes import run_on_spawner_thread

log = logging.getLogger("myspinbot.supervisor")

GIVE_UP_AFTER = 10  # quick failures in a row before we stop trying
QUICK_RUN = 10.0  # seconds: a process that dies sooner after its start is failing to start
MAX_BACKOFF = 30.0
READY_POLL = 0.05  # seconds between looks while the servers start


@dataclass
class _Record:
    quick: int = 0  # failures in a row, each soon after a start
    started: float = 0.0  # when it was (re)started
    died: float | None = None  # when we first saw the current death


class Supervisor:
    """A thread in the main process that polls the manager's processes."""

    def __init__(
        self, manager: Any, poll: float = 0.5, on_ready: Callable[[], None] = lambda: None
    ) -> None:
        self.manager = manager
        self.poll = poll
        self.on_ready = on_ready
        self._ready = False
        self._records: dict[str, _Record] = {}
        self._since = time.monotonic()  # the manager starts its processes about now
        self._every = Every(poll, self._check, name="supervisor", first=READY_POLL)
        self.stopping = self._every.stopping

    def start(self) -> None:
        self._every.start()

    def stop(self) -> None:
        self._every.stop()

    def _all_acknowledged(self) -> bool:
        # worker_state is a manager proxy; each thread has its own connection to it.
        servers = [s for s in self.manager.worker_state.values() if s.get("server")]
        return len(servers) >= self.manager.num_server and all(
            s.get("state") == "ACKED" for s in servers
        )

    def _check(self) -> float | None:
        """Until every server has started: say ready once they have. Then: restart the dead."""
        if not self._ready:
            if not self._all_acknowledged():
                return READY_POLL
            self._ready = True
            self.on_ready()
            return None
        if getattr(self.manager, "_shutting_down", False):
            self.stop()
            return None
        for process in list(self.manager.processes):
            if not process.is_alive() and process.exitcode is not None:
                self._maybe_restart(process)
        return None

    def _maybe_restart(self, process: Any) -> None:
        """Restart with backoff; give up only on a process that cannot even start.

        A worker killed mid-job (OOM, a crashing pipeline) had run for a while: it is
        always restarted, or one poison job after another would leave its queue with
        no worker at all. A process that keeps dying within QUICK_RUN of each start is
        broken (bad environment, import error): after GIVE_UP_AFTER of those we stop.
        """
        now = time.monotonic()
        record = self._records.setdefault(process.name, _Record(started=self._since))
        if record.died is None:
            record.died = now
            record.quick = record.quick + 1 if now - record.started < QUICK_RUN else 0
            if record.quick >= GIVE_UP_AFTER:
                log.error("process %s keeps failing at start-up; giving up on it", process.name)
        if record.quick >= GIVE_UP_AFTER:
            return
        backoff = min(MAX_BACKOFF, 0.5 * 2 ** max(0, record.quick - 1))
        if now < record.died + backoff:
            return
        if self.stopping.is_set() or getattr(self.manager, "_shutting_down", False):
            return
        log.warning(
            "process %s exited with %s; restarting (quick failures in a row: %d)",
            process.name,
            process.exitcode,
            record.quick,
        )
        try:
            # A child's parent-death signal belongs to the thread that spawned it: restart from
            # the thread that lives as long as the process, not from this one.
            run_on_spawner_thread(process.restart)
        except Exception:
            log.exception("could not restart %s", process.name)
        record.started, record.died = time.monotonic(), None


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
