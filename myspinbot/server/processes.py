"""Small process helpers: a spawner thread, liveness checks, bounded termination, pid locks."""

from __future__ import annotations

import fcntl
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
_Job = tuple[Callable[[], Any], "Future[Any]"]

_LINUX = sys.platform.startswith("linux")
_POLL_INTERVAL = 0.05


@dataclass(frozen=True)
class ProcessInfo:
    """What the system tells about a running process."""

    pid: int
    ppid: int
    name: str
    cwd: Path | None  # None where the platform does not tell us


class _SpawnerThread:
    """A thread that lives as long as the process and runs the callables given to it."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def run(self, fn: Callable[[], T]) -> T:
        with self._mutex:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="spawner", daemon=True)
                self._thread.start()
        future: Future[T] = Future()
        self._jobs.put((fn, future))
        return future.result()

    def _loop(self) -> None:
        while True:
            fn, future = self._jobs.get()
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed back to the caller, which re-raises it
                future.set_exception(exc)


_spawner = _SpawnerThread()


def run_on_spawner_thread(fn: Callable[[], T]) -> T:
    """Run `fn` (which starts a child process) on one process-lifetime thread and return its result.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the
    process: a child armed from a short-lived thread would be killed with that thread.
    """
    return _spawner.run(fn)


def _proc_stat(pid: int) -> tuple[str, str, int] | None:
    """(name, state, ppid) from /proc, or None if the process is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The name is in parentheses and may itself contain spaces or ")".
    name = data[data.index("(") + 1 : data.rindex(")")]
    state, ppid = data[data.rindex(")") + 2 :].split()[:2]
    return name, state, int(ppid)


def pid_alive(pid: int) -> bool:
    """Whether `pid` is a running process (zombies count as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if not _LINUX:
        return True
    stat = _proc_stat(pid)
    return stat is not None and stat[1] not in ("Z", "X")


def process_info(pid: int) -> ProcessInfo | None:
    """Parent, name and working directory of a running process, or None if it is gone."""
    if pid <= 0 or not pid_alive(pid):
        return None
    if _LINUX:
        stat = _proc_stat(pid)
        if stat is None:
            return None
        try:
            cwd: Path | None = Path(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            cwd = None
        return ProcessInfo(pid, stat[2], stat[0], cwd)
    out = subprocess.run(
        ["ps", "-o", "ppid=,comm=", "-p", str(pid)], capture_output=True, text=True, timeout=5
    ).stdout.split(None, 1)
    if len(out) != 2:
        return None
    return ProcessInfo(pid, int(out[0]), Path(out[1].strip()).name, None)


def wait_gone(pid: int, timeout: float) -> bool:
    """Poll until `pid` is gone or `timeout` passes; return whether it is gone."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_INTERVAL)
    return True


def terminate_and_wait(pid: int, timeout: float = 10.0, sig: int = signal.SIGTERM) -> bool:
    """Send `sig`, wait up to `timeout`, then SIGKILL; return whether the process is gone.

    For processes that are not our children (we cannot waitpid them); a child of ours
    shows up as gone once it is a zombie, and its owner still has to reap it.
    """
    for signum, wait in ((sig, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return True
        if wait_gone(pid, wait):
            return True
    return False


def read_pid(path: Path) -> int | None:
    """The pid written in `path`, or None if it is missing or unreadable."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


class PidLock:
    """An exclusive, non-blocking `flock` on `path`; the holder writes its pid into the file.

    The lock belongs to the open file, so a child given `fd` (pass_fds) keeps it held
    for as long as either of them lives.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock; False if another open file holds it."""
        if self.fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return True

    def owner(self) -> int | None:
        """The pid of the process that last took the lock."""
        return read_pid(self.path)

    def release(self) -> None:
        """Close our file; the lock is free once no child holds it either."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
