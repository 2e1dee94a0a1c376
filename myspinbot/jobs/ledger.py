"""The worker's side of the job store: claim an attempt, then write only while it is current.

The attempt number is a fencing token. Every write of a running attempt checks, in
the same Lua script that makes it, that the job is still `active` with that attempt;
a worker that was paused past its lease and requeued finds its writes refused.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from . import keys, scripts
from .model import EVENT_FOR_STATE, FINISHED, dumps, duration_bucket, iso, loads, now_ms

log = logging.getLogger("myspinbot.jobs")


class LeaseLost(Exception):
    """This attempt is no longer current: another attempt or a cancel took the job."""


@dataclass
class Attempt:
    """A claimed, running attempt of a job and the record it owns while active."""

    job: dict[str, Any]
    number: int
    started: float = field(default_factory=time.monotonic)

    @property
    def job_id(self) -> str:
        return self.job["id"]


class Ledger:
    """Synchronous, fenced writes for worker processes."""

    def __init__(self, client: redis.Redis, lease_seconds: float) -> None:
        self.client = client
        self.lease_ms = int(lease_seconds * 1000)
        self._scripts = {name: client.register_script(src) for name, src in scripts.SOURCES.items()}

    def read(self, job_id: str) -> tuple[dict[str, Any], str] | None:
        """The job and its version, or None when it does not exist."""
        doc, version = self.client.hmget(keys.job(job_id), "doc", "version")
        if doc is None:
            return None
        return loads(doc), version.decode() if isinstance(version, bytes) else str(version)

    def _write(self, job: dict[str, Any], **kwargs: Any) -> tuple[str, bool]:
        args = scripts.write_args(job["id"], dumps(job), **kwargs)
        status, cancel = self._scripts["write"](keys=[keys.job(job["id"])], args=args)
        return _text(status), bool(cancel)

    def claim(self, job_id: str) -> Attempt | None:
        """Move a queued job to active under a new attempt number; None if it is not queued."""
        for _ in range(5):
            found = self.read(job_id)
            if found is None or found[0]["state"] != "queued":
                return None
            job, version = found
            number = int(job["attempt"]) + 1
            stamp = now_ms()
            job.update(
                state="active",
                attempt=number,
                progress=0,
                message="starting",
                started_at=iso(stamp),
                finished_at=None,
            )
            status, _ = self._write(
                job,
                new_state="active",
                new_attempt=number,
                event=EVENT_FOR_STATE["active"],
                expect_state="queued",
                expect_version=version,
                lease_until=stamp + self.lease_ms,
                clear_cancel=True,
            )
            if status == "ok":
                return Attempt(job=job, number=number)
        return None

    def progress(self, attempt: Attempt, progress: int, message: str) -> bool:
        """Record progress (and extend the lease); True when a cancel was requested."""
        attempt.job.update(progress=max(0, min(100, int(progress))), message=message)
        status, cancel = self._write(
            attempt.job,
            new_state="active",
            new_attempt=attempt.number,
            event="progress",
            expect_state="active",
            expect_attempt=attempt.number,
            lease_until=now_ms() + self.lease_ms,
        )
        if status != "ok":
            raise LeaseLost(attempt.job_id)
        return cancel

    def heartbeat(self, job_id: str, number: int) -> bool:
        """Extend the lease of a running attempt; False when it is no longer current."""
        status, _ = self._scripts["heartbeat"](
            keys=[keys.job(job_id)],
            args=[keys.PREFIX, job_id, str(number), now_ms() + self.lease_ms],
        )
        return _text(status) == "ok"

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
        status, _ = self._write(
            attempt.job,
            new_state=state,
            new_attempt=attempt.number,
            event=EVENT_FOR_STATE[state],
            expect_state="active",
            expect_attempt=attempt.number,
            lease_until=None,
            finished=state,
            duration_bucket=duration_bucket(elapsed),
            duration=elapsed,
            clear_cancel=True,
        )
        if status != "ok":
            raise LeaseLost(attempt.job_id)

    def requeue(self, attempt: Attempt, *, delay: float, message: str, error: dict | None) -> None:
        """Hand the job back to its queue (after `delay` seconds) for another attempt."""
        attempt.job.update(state="queued", progress=0, message=message, error=error)
        status, _ = self._write(
            attempt.job,
            new_state="queued",
            new_attempt=attempt.number,
            event=EVENT_FOR_STATE["queued"],
            expect_state="active",
            expect_attempt=attempt.number,
            lease_until=None,
            retry_due=now_ms() + int(delay * 1000),
        )
        if status != "ok":
            raise LeaseLost(attempt.job_id)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
