"""The two Huey queues.

They are module-level because `huey_consumer myspinbot.jobs.train_queue` needs an
import path; building them does no I/O (redis-py pools connect lazily).
"""

from __future__ import annotations

from huey import RedisHuey
from huey.storage import RedisStorage
from redis import ConnectionPool

from ..config import Settings
from . import keys
from .worker import handoff

QUEUE_NAMES = {"train": "myspinbot_train", "generate": "myspinbot_generate"}
KIND_OF = {name: kind for kind, name in QUEUE_NAMES.items()}
SOCKET_TIMEOUT = 10.0  # longer than Huey's 1 s BRPOP, shorter than forever


def _pool(url: str) -> ConnectionPool:
    return ConnectionPool.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=5.0,
        health_check_interval=30,
    )


class JobStorage(RedisStorage):
    """Huey's Redis storage, handing out our jobs with their claim already made.

    A dequeue returns, in this order: the message of a job this thread's last finish
    claimed; else the next message popped and claimed in one script; else Huey's own
    blocking pop (the runner then claims the job).
    """

    def dequeue(self) -> bytes | None:
        message = handoff.next_message()
        if message is None and handoff.claimer is not None:
            message = handoff.claimer(KIND_OF[self.name])
        return message if message is not None else super().dequeue()


class JobQueue(RedisHuey):
    """A Huey queue whose cancellation lives in the job record, not in Huey's revocation.

    Its storage is JobStorage; the job record, not Huey, decides whether a job runs.

    Huey checks and clears a revocation flag around every task it runs: two of the six
    Redis round trips of a job. Nothing here revokes through Huey (a cancel is a flag on
    the job, seen by the claim and by progress reports), so both are skipped, and Huey's
    own revoke API refuses rather than store a flag no consumer would read.
    """

    storage_class = JobStorage

    def revoke(self, task: object, *args: object, **kwargs: object) -> None:
        raise NotImplementedError("cancel the job (POST /api/jobs/<id>/cancel) instead")

    revoke_all = revoke

    def is_revoked(self, task: object, timestamp: object = None, peek: bool = True) -> bool:
        return False

    def delete(self, key: str) -> bool:
        if key.startswith("r:"):  # a task's revoke_id: never written, see above
            return False
        return super().delete(key)


def _queue(kind: str, url: str) -> JobQueue:
    return JobQueue(
        QUEUE_NAMES[kind],
        results=False,  # the job record is the result
        utc=True,
        connection_pool=_pool(url),
    )


_url = Settings.from_env().store_url
train_queue = _queue("train", _url)
generate_queue = _queue("generate", _url)
QUEUES: dict[str, JobQueue] = {"train": train_queue, "generate": generate_queue}


def bind_queues(redis_url: str) -> None:
    """Point both queues at another Redis (the worker entry points call this)."""
    for queue in QUEUES.values():
        queue.storage_kwargs["connection_pool"] = _pool(redis_url)
        queue.storage = queue.create_storage()


def queue_key(kind: str) -> str:
    return keys.huey_queue(QUEUE_NAMES[kind])
