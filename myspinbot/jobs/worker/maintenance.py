"""Background upkeep under one Redis lock: reap lost attempts, dispatch retries, sweep, trim.

Any number of processes run it; the lock makes one of them do the work each round.
This is MySpinBot's one retry authority: Huey itself never retries.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import redis

from ...config import Settings
from ...every import Every
from .. import keys, scripts
from ..engine_reports import stale_fields
from ..messages import job_message, message_job_id
from ..model import (
    EVENT_FOR_STATE,
    KINDS,
    duration_bucket,
    error_body,
    iso,
    loads,
    now_ms,
    parse_iso_ms,
    text,
)
from ..queues import queue_key
from . import retention

log = logging.getLogger("myspinbot.maintenance")

SWEEP_GRACE_MS = 3_000  # a worker claims the job of a message it popped within milliseconds
RETENTION_ROUNDS = 30  # retention runs at most once per this many maintenance intervals
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
            self.forget_gone_engine_reports()
            period = max(1_000, int(self.settings.maintenance_interval * RETENTION_ROUNDS * 1000))
            if self.client.set(keys.RETENTION_DUE, "1", nx=True, px=period):
                self.trim()
        finally:
            self._release(keys=[keys.MAINTENANCE_LOCK], args=[self.token])
        return True

    def server_ms(self) -> int:
        """The Redis server's clock: leases and retry times are kept in it."""
        seconds, micros = self.client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def _redis_just_started(self) -> bool:
        # After a Redis restart every lease looks expired, yet the workers are alive and
        # retrying their writes: give them one lease period to renew before reaping.
        try:
            uptime = int(self.client.info("server").get("uptime_in_seconds", 1 << 30))
        except redis.ResponseError:  # INFO disabled by a managed Redis: no grace, then
            return False
        return uptime < self.settings.lease_seconds

    def reap(self) -> int:
        """Requeue (or fail, past the last attempt) active jobs whose lease ran out."""
        now = self.server_ms()
        expired = self.client.zrangebyscore(keys.LEASES, 0, now, start=0, num=BATCH)
        if not expired or self._redis_just_started():
            return 0
        return sum(self._reap_one(text(raw)) for raw in expired)

    def _reap_one(self, job_id: str) -> int:
        fields = ("doc", "state", "attempt", "handbacks")
        doc, state, attempt, handbacks = self.client.hmget(keys.job(job_id), *fields)
        if doc is None or state != b"active":
            self.client.zrem(keys.LEASES, job_id)
            return 0
        job = loads(doc)
        number = int(attempt)
        charged = number - int(handbacks or 0)
        kind = job["kind"]
        extra: dict[str, Any]
        if charged >= self.settings.max_attempts:
            message = (
                f"the worker running this job stopped responding on {charged} attempts "
                "(crashed, killed or cut off); giving up"
            )
            new_state = "failed"
            changes = {
                "message": "failed",
                "finished_at": iso(now_ms()),
                "error": error_body("worker_lost", message),
            }
            started = parse_iso_ms(job["started_at"]) if job.get("started_at") else now_ms()
            seconds = max(0.0, (now_ms() - started) / 1000)
            extra = {
                "finished": "failed",
                "duration_bucket": duration_bucket(seconds),
                "duration": seconds,
            }
        else:
            new_state = "queued"
            changes = {
                "progress": 0,
                "message": "requeued: worker lost",
                "error": error_body(
                    "worker_lost", "the worker running this job stopped responding"
                ),
            }
            extra = {"push": (queue_key(kind), job_message(kind, job_id))}
        block = scripts.write_args(
            new_state=new_state,
            changes=changes,
            event=EVENT_FOR_STATE[new_state],
            expect_state="active",
            expect_attempt=number,
            lease_expired=True,
            lease_ms=None,
            if_cancelled={"message": "cancelled", "finished_at": iso(now_ms())},
            **extra,
        )
        status = self._write(keys=[keys.job(job_id)], args=scripts.script_args(job_id, block))[0]
        if status not in (b"ok", b"cancelled"):
            return 0  # renewed, finished, purged or reaped by someone else since we looked
        outcome = "cancelled" if status == b"cancelled" else new_state
        log.warning("job %s run %d lost its worker: %s", job_id, number, outcome)
        return 1

    def dispatch_due(self) -> int:
        """Push a queue message for each queued job whose retry time has come."""
        sent = 0
        due = self.client.zrangebyscore(keys.RETRIES, 0, self.server_ms(), start=0, num=BATCH)
        for raw in due:
            job_id = text(raw)
            kind = self.client.hget(keys.job(job_id), "kind")
            if kind is None:
                self.client.zrem(keys.RETRIES, job_id)
                continue
            sent += self._push(text(kind), job_id)
        return sent

    def _push(self, kind: str, job_id: str) -> int:
        return int(
            self._dispatch(
                keys=[keys.job(job_id)],
                args=[keys.PREFIX, job_id, queue_key(kind), job_message(kind, job_id)],
            )
        )

    def sweep(self) -> int:
        """Re-push queued jobs that have had no message for a while (lost between pop and claim).

        A job popped by a worker is queued without a message for the few milliseconds
        until its claim, so a job is only re-pushed once it has been seen without one in
        rounds at least SWEEP_GRACE_MS apart. Suspects are kept in Redis, so whichever
        process holds the lock next carries on. A duplicate push is harmless anyway:
        a claim only succeeds from `queued`, so the second message is skipped.
        """
        missing = self._jobs_without_message()
        now = self.server_ms()
        seen = {text(k): int(v) for k, v in self.client.hgetall(keys.SWEEP_SUSPECTS).items()}
        gone = [job_id for job_id in seen if job_id not in missing]
        if gone:
            self.client.hdel(keys.SWEEP_SUSPECTS, *gone)
        pushed = 0
        for job_id, kind in missing.items():
            first = seen.get(job_id)
            if first is None:
                self.client.hset(keys.SWEEP_SUSPECTS, job_id, now)
            elif now - first >= SWEEP_GRACE_MS:
                self.client.hdel(keys.SWEEP_SUSPECTS, job_id)
                if self._push(kind, job_id):
                    pushed += 1
                    log.warning("job %s was queued without a message; pushed again", job_id)
        return pushed

    def _jobs_without_message(self) -> dict[str, str]:
        missing: dict[str, str] = {}
        for kind in KINDS:
            queued = self.client.zcard(keys.index(kind, "queued"))
            waiting = self.client.llen(queue_key(kind)) + self.client.zcard(keys.RETRIES)
            if queued <= waiting:
                continue  # every queued job can still have its message: nothing lost
            carried = {_message_id(kind, d) for d in self.client.lrange(queue_key(kind), 0, -1)}
            retrying = {text(r) for r in self.client.zrange(keys.RETRIES, 0, -1)}
            for raw in self.client.zrange(keys.index(kind, "queued"), 0, -1):
                job_id = text(raw)
                if job_id not in carried and job_id not in retrying:
                    missing[job_id] = kind
        return missing

    def forget_gone_engine_reports(self) -> int:
        """Engine reports of workers long gone (each process writes under its own name)."""
        gone = stale_fields(self.client.hgetall(keys.ENGINES))
        return int(self.client.hdel(keys.ENGINES, *gone)) if gone else 0

    def trim(self) -> int:
        """Delete finished jobs (and their files) past the age or count limits."""
        return retention.trim(self.client, self.settings, self._purge)


class MaintenanceLoop:
    """A daemon thread running Maintenance every interval; backs off while Redis is away."""

    def __init__(self, maintenance: Maintenance, interval: float) -> None:
        self.maintenance = maintenance
        self.interval = interval
        self._delay, self._down = interval, False
        self._every = Every(interval, self._round, name="maintenance")

    def start(self) -> None:
        self._every.start()

    def stop(self) -> None:
        self._every.stop()

    def _round(self) -> float:
        try:
            self.maintenance.run_once()
        except redis.RedisError as exc:
            if not self._down:
                log.warning("maintenance paused: Redis unreachable (%s)", exc)
            self._down = True
            self._delay = min(max(self._delay * 2, 0.1), max(self.interval, 5.0))
            return self._delay
        except Exception:
            log.exception("maintenance round failed")
        if self._down:
            log.info("maintenance resumed: Redis reachable again")
        self._delay, self._down = self.interval, False
        return self._delay


def _message_id(kind: str, data: bytes) -> str | None:
    try:
        return message_job_id(kind, data)
    except Exception:  # a message that is not ours (or not for this version): not a carrier
        return None
