"""The worker's side of the job store: claim an attempt, then write only while it is current.

The attempt number is a fencing token. Every write of a running attempt checks, in
the same Lua script that makes it, that the job is still `active` with that attempt;
a worker that was paused past its lease and requeued finds its writes refused.

A job costs a worker one round trip in the common case: the script that ends a job
also pops and claims the worker's next one (FINISH_NEXT), and a worker that finds
its queue non-empty pops and claims in one script too (POP_CLAIM).

Redis may vanish for a while (a restart, a failover). Writes are retried with
backoff for up to `patience` seconds, so a running job rides out a short outage.
A retried write may have been applied once already (the reply was lost, not the
command); each claim therefore stamps a random owner token on the job, by which an
ambiguous outcome is recognised as ours, and a retried pop returns the job its lost try
claimed rather than leaving it to wait out its lease.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from typing import Any

import orjson
import redis

from .. import keys, scripts
from ..messages import job_message, template_parts
from ..model import EVENT_FOR_STATE, FINISHED, duration_bucket, iso, loads, now_ms, text
from ..queues import queue_key
from .attempt import Attempt, LeaseLost, Stored, StoreUnreachable
from .lean_script import LeanScript

log = logging.getLogger("myspinbot.jobs")

RETRYABLE = (redis.ConnectionError, redis.TimeoutError)  # BusyLoadingError is a ConnectionError
OUTAGE_PATIENCE = 60.0  # seconds a write keeps retrying while Redis is unreachable
STOP_PATIENCE = 3.0  # ... once the worker is stopping: hand back fast or leave it to the reaper
MAX_BACKOFF = 2.0

Claimed = tuple[bytes, Attempt]  # a popped queue message and the attempt claimed for it


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
        self._scripts = {name: LeanScript(client, src) for name, src in scripts.SOURCES.items()}
        self._down = False

    def close(self) -> None:
        """Close the scripts' own connections (the client's pool is its owner's to close)."""
        for script in self._scripts.values():
            script.close()

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

    def _call(self, name: str, job_id: str, args: list[Any]) -> tuple[list[Any], bool]:
        script = self._scripts[name]
        return self._retrying(lambda: script(keys=[keys.job(job_id)], args=args))

    def _claiming(
        self, name: str, script_keys: list[str], head: list[Any], tail: list[Any]
    ) -> tuple[list[Any], bool]:
        """Like _call, for a script that pops and claims: `head`, a retry flag, `tail`.
        A retry follows a lost reply, so it asks the script for what the lost try claimed."""
        script = self._scripts[name]
        retry = ["0"]

        def call() -> Any:
            args = [*head, retry[0], *tail]
            retry[0] = "1"
            return script(keys=script_keys, args=args)

        return self._retrying(call)

    def _write(self, job_id: str, block: list[Any]) -> tuple[list[Any], bool]:
        return self._call("write", job_id, scripts.script_args(job_id, block))

    def read(self, job_id: str) -> Stored | None:
        """The job as stored, or None when it does not exist."""
        fields = ("doc", "state", "attempt", "owner", "handbacks")
        values, _ = self._retrying(lambda: self.client.hmget(keys.job(job_id), *fields))
        doc, state, attempt, owner, handbacks = values
        if doc is None:
            return None
        return Stored(
            loads(doc), text(state), int(attempt or 0), text(owner or b""), int(handbacks or 0)
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

    def _fenced_block(
        self, attempt: Attempt, new_state: str, changes: dict[str, Any], **kwargs: Any
    ) -> list[Any]:
        attempt.job.update(changes)
        return scripts.write_args(
            new_state=new_state,
            changes=changes,
            expect_state="active",
            expect_attempt=attempt.number,
            **kwargs,
        )

    def _fenced(self, attempt: Attempt, states: tuple[str, ...], status: str, failed: bool) -> str:
        """Judge a fenced write's status; raises LeaseLost unless the attempt was current."""
        if status in ("ok", "cancelled"):
            return status
        if failed and self._applied(attempt.job_id, attempt.owner, attempt.number, states):
            return "ok"
        attempt.lost = True
        raise LeaseLost(attempt.job_id)

    # -- taking a job ----------------------------------------------------------------------

    def _claim_args(self) -> tuple[str, list[Any]]:
        owner = uuid.uuid4().hex
        return owner, [self.lease_ms, owner, orjson.dumps(iso(now_ms()))]

    def claim(self, job_id: str) -> Attempt | None:
        """Move a queued job to active under a new attempt number; None if it is not queued."""
        owner, args = self._claim_args()
        reply, failed = self._call("claim", job_id, [keys.PREFIX, job_id, *args])
        status = text(reply[0])
        if status == "ok":
            return _attempt(reply, owner)
        if status == "stale" and failed:  # our lost first try may have claimed it
            found = self.read(job_id)
            if found and found.owner == owner and found.state == "active":
                return Attempt(found.job, found.attempt, owner, found.handbacks)
        return None

    def pop_claim(self, kind: str) -> Claimed | bytes | None:
        """Pop the queue's next message and claim its job in one round trip.

        Returns (message, attempt), or a message that is not one of ours (for Huey to
        handle as it is), or None when the queue is empty.
        """
        owner, args = self._claim_args()
        head = [keys.PREFIX, queue_key(kind), *template_parts(kind), *args]
        reply, _ = self._claiming("pop_claim", [], head, [])
        return _popped(reply, owner)

    def release(self, kind: str, job_id: str) -> None:
        """Push a message for a job that is still queued (one this worker will not run)."""
        args = [keys.PREFIX, job_id, queue_key(kind), job_message(kind, job_id)]
        # Unreachable: the sweep pushes a message for a queued job that has none.
        with contextlib.suppress(StoreUnreachable):
            self._retrying(lambda: self._scripts["dispatch"](keys=[keys.job(job_id)], args=args))

    # -- the attempt's life --------------------------------------------------------------

    def progress(self, attempt: Attempt, progress: int, message: str, **fields: Any) -> bool:
        """Record progress (and extend the lease); True when a cancel was requested.

        `fields` are further document fields to store with it (the job's `result`).
        """
        if attempt.lost:
            raise LeaseLost(attempt.job_id)
        changes = {"progress": max(0, min(100, int(progress))), "message": message, **fields}
        block = self._fenced_block(
            attempt, "active", changes, event="progress", lease_ms=self.lease_ms
        )
        reply, failed = self._write(attempt.job_id, block)
        self._fenced(attempt, ("active",), text(reply[0]), failed)
        attempt.cancel_requested = text(reply[1]) == "1"
        return attempt.cancel_requested

    def heartbeat(self, attempt: Attempt) -> bool:
        """Extend the lease of a running attempt (one try); False when it is no longer current."""
        status, flag = self._scripts["heartbeat"](
            keys=[keys.job(attempt.job_id)],
            args=[keys.PREFIX, attempt.job_id, str(attempt.number), self.lease_ms],
        )
        if text(status) != "ok":
            attempt.lost = True
            return False
        attempt.cancel_requested = text(flag) == "1"
        return True

    def job(self, job_id: str) -> dict[str, Any] | None:
        """A job's record as stored (one read, no retries)."""
        raw = self.client.hget(keys.job(job_id), "doc")
        return loads(raw) if raw else None

    def finish(
        self,
        attempt: Attempt,
        state: str,
        *,
        message: str,
        error: dict[str, str] | None = None,
        artifacts: list[dict[str, Any]] | None = None,
        next_from: str | None = None,
    ) -> Claimed | bytes | None:
        """End the attempt as completed, failed or cancelled.

        With `next_from` (a queue kind), the same round trip pops and claims the next job
        of that queue, which is returned as pop_claim returns it.
        """
        assert state in FINISHED
        attempt.ending = True
        elapsed = time.monotonic() - attempt.started
        changes: dict[str, Any] = {
            "message": message,
            "finished_at": iso(now_ms()),
            "error": error,
            "artifacts": artifacts if artifacts is not None else attempt.job["artifacts"],
        }
        if state == "completed":
            changes["progress"] = 100
        block = self._fenced_block(
            attempt,
            state,
            changes,
            event=EVENT_FOR_STATE[state],
            lease_ms=None,
            finished=state,
            duration_bucket=duration_bucket(elapsed),
            duration=elapsed,
            clear_cancel=True,
        )
        attempt.job["state"] = state
        owner, claim = self._claim_args()
        head = [queue_key(next_from), *template_parts(next_from)] if next_from else ["", "", ""]
        reply, failed = self._claiming(
            "finish_next",
            [keys.job(attempt.job_id)],
            [keys.PREFIX, attempt.job_id, *head, *claim],
            block,
        )
        self._fenced(attempt, (state,), text(reply[0]), failed)
        return _popped(reply[2], owner)

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
        Safe to call from another thread than the attempt's: it changes no shared state
        but the attempt's flags.
        """
        attempt.ending = True
        kind = attempt.job["kind"]
        block = scripts.write_args(
            new_state="queued",
            changes={"progress": 0, "message": message, "error": error},
            expect_state="active",
            expect_attempt=attempt.number,
            event=EVENT_FOR_STATE["queued"],
            lease_ms=None,
            retry_in_ms=int(delay * 1000) if delay > 0 else None,
            push=None if delay > 0 else (queue_key(kind), job_message(kind, attempt.job_id)),
            handback=handback,
            if_cancelled={"message": "cancelled", "finished_at": iso(now_ms())},
        )
        reply, failed = self._write(attempt.job_id, block)
        status = self._fenced(attempt, ("queued", "cancelled"), text(reply[0]), failed)
        attempt.lost = True  # whatever the attempt's thread does next is refused anyway
        return status


def _attempt(reply: list[Any], owner: str) -> Attempt:
    """An Attempt from a claim's {status, flag, doc, attempt, handbacks}."""
    return Attempt(
        job=loads(reply[2]), number=int(reply[3]), owner=owner, handbacks=int(reply[4] or 0)
    )


def _popped(reply: list[Any], owner: str) -> Claimed | bytes | None:
    """What pop_claim's script found: a claimed job, a foreign message, or nothing."""
    for skipped in reply[-1]:
        log.info("job %s is not queued any more; message skipped", text(skipped))
    kind = text(reply[0])
    if kind == "claimed":
        return reply[1], _attempt(reply[2:], owner)
    if kind == "foreign":
        return reply[1]
    return None


__all__ = ["Attempt", "Claimed", "LeaseLost", "Ledger", "StoreUnreachable"]
