"""The supervisor's restart policy, with real child processes standing in for Sanic's."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from support import wait_until

from myspinbot.server import supervisor
from myspinbot.server.supervisor import Supervisor


class Child:
    """The part of Sanic's WorkerProcess the supervisor uses, around a real process."""

    def __init__(self, name: str, lifetime: float) -> None:
        self.name, self.lifetime = name, lifetime
        self.starts = 0
        self.restart()

    def restart(self) -> None:
        self.starts += 1
        code = f"import time, sys; time.sleep({self.lifetime}); sys.exit(3)"
        self.proc = subprocess.Popen([sys.executable, "-c", code])

    def is_alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def exitcode(self) -> int | None:
        return self.proc.poll()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


class Manager:
    def __init__(self, *processes: Child) -> None:
        self.processes = list(processes)
        self.worker_state: dict[str, Any] = {}
        self.num_server = 0
        self._shutting_down = False


def test_a_worker_that_dies_after_running_a_while_is_always_restarted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(supervisor, "QUICK_RUN", 0.3)
    monkeypatch.setattr(supervisor, "GIVE_UP_AFTER", 2)
    child = Child("Worker-generate-0", lifetime=0.5)  # each run outlives QUICK_RUN
    watcher = Supervisor(Manager(child), poll=0.05)
    watcher.start()
    try:
        wait_until(lambda: child.starts >= 4, 20, "four starts")  # past GIVE_UP_AFTER
    finally:
        watcher.stop()
        child.kill()


def test_a_process_that_cannot_start_is_given_up_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(supervisor, "QUICK_RUN", 5.0)
    monkeypatch.setattr(supervisor, "GIVE_UP_AFTER", 3)
    broken = Child("Worker-train-0", lifetime=0)
    watcher = Supervisor(Manager(broken), poll=0.05)
    watcher.start()
    try:
        wait_until(lambda: "giving up on it" in caplog.text, 20, "the supervisor to give up")
        assert broken.starts == 3 and not broken.is_alive()
    finally:
        watcher.stop()
        broken.kill()
