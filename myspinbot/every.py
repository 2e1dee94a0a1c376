"""Every N seconds until stopped: the one daemon-thread loop of the background jobs."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Every:
    """A daemon thread that calls `tick` every `seconds` until `stop()`.

    `tick` returns the wait before its next call, or None for `seconds`: a loop backs
    off (or hurries) by returning another wait. `first` is the wait before the first
    call (default `seconds`; 0 calls at once). A stop ends the thread at its next wait.
    """

    def __init__(
        self,
        seconds: float,
        tick: Callable[[], float | None],
        *,
        name: str,
        first: float | None = None,
    ) -> None:
        self.seconds = seconds
        self.tick = tick
        self.first = seconds if first is None else first
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()

    def _run(self) -> None:
        wait = self.first
        while not self.stopping.wait(wait):
            later = self.tick()
            wait = self.seconds if later is None else later
