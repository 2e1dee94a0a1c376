"""Every Redis key MySpinBot uses, in one place."""

from __future__ import annotations

PREFIX = "myspinbot:"
EVENTS_CHANNEL = PREFIX + "events"
LEASES = PREFIX + "leases"  # zset: job id -> lease expiry (ms)
RETRIES = PREFIX + "retry"  # zset: job id -> when to dispatch again (ms)
SWEEP_SUSPECTS = PREFIX + "sweep"  # hash: job id -> when it was first seen queued without a message
MAINTENANCE_LOCK = PREFIX + "lock:maintenance"
RETENTION_DUE = PREFIX + "lock:retention"  # exists while the last retention pass is recent
FINISHED_COUNTS = PREFIX + "metrics:finished"  # hash: "<kind>:<state>" -> count
ENGINES = PREFIX + "engines"  # hash: worker -> JSON report of its engines (engine_probe.py)


def job(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def index(kind: str | None = None, state: str | None = None) -> str:
    """Sorted sets of job ids scored by creation time: all, per kind, per kind and state."""
    if kind is None:
        return PREFIX + "idx:all"
    if state is None:
        return f"{PREFIX}idx:{kind}"
    return f"{PREFIX}idx:{kind}:{state}"


def idempotency(key: str) -> str:
    return f"{PREFIX}idem:{key}"


def durations(kind: str) -> str:
    """Hash of the duration histogram: b<i> per bucket, sum, count."""
    return f"{PREFIX}metrics:duration:{kind}"


WORKER_TTL_MS = 10_000  # a worker whose last heartbeat is older is not counted as live


def workers(queue: str) -> str:
    """Sorted set of live worker processes: member -> last heartbeat (ms)."""
    return f"{PREFIX}workers:{queue}"


def huey_queue(name: str) -> str:
    """The list Huey's RedisStorage pops from (huey/storage.py: 'huey.redis.' + name)."""
    return f"huey.redis.{name}"
