"""Thin Huey tasks: they carry a job id, and the attempt claimed for it, to one runner."""

from __future__ import annotations

from collections.abc import Callable

from huey.api import TaskWrapper

from ..messages import TASK_MODULE
from ..queues import JobQueue
from .attempt import Attempt
from .runner import Popped, Runner


def register_task(
    queue: JobQueue, kind: str, runner: Runner, serving: Callable[[str], None]
) -> TaskWrapper:
    """Register `kind`'s task on `queue`, run by `runner`; `serving` hears each consumer start."""

    def run(job_id: str, attempt: Attempt | None = None) -> Popped:
        return runner.run(kind, job_id, attempt)

    # Huey names a task "<module of its function>.<name>", and that name is in every queued
    # message (messages.py stamps it): it stays the one that earlier releases queued.
    run.__module__ = TASK_MODULE
    queue.on_startup(name=f"serve_{kind}")(lambda: serving(kind))
    return queue.task(name=kind)(run)
