"""Background upkeep under one Redis lock: reap lost attempts, dispatch retries, sweep, trim.

Any number of processes run it; the lock makes one of them do the work each round.
This is MySpinBot's one retry authority: Huey itself never retries.
"""

from __future__ import annotations

import logging
import shutil
import uuid

import redis

from ..config import Settings
from . import keys, scripts
from .model import EVENT_FOR_STATE, KINDS, dumps, error_body, iso, loads, now_ms
from .queues import QUEUE_NAMES, job_message, message_job_id, queue_key

log = logging.getLogger("myspinbot.maintenance")

SWEEP_GRACE_MS = 5_000  # a worker pops a message and claims its job within this time
RETENTION_EVERY = 30  # rounds between retention passes
BATCH = 500

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Maintenance:
    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.token = uuid.uuid4().hex
        self.rounds = 0
        self._write = client.register_script(scripts.WRITE)
        self._dispatch = client.register_script(scripts.DISPATCH)
        self._purge = client.register_script(scripts.PURGE)
        self._release = client.register_script(_RELEASE)

    def run_once(self) -> bool:
        """One round if this process gets the lock; False when another holds it."""
        ttl = max(5_000, int(self.settings.maintenance_interval * 5000))
        if not self.client.set(keys.MAINTENANCE_LOCK, self.token, nx=True, px=ttl):
            return False
        try:
            self.reap()
            self.dispatch_due()
            self.sweep()
            if self.rounds % RETENTION_EVERY == 0:
                self.trim()
            self.rounds += 1
        finally:
            self._release(keys=[keys.MAINTENANCE_LOCK], args=[self.token])
        return True

    def reap(self) -> int:
        """Requeue (or fail, past the last attempt) active jobs whose lease ran out."""
        now = now_ms()
        reaped = 0
        for raw in self.client.zrangebyscore(keys.LEASES, 0, now, start=0, num=BATCH):
            job_id = raw.decode()
            doc, state, attempt = self.client.hmget(keys.job(job_id), "doc", "state", "attempt")
            if doc is None or state != b"active":
                self.client.zrem(keys.LEASES, job_id)
                continue
            job = loads(doc)
            number = int(attempt)
            if number >= self.settings.max_attempts:
                job.update(
                    state="failed",
                    message="failed",
                    finished_at=iso(now),
                    error=error_body(
                        "worker_lost", f"the worker stopped responding {number} times; giving up"
                    ),
                )
                extra = {"finished": "failed", "lease_until": None}
            else:
                job.update(
                    state="queued",
                    progress=0,
                    message="requeued: worker lost",
                    error=error_body("worker_lost", "the worker stopped responding"),
                )
                extra = {"lease_until": None, "retry_due": now}
            status, _ = self._write(
                keys=[keys.job(job_id)],
                args=scripts.write_args(
                    job_id,
                    dumps(job),
                    new_state=job["state"],
                    new_attempt=number,
                    event=EVENT_FOR_STATE[job["state"]],
                    expect_state="active",
                    expect_attempt=number,
                    lease_expired_before=now,
                    **extra,
                ),
            )
            if status == b"ok":
                reaped += 1
                log.warning("job %s attempt %d lost its worker: %s", job_id, number, job["state"])
        return reaped

    def dispatch_due(self) -> int:
        """Push a queue message for each queued job whose retry time has come."""
        sent = 0
        for raw in self.client.zrangebyscore(keys.RETRIES, 0, now_ms(), start=0, num=BATCH):
            job_id = raw.decode()
            kind = self.client.hget(keys.job(job_id), "kind")
            if kind is None:
                self.client.zrem(keys.RETRIES, job_id)
                continue
            kind_name = kind.decode()
            sent += self._dispatch(
                keys=[keys.job(job_id)],
                args=[keys.PREFIX, job_id, queue_key(kind_name), job_message(kind_name, job_id)],
            )
        return sent

    def sweep(self) -> int:
        """Re-push queued jobs that have no message (a worker died between pop and claim)."""
        pushed = 0
        for kind in KINDS:
            queued = self.client.zcard(keys.index(kind, "queued"))
            waiting = self.client.llen(queue_key(kind)) + self.client.zcard(keys.RETRIES)
            if queued <= waiting:
                continue  # every queued job can still have its message: nothing lost
            carried = {
                message_job_id(kind, data) for data in self.client.lrange(queue_key(kind), 0, -1)
            }
            retrying = {r.decode() for r in self.client.zrange(keys.RETRIES, 0, -1)}
            cutoff = now_ms() - SWEEP_GRACE_MS
            for raw in self.client.zrangebyscore(keys.index(kind, "queued"), 0, cutoff):
                job_id = raw.decode()
                if job_id in carried or job_id in retrying:
                    continue
                pushed += self._dispatch(
                    keys=[keys.job(job_id)],
                    args=[keys.PREFIX, job_id, queue_key(kind), job_message(kind, job_id)],
                )
                log.warning("job %s was queued without a message; pushed again", job_id)
        return pushed

    def trim(self) -> int:
        """Delete finished jobs (and their files) past the age or count limits."""
        doomed: set[str] = set()
        for kind in KINDS:
            for state in ("completed", "failed", "cancelled"):
                index = keys.index(kind, state)
                if self.settings.retention_days > 0:
                    cutoff = now_ms() - int(self.settings.retention_days * 86_400_000)
                    doomed.update(r.decode() for r in self.client.zrangebyscore(index, 0, cutoff))
        if self.settings.retention_max_jobs > 0:
            finished = []
            for kind in KINDS:
                for state in ("completed", "failed", "cancelled"):
                    finished += self.client.zrange(keys.index(kind, state), 0, -1, withscores=True)
            finished.sort(key=lambda item: item[1], reverse=True)
            doomed.update(r.decode() for r, _ in finished[self.settings.retention_max_jobs :])
        removed = 0
        for job_id in doomed:
            if self._purge(keys=[keys.job(job_id)], args=[keys.PREFIX, job_id]):
                shutil.rmtree(self.settings.artifacts_dir / job_id, ignore_errors=True)
                shutil.rmtree(self.settings.uploads_dir / job_id, ignore_errors=True)
                removed += 1
        if removed:
            log.info("retention removed %d finished jobs", removed)
        return removed


__all__ = ["Maintenance", "QUEUE_NAMES"]
