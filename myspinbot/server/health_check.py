"""`myspinbot health`: the container's health check, without curl and without HTTP for a worker.

A worker replica (started with a heartbeat file, as the image does) is healthy while its
file is younger than the age /health counts a worker live for; the server is healthy while
its /health answers 2xx on the loopback. With neither flag the check picks by what the
container runs: the worker's file when there is one, else the HTTP server.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..jobs.keys import WORKER_TTL_MS

HEARTBEAT_ENV = "MYSPINBOT_HEARTBEAT_FILE"


def heartbeat_file(raw: str | None = None) -> Path | None:
    """The worker's heartbeat file: the given path, else $MYSPINBOT_HEARTBEAT_FILE, else none."""
    raw = os.environ.get(HEARTBEAT_ENV, "") if raw is None else raw
    return Path(raw) if raw.strip() else None


def check_worker(path: Path | None, max_age: float = WORKER_TTL_MS / 1000) -> str | None:
    """None when the worker beat within `max_age` seconds, else what is wrong."""
    if path is None:
        return f"no heartbeat file configured (--heartbeat-file or ${HEARTBEAT_ENV})"
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return f"no heartbeat yet at {path}"
    if age > max_age:
        return f"last heartbeat {age:.0f} s ago (Redis unreachable or the worker stuck)"
    return None


def check_http(port: int, timeout: float = 4.0) -> str | None:
    """None when /health answers 2xx, else what is wrong (a 503 means Redis is away)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=timeout):
            return None
    except urllib.error.HTTPError as exc:
        return f"/health answered {exc.code}"
    except OSError as exc:
        return f"/health unreachable: {exc}"


def run_health(*, worker: bool, http: bool, path: Path | None, port: int) -> str | None:
    """What is wrong, or None when healthy."""
    if worker or (not http and path is not None and path.exists()):
        return check_worker(path)
    return check_http(port)
