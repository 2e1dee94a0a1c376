"""The worker's side of a job's life: claim it, run its pipeline, record how it ended.

`huey_consumer myspinbot.jobs.worker.train_queue` (or `generate_queue`) serves a queue
with Huey's own consumer: the attribute is looked up on first use (PEP 562), which
builds this process's worker runtime from the environment. Importing the package
builds nothing.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runtime import WorkerRuntime

_QUEUE_ATTRIBUTES = {"train_queue": "train", "generate_queue": "generate"}
_lock = threading.Lock()
_from_env: WorkerRuntime | None = None  # what huey_consumer's import path built


def __getattr__(name: str) -> Any:
    kind = _QUEUE_ATTRIBUTES.get(name)
    if kind is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _runtime_from_env().queues[kind]


def _runtime_from_env() -> WorkerRuntime:
    global _from_env
    with _lock:
        if _from_env is None:
            from ...config import Settings
            from .runtime import WorkerRuntime

            settings = Settings.from_env()
            _from_env = WorkerRuntime(settings, settings.store_url)
        return _from_env
