"""The two Huey queues: their names, their Redis keys, and the queue class a worker binds.

Nothing here is built at import: the web side only needs `queue_key` (it pushes its
messages itself, see messages.py); a worker builds its own pair of queues with
`job_queue`, handing in the claimer that pops and claims its jobs.
"""

from __future__ import annotations

from typing import Any, Protocol

from huey import RedisHuey
from huey.api import Task
from huey.storage import RedisStorage
from redis import ConnectionPool

from . import keys

QUEUE_NAMES = {"train": "myspinbot_train", "generate": "myspinbot_generate"}
KIND_OF = {name: kind for kind, name in QUEUE_NAMES.items()}
SOCKET_TIMEOUT = 10.0  # longer than Huey's 1 s BRPOP, shorter than forever

# A popped queue message and the attempt claimed for its job (the worker's Attempt).
Claimed = tuple[bytes, Any]


class Claimer(Protocol):
    def pop_claim(self, kind: str) -> Claimed | bytes | None:
        """The queue's next message with its job claimed; a bare message that is not one of
        ours; or None (queue empty, or the worker is stopping)."""
        ...


def _pool(url: str) -> ConnectionPool:
    return ConnectionPool.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=5.0,
        health_check_interval=30,
    )


class JobStorage(RedisStorage):
    """Huey's Redis storage, handing out our jobs with their claim already made.

    `claimer` is handed in when the queue is bound (Huey passes its storage_kwargs on).
    `take` returns the next message with the attempt claimed for it: popped and claimed
    in one script; else Huey's own blocking pop (the runner then claims the job).
    """

    def __init__(self, name: str, claimer: Claimer | None = None, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.claimer = claimer

    def take(self) -> Claimed | None:
        popped = self.claimer.pop_claim(KIND_OF[self.name]) if self.claimer else None
        if isinstance(popped, tuple):
            return popped
        message = popped if popped is not None else self.dequeue()
        return (message, None) if message is not None else None


class JobQueue(RedisHuey):
    """A Huey queue whose jobs arrive claimed, and whose cancellation lives in the job record.

    A dequeued task carries the attempt claimed for its job as its `attempt` argument, so
    the task hands both to the runner in one call. A task returns what the end of its job
    popped (FINISH_NEXT claims the thread's next job in the same round trip); `execute`
    runs that next, on the same thread, until a job ends with nothing claimed.

    Huey checks and clears a revocation flag around every task it runs: two of the six
    Redis round trips of a job. Nothing here revokes through Huey (a cancel is a flag on
    the job, seen by the claim and by progress reports), so both are skipped, and Huey's
    own revoke API refuses rather than store a flag no consumer would read.
    """

    storage_class = JobStorage

    def dequeue(self) -> Task | None:
        taken = self.storage.take()
        return self._task(taken) if taken is not None else None

    def execute(self, task: Task, timestamp: Any = None) -> None:
        popped = super().execute(task, timestamp)
        while popped is not None:
            popped = super().execute(self._task(popped))

    def _task(self, popped: Claimed | bytes) -> Task:
        message, attempt = popped if isinstance(popped, tuple) else (popped, None)
        task = self.deserialize_task(message)
        if attempt is not None:
            task.kwargs["attempt"] = attempt
        return task

    def revoke(self, task: object, *args: object, **kwargs: object) -> None:
        raise NotImplementedError("cancel the job (POST /api/jobs/<id>/cancel) instead")

    revoke_all = revoke

    def is_revoked(self, task: object, timestamp: object = None, peek: bool = True) -> bool:
        return False

    def delete(self, key: str) -> bool:
        if key.startswith("r:"):  # a task's revoke_id: never written, see above
            return False
        return super().delete(key)


def job_queue(kind: str, redis_url: str, claimer: Claimer | None = None) -> JobQueue:
    """`kind`'s queue on the Redis at `redis_url` (building it does no I/O: pools connect
    lazily); with a claimer, its dequeues pop and claim in one round trip."""
    return JobQueue(
        QUEUE_NAMES[kind],
        results=False,  # the job record is the result
        utc=True,
        connection_pool=_pool(redis_url),
        claimer=claimer,
    )


def queue_key(kind: str) -> str:
    return keys.huey_queue(QUEUE_NAMES[kind])
