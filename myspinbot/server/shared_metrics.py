"""The multi-process layout's metrics folder: where every HTTP worker keeps its samples.

prometheus_client's multiprocess mode: each HTTP worker writes its samples to files in
PROMETHEUS_MULTIPROC_DIR, which the main process creates (empty) before any worker
starts, and the worker that answers a scrape merges them. The one-process layout needs
none of this: its samples live in the process's own registry.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.multiprocess import mark_process_dead

from ..metrics.process import MULTIPROC_ENV
from .processes import pid_alive

DIR_PREFIX = "myspinbot-metrics-"  # then the main process's pid: myspinbot-metrics-<pid>-<random>
# A `live*` gauge's file per process: gauge_livesum_<pid>.db
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")


@contextlib.contextmanager
def shared_metrics_dir() -> Iterator[str]:
    """A fresh folder for the samples, announced to the workers through the environment."""
    remove_orphaned_dirs(Path(tempfile.gettempdir()))
    folder = tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-")
    os.environ[MULTIPROC_ENV] = folder
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_orphaned_dirs(parent: Path) -> None:
    """Folders of servers that ended without cleaning up (kill -9): their pid is gone."""
    for entry in parent.glob(f"{DIR_PREFIX}*-*"):
        pid = entry.name.removeprefix(DIR_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def forget_dead_processes(folder: str | None = None) -> list[int]:
    """Drop the live gauges of HTTP workers that are gone (one crashed, or was restarted).

    Sanic tells nobody when a worker dies, so the scraping process checks. Counters and
    histograms of a dead worker stay: they are totals, and dropping them would make
    them go backwards.
    """
    folder = folder or os.environ.get(MULTIPROC_ENV)
    if not folder:
        return []
    dead = set()
    for entry in Path(folder).iterdir():
        match = _LIVE_GAUGE_FILE.match(entry.name)
        if match and not pid_alive(int(match.group(1))):
            dead.add(int(match.group(1)))
    for pid in dead:
        with contextlib.suppress(FileNotFoundError):  # another worker's scrape was first
            mark_process_dead(pid, folder)
    return sorted(dead)
