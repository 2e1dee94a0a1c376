"""The folder where prometheus_client's multiprocess mode keeps each process's samples.

The main process creates it (empty) before any worker starts and removes it at the end.
No prometheus_client import here: the main process serves no metrics itself.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from sanic import Sanic

from ..processes import pid_alive

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DIR_PREFIX = "myspinbot-metrics-"  # then the main process's pid: myspinbot-metrics-<pid>-<random>


def prepare_multiprocess_dir(app: Sanic) -> None:
    """In the main process, before any worker starts: a fresh folder for the samples."""
    remove_orphaned_dirs(Path(tempfile.gettempdir()))
    folder = tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-")
    os.environ[MULTIPROC_ENV] = folder
    app.ctx.metrics_dir = folder


def remove_orphaned_dirs(parent: Path) -> None:
    """Folders of servers that ended without cleaning up (kill -9): their pid is gone."""
    for entry in parent.glob(f"{DIR_PREFIX}*-*"):
        pid = entry.name.removeprefix(DIR_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def remove_multiprocess_dir(app: Sanic) -> None:
    folder = getattr(app.ctx, "metrics_dir", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
