"""Start, pin, measure and stop the processes the benchmark runs."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

SERVER_CPU = 0
LOAD_CPU = 1


class BenchError(RuntimeError):
    """A failure that ends a scenario or the run, with a readable message."""


@functools.cache
def can_pin() -> bool:
    """True when there are two CPUs to split between servers and load (asked once, before
    this process pins itself)."""
    try:
        cpus = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return False
    return {SERVER_CPU, LOAD_CPU} <= cpus


def pin_self_to_load_cpu() -> None:
    """Pin this process (and the threads and children it starts later) to the load CPU."""
    if can_pin():
        os.sched_setaffinity(0, {LOAD_CPU})


def server_prefix() -> list[str]:
    """Command prefix that starts a process tree on the server CPU."""
    taskset = shutil.which("taskset")
    if taskset and can_pin():
        return [taskset, "-c", str(SERVER_CPU)]
    return []


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_pids(root: int) -> list[int]:
    """The root pid and all its live descendants."""
    try:
        proc = psutil.Process(root)
        kids = proc.children(recursive=True)
    except psutil.Error:
        return []
    return [root] + [k.pid for k in kids]


def pin_tree(pids: Iterable[int], cpu: int) -> dict[int, list[int]]:
    """Pin every thread of every pid to `cpu` (what `taskset -a -p` does); return affinities."""
    seen: dict[int, list[int]] = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(tid), {cpu})
            seen[pid] = sorted(os.sched_getaffinity(pid))
    return seen


def mem_kib(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in KiB; PSS falls back to RSS where smaps is unreadable."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        text = ""
    fields = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("Rss:", "Pss:"):
            fields[parts[0]] = int(parts[1])
    if "Rss:" not in fields:
        try:
            rss = psutil.Process(pid).memory_info().rss // 1024
        except psutil.Error:
            return 0, 0
        return rss, rss
    return fields.get("Pss:", fields["Rss:"]), fields["Rss:"]


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_seconds(path: str) -> float:
    """utime + stime of one /proc stat file (a process's includes its exited threads)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return 0.0
    fields = text.rpartition(")")[2].split()  # after "pid (comm)": state is fields[0]
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds a system has used so far, split where the work happens.

    `main`: the server's main thread (ours: Sanic's event loop, HTTP and /ws; seed-node:
    its one JavaScript thread, HTTP and BullMQ's workers both). `threads`: its other
    threads and child processes (ours: the in-process workers and the maintenance loop;
    seed-node: V8's and libuv's helpers). `redis`: the system's redis-server.
    """

    main: float
    threads: float
    redis: float

    def minus(self, before: CpuSample) -> CpuSample:
        return CpuSample(
            self.main - before.main, self.threads - before.threads, self.redis - before.redis
        )


def system_cpu(server: int, redis: int) -> CpuSample:
    main = _stat_seconds(f"/proc/{server}/task/{server}/stat")
    others = _stat_seconds(f"/proc/{server}/stat") - main
    others += sum(_stat_seconds(f"/proc/{pid}/stat") for pid in tree_pids(server)[1:])
    return CpuSample(main, others, sum(_stat_seconds(f"/proc/{p}/stat") for p in tree_pids(redis)))


@dataclass
class MemSample:
    """Memory of one system at one moment, KiB."""

    pss: int
    rss: int
    procs: int


def system_memory(roots: Iterable[int]) -> MemSample:
    """Sum PSS/RSS over the trees of the given root pids (server tree + its Redis)."""
    pss = rss = n = 0
    for root in roots:
        for pid in tree_pids(root):
            p, r = mem_kib(pid)
            pss, rss, n = pss + p, rss + r, n + 1
    return MemSample(pss, rss, n)


class MemSampler:
    """Samples a system's memory in a thread and keeps the peak."""

    def __init__(self, roots: list[int], interval: float = 0.25) -> None:
        self.roots = roots
        self.interval = interval
        self.peak = MemSample(0, 0, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mem-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> MemSample:
        s = system_memory(self.roots)
        if s.pss > self.peak.pss:
            self.peak = s
        return s

    def __enter__(self) -> MemSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()


@dataclass
class Proc:
    """A started process tree: its command, log file and the pids seen in it."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    log_offset: int = 0
    seen: set[int] = field(default_factory=set)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def refresh(self) -> list[int]:
        pids = tree_pids(self.pid) if self.popen.poll() is None else []
        self.seen.update(pids)
        return pids

    def log_tail(self, lines: int = 25) -> str:
        try:
            with open(self.log, "rb") as f:
                f.seek(self.log_offset)
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def spawn(name: str, cmd: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> Proc:
    """Start a command in its own session, output to `log`."""
    exe = shutil.which(cmd[0]) if not os.path.isabs(cmd[0]) else cmd[0]
    if not exe:
        raise BenchError(f"{name}: `{cmd[0]}` is not installed or not on PATH")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        offset = out.tell()
        popen = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proc = Proc(name, popen, log, offset)
    proc.refresh()
    return proc


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def stop(proc: Proc | None, sig: int = signal.SIGTERM, grace: float = 15.0) -> None:
    """Stop a process tree: `sig` to the root, then SIGKILL to whatever is left of it."""
    if proc is None:
        return
    proc.refresh()
    if proc.popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None and not any(_alive(p) for p in proc.seen):
            break
        proc.refresh()
        time.sleep(0.05)
    if proc.popen.poll() is None:  # the group id is still ours only while the root is unreaped
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    for pid in proc.seen:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.popen.wait(timeout=5)
