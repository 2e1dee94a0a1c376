"""The worker's side of the job store: claim an attempt, then write only while it is current.

The attempt number is a fencing token. Every write of a running attempt checks, in
the same Lua script that makes it, that the job is still `active` with that attempt;
a worker that was paused past its lease and requeued finds its writes refused.

Redis may vanish for a while (a restart, a failover). Writes are retried with
backoff for up to `patience` seconds, so a running job rides out a short outage.
A retried write may have been applied once already (the reply was lost, not the
command); each claim therefore stamps a random owner token on the job, by which an
ambiguous outcome is recognised as ours.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from typing import Any

import redis

from . import keys, scripts
from .attempt import Attempt, LeaseLost, Stored, StoreUnreachable, cancelled
from .messages import job_message
from .model import EVENT_FOR_STATE, FINISHED, dumps, duration_bucket, iso, loads, now_ms
from .queues import queue_key

log = logging.getLogger("myspinbot.jobs")

RETRYABLE = (redis.ConnectionError, redis.TimeoutError)  # BusyLoadingError is a ConnectionError
OUTAGE_PATIENCE = 60.0  # seconds a write keeps retrying while Redis is unreachable
STOP_PATIENCE = 3.0  # ... once the worker is stopping: hand back fast or leave it to the reaper
MAX_BACKOFF = 2.0


class Ledger:
    """Synchronous, fenced writes for worker processes."""

    def __init__(
        self,
        client: redis.Redis,
        lease_seconds: float,
        stopping: threading.Event | None = None,
        patience: float = OUTAGE_PATIENCE,
    ) -> None:
        self.client = client
        self.lease_ms = int(lease_seconds * 1000)
        self.stopping = stopping or threading.Event()
        self.patience = patience
        self._scripts = {name: client.register_script(src) for name, src in scripts.SOURCES.items()}
        self._down = False

    # -- plumbing ------------------------------------------------------------------------

    def _retrying(self, call: Any) -> tuple[Any, bool]:
        """Run `call` until Redis answers; returns (result, whether an attempt failed)."""
        start, delay, failed = time.monotonic(), 0.05, False
        while True:
            try:
                result = call()
            except RETRYABLE as exc:
                failed = True
                waited = time.monotonic() - start
                limit = (
                    min(self.patience, STOP_PATIENCE) if self.stopping.is_set() else self.patience
                )
                if waited >= limit:
                    raise StoreUnreachable(str(exc)) from exc
                if not self._down:
                    log.warning("Redis unreachable (%s); retrying for up to %.0fs", exc, limit)
                    self._down = True
                time.sleep(min(delay, max(0.0, limit - waited)))
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            if self._down:
                log.info("Redis reachable again")
                self._down = False
            return result, failed

    def _run(self, name: str, job_id: str, args: list[Any]) -> tuple[list[str], bool]:
        reply, failed = self._retrying(
            lambda: self._scripts[name](keys=[keys.job(job_id)], args=args)
        )
        return [_text(part) for part in reply], failed

    def read(self, job_id: str) -> Stored | None:
        """The job as stored, or None when it does not exist."""
        fields = ("doc", "version", "state", "attempt", "owner", "handbacks")
        values, _ = self._retrying(lambda: self.client.hmget(keys.job(job_id), *fields))
        doc, version, state, attempt, owner, handbacks = values
        if doc is None:
            return None
        return Stored(
            loads(doc),
            _text(version),
            _text(state),
            int(attempt or 0),
            _text(owner or b""),
            int(handbacks or 0),
        )

    def _applied(self, job_id: str, owner: str, number: int, states: tuple[str, ...]) -> bool:
        """After a lost reply: did our own earlier try already make this write?"""
        found = self.read(job_id)
        return (
            found is not None
            and found.owner == owner
            and found.attempt == number
            and found.state in states
        )

    def _fenced(
        self, attempt: Attempt, job: dict[str, Any], states: tuple[str, ...], **kwargs: Any
    ) -> tuple[str, bool]:
        """A write of a running attempt; raises LeaseLost unless the attempt is still current."""
        args = scripts.write_args(
            attempt.job_id,
            dumps(job),
            new_attempt=attempt.number,
            expect_state="active",
            expect_attempt=attempt.number,
            **kwargs,
        )
        (status, flag), failed = self._run("write", attempt.job_id, args)
        if status in ("ok", "cancelled"):
            return status, flag == "1"
        if failed and self._applied(attempt.job_id, attempt.owner, attempt.number, states):
            return "ok", False
        attempt.lost = True
        raise LeaseLost(attempt.job_id)

    # -- the attempt's life --------------------------------------------------------------

    def claim(self, job_id: str) -> Attempt | None:
        """Move a queued job to active under a new attempt number; None if it is not queued."""
        owner = uuid.uuid4().hex
        for _ in range(5):
            found = self.read(job_id)
            if found is None or found.state != "queued":
                return None
            number = found.attempt + 1
            # Requeues honour a pending cancel, so a flag here is a leftover: cancel, do not run.
            skip = cancelled({**found.job, "attempt": number})
            job = found.job
            job.update(
                state="active",
                attempt=number,
                progress=0,
                message="starting",
                started_at=iso(now_ms()),
                finished_at=None,
            )
            args = scripts.write_args(
                job_id,
                dumps(job),
                new_state="active",
                new_attempt=number,
                event=EVENT_FOR_STATE["active"],
                expect_state="queued",
                expect_version=found.version,
                lease_ms=self.lease_ms,
                clear_cancel=True,
                owner=owner,
                cancelled_doc=dumps(skip),
            )
            (status, _), failed = self._run("write", job_id, args)
            mine = status == "ok" or (
                status == "stale" and failed and self._applied(job_id, owner, number, ("active",))
            )
            if mine:
                return Attempt(job=job, number=number, owner=owner, handbacks=found.handbacks)
            if status in ("cancelled", "missing"):
                return None
        return None

    def release(self, kind: str, job_id: str) -> None:
        """Push a message for a job that is still queued (one this worker will not run)."""
        args = [keys.PREFIX, job_id, queue_key(kind), job_message(kind, job_id)]
        # Unreachable: the sweep pushes a message for a queued job that has none.
        with contextlib.suppress(StoreUnreachable):
            self._retrying(lambda: self._scripts["dispatch"](keys=[keys.job(job_id)], args=args))

    def progress(self, attempt: Attempt, progress: int, message: str) -> bool:
        """Record progress (and extend the lease); True when a cancel was requested."""
        if attempt.lost:
            raise LeaseLost(attempt.job_id)
        attempt.job.update(progress=max(0, min(100, int(progress))), message=message)
        _, cancel = self._fenced(
            attempt,
            attempt.job,
            ("active",),
            new_state="active",
            event="progress",
            lease_ms=self.lease_ms,
        )
        return cancel

    def heartbeat(self, attempt: Attempt) -> bool:
        """Extend the lease of a running attempt (one try); False when it is no longer current."""
        status, _ = self._scripts["heartbeat"](
            keys=[keys.job(attempt.job_id)],
            args=[keys.PREFIX, attempt.job_id, str(attempt.number), self.lease_ms],
        )
        if _text(status) != "ok":
            attempt.lost = True
            return False
        return True

    def finish(
        self,
        attempt: Attempt,
        state: str,
        *,
        message: str,
        error: dict[str, str] | None = None,
        artifacts: list[dict[str, Any]] | None = None,
    ) -> None:
        """End the attempt as completed, failed or cancelled."""
        assert state in FINISHED
        attempt.ending = True
        elapsed = time.monotonic() - attempt.started
        attempt.job.update(
            state=state,
            message=message,
            finished_at=iso(now_ms()),
            error=error,
            artifacts=artifacts if artifacts is not None else attempt.job["artifacts"],
        )
        if state == "completed":
            attempt.job["progress"] = 100
        self._fenced(
            attempt,
            attempt.job,
            (state,),
            new_state=state,
            event=EVENT_FOR_STATE[state],
            lease_ms=None,
            finished=state,
            duration_bucket=duration_bucket(elapsed),
            duration=elapsed,
            clear_cancel=True,
        )

    def requeue(
        self,
        attempt: Attempt,
        *,
        delay: float,
        message: str,
        error: dict[str, str] | None,
        handback: bool = False,
    ) -> str:
        """Give the job back for another attempt, now or after `delay` seconds.

        A hand-back (the worker is stopping) does not count against the maximum of
        attempts. Returns 'cancelled' when a pending cancel was honoured instead.
        Safe to call from another thread than the attempt's: it writes a copy.
        """
        attempt.ending = True
        job = {**attempt.job, "state": "queued", "progress": 0, "message": message, "error": error}
        kind = job["kind"]
        status, _ = self._fenced(
            attempt,
            job,
            ("queued", "cancelled"),
            new_state="queued",
            event=EVENT_FOR_STATE["queued"],
            lease_ms=None,
            retry_in_ms=int(delay * 1000) if delay > 0 else None,
            push=None if delay > 0 else (queue_key(kind), job_message(kind, attempt.job_id)),
            handback=handback,
            cancelled_doc=dumps(cancelled(job)),
        )
        attempt.lost = True  # whatever the attempt's thread does next is refused anyway
        return status


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


__all__ = ["Attempt", "LeaseLost", "Ledger", "StoreUnreachable"]
