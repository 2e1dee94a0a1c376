"""The one place that knows how Huey lays out a queue message for one of our jobs.

The web side pushes these bytes itself, in the same Lua script that stores the job,
instead of calling Huey's synchronous enqueue (which would block the event loop).
"""

from __future__ import annotations

from functools import cache

from huey.registry import Message
from huey.serializer import Serializer

# How Huey's registry names a task: "<module of the task function>.<name given>" (tasks.py).
# Messages queued by earlier releases carry these names too, so they stay as they are.
TASK_MODULE = "myspinbot.jobs.tasks"
TASK_NAMES = {"train": f"{TASK_MODULE}.train", "generate": f"{TASK_MODULE}.generate"}

# Huey's own serializer with a queue's defaults (pickle, no compression): see queues.job_queue.
_SERIALIZER = Serializer()

# A job id is a 26-character ULID; a placeholder of the same length keeps pickle's framing.
_PLACEHOLDER = "J" * 26


def _serialize(kind: str, job_id: str) -> bytes:
    # The fields a Task created with defaults carries (huey/api.py Task, registry.create_message).
    message = Message(
        id=job_id,
        name=TASK_NAMES[kind],
        eta=None,
        retries=0,
        retry_delay=0,
        priority=None,
        args=(job_id,),
        kwargs={},
        on_complete=None,
        on_error=None,
        expires=None,
        expires_resolved=None,
        timeout=None,
        chord_config=None,
        retry_backoff=0,
    )
    return _SERIALIZER.serialize(message)


@cache
def _template(kind: str) -> bytes:
    return _serialize(kind, _PLACEHOLDER)


def job_message(kind: str, job_id: str) -> bytes:
    """The serialized Huey message that runs `job_id`, ready to LPUSH onto its queue's list.

    The job id is both the task's argument and its Huey id. Messages are stamped from one
    serialized template: pickling a task and drawing a random uuid4 for each request was a
    tenth of POST /api/generate's time.
    """
    if len(job_id) != len(_PLACEHOLDER) or not job_id.isascii():
        return _serialize(kind, job_id)
    return _template(kind).replace(_PLACEHOLDER.encode(), job_id.encode())


@cache
def template_parts(kind: str) -> tuple[bytes, bytes]:
    """The template before and after its job id, which the pop-and-claim script reads.

    The id is Huey's task id and the task's argument; pickle writes the one string once.
    """
    parts = _template(kind).split(_PLACEHOLDER.encode())
    if len(parts) != 2:
        raise RuntimeError(f"Huey's message layout changed: the id appears {len(parts) - 1}x")
    return parts[0], parts[1]


def message_job_id(kind: str, data: bytes) -> str | None:
    """The job id a queued message carries (None for messages that are not ours)."""
    message = _SERIALIZER.deserialize(data)
    args = getattr(message, "args", ())
    return args[0] if args and isinstance(args[0], str) else None
