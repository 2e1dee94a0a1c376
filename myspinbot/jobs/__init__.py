"""Jobs: what the web side and the workers share (the job record, its keys, the store, the
queues' names and messages), with the worker's own side in `worker/`.

Importing this package loads no worker code and reads no environment.
`myspinbot.jobs.train_queue` and `generate_queue` are the former `huey_consumer` import
paths, kept for one release: they now load `myspinbot.jobs.worker`, whose attributes of
the same names are the current paths.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

_MOVED = ("train_queue", "generate_queue")


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"myspinbot.jobs.{name} is now myspinbot.jobs.worker.{name}",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(".worker", __name__), name)
