"""Jobs a worker thread has claimed but not started yet, waiting for their Huey task.

Claiming is folded into the scripts that pop a message (POP_CLAIM) or that end the
thread's previous job (FINISH_NEXT). The claimed attempt waits here, per thread; the
queue's storage hands its message to Huey's worker loop next, and the task that Huey
runs for it finds the attempt here instead of claiming the job again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_local = threading.local()

# The worker runtime installs how a thread pops and claims the next job of a queue
# (kind -> message, or None when the queue is empty); without it Huey pops as usual.
claimer: Callable[[str], bytes | None] | None = None


def put(message: bytes, attempt: Any | None) -> None:
    """Hand `message` (and the attempt claimed for it, if any) to this thread's next dequeue."""
    _local.waiting = (message, attempt)


def next_message() -> bytes | None:
    """The message this thread's next task runs, if a claim already took it."""
    waiting = getattr(_local, "waiting", None)
    if waiting is None:
        return None
    _local.waiting = None
    _local.claimed = waiting[1]
    return waiting[0]


def take(job_id: str) -> Any | None:
    """The attempt claimed for `job_id` on this thread, if its message came from here."""
    attempt = getattr(_local, "claimed", None)
    _local.claimed = None
    return attempt if attempt is not None and attempt.job_id == job_id else None


def install(pop_and_claim: Callable[[str], bytes | None] | None) -> None:
    global claimer
    claimer = pop_and_claim
