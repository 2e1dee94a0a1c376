"""Run one attempt of a job: claim it (unless its message came claimed), drive its pipeline,
record how it ended."""

from __future__ import annotations

import logging
import random
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...logs import request_id
from ..artifacts import artifact_folder, describe_artifacts
from ..model import error_body
from ..pipelines import Cancelled, Pipeline, PipelineError, TransientError
from .ledger import Attempt, Claimed, LeaseLost, Ledger, StoreUnreachable

log = logging.getLogger("myspinbot.jobs")

Popped = Claimed | bytes | None  # what a pop or a finish took off the queue (Ledger.pop_claim)

MAX_RETRY_DELAY = 300.0
# A job a stopping worker gives back: not a failure, not an attempt; its next run says
# "resumed after a restart" (jobs/scripts.py) and its `resumed` count goes up.
HANDED_BACK = "handed back at shutdown; waiting to resume"


class HandBack(BaseException):
    """The worker is stopping: give the job back to the queue instead of finishing it."""


class AttemptReporter:
    """What a pipeline reports through: progress, and the place cancel and shutdown are seen."""

    def __init__(self, ledger: Ledger, attempt: Attempt, stopping: threading.Event) -> None:
        self.ledger = ledger
        self.attempt = attempt
        self.stopping = stopping

    def report(self, progress: int, message: str, result: Mapping[str, Any] | None = None) -> None:
        self.check()
        fields = {}
        if result:
            fields["result"] = {**(self.attempt.job.get("result") or {}), **result}
        if self.ledger.progress(self.attempt, progress, message, **fields):
            raise Cancelled

    def check(self) -> None:
        if self.attempt.lost:
            raise LeaseLost(self.attempt.job_id)
        if self.stopping.is_set():
            raise HandBack
        if self.attempt.cancel_requested:
            raise Cancelled

    def job(self, job_id: str) -> dict[str, Any] | None:
        return self.ledger.job(job_id)


def retry_delay(base: float, attempt: int) -> float:
    """Exponential backoff with full jitter, capped."""
    return min(MAX_RETRY_DELAY, base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


class Runner:
    """Everything a worker process needs to run attempts."""

    def __init__(
        self,
        ledger: Ledger,
        pipelines: dict[str, Pipeline],
        *,
        uploads_dir: Path,
        artifacts_dir: Path,
        max_attempts: int,
        retry_base: float,
    ) -> None:
        self.ledger = ledger
        self.pipelines = pipelines
        self.uploads_dir = uploads_dir
        self.artifacts_dir = artifacts_dir
        self.max_attempts = max_attempts
        self.retry_base = retry_base
        self.stopping = ledger.stopping  # one flag: the ledger also shortens its retries
        self.active: dict[str, Attempt] = {}
        self._lock = threading.Lock()

    def running(self) -> list[Attempt]:
        with self._lock:
            return list(self.active.values())

    def run(self, kind: str, job_id: str, attempt: Attempt | None = None) -> Popped:
        """Run `job_id`, under `attempt` when its message came with the claim made already.

        Returns what the job's last write popped and claimed for this thread (a
        queue's task runs that next), or None.
        """
        if self.stopping.is_set():
            # Popped by a thread that has not seen the stop yet: give it straight back
            # rather than start an attempt only to hand it back.
            if attempt is not None:
                self._hand_back(attempt)
            else:
                self.ledger.release(kind, job_id)
            return None
        if attempt is None:
            attempt = self._claim(job_id)
            if attempt is None:
                return None
        return self._run_attempt(kind, attempt)

    def _claim(self, job_id: str) -> Attempt | None:
        try:
            attempt = self.ledger.claim(job_id)
        except StoreUnreachable:
            # The message is spent; the sweep pushes a new one for a job left queued.
            log.warning("job %s not claimed: Redis unreachable", job_id)
            return None
        if attempt is None:
            log.info("job %s is not queued any more; message skipped", job_id)
        return attempt

    def _run_attempt(self, kind: str, attempt: Attempt) -> Popped:
        job_id = attempt.job_id
        traced = request_id.set(attempt.job.get("request_id") or "-")  # logs name the request
        log.info("job %s run %d started", job_id, attempt.number)
        self._track(attempt)
        folder = artifact_folder(self.artifacts_dir, job_id, attempt.number)
        try:
            return self._drive(kind, attempt, folder)
        except LeaseLost:
            log.warning(
                "job %s run %d lost its lease; its writes were refused", job_id, attempt.number
            )
            # Another attempt owns the job now; this one's files must not linger.
            shutil.rmtree(folder, ignore_errors=True)
        except StoreUnreachable:
            log.warning(
                "job %s run %d abandoned: Redis unreachable; the reaper will requeue it",
                job_id,
                attempt.number,
            )
        finally:
            with self._lock:
                self.active.pop(job_id, None)
            request_id.reset(traced)
        return None

    def pop_claim(self, kind: str) -> Popped:
        """The queues' claimer: the next message of `kind`'s queue with its job claimed."""
        if self.stopping.is_set():
            return None
        return self._kept(self.ledger.pop_claim(kind))

    def _kept(self, popped: Popped) -> Popped:
        """A job claimed for this thread counts as running from now: heartbeats renew its
        lease and a stop hands it back, until its task runs it."""
        if isinstance(popped, tuple):
            self._track(popped[1])
        return popped

    def _finish(self, kind: str, attempt: Attempt, state: str, **kwargs: Any) -> Popped:
        """End the attempt; the same round trip claims this thread's next job unless stopping."""
        next_from = None if self.stopping.is_set() else kind
        return self._kept(self.ledger.finish(attempt, state, next_from=next_from, **kwargs))

    def _track(self, attempt: Attempt) -> None:
        with self._lock:
            self.active[attempt.job_id] = attempt

    def _hand_back(self, attempt: Attempt) -> None:
        try:
            self.ledger.requeue(attempt, delay=0, message=HANDED_BACK, error=None, handback=True)
            log.info("job %s handed back to its queue", attempt.job_id)
        except (LeaseLost, StoreUnreachable):
            pass  # finished or superseded meanwhile, or Redis is away: the reaper covers it
        finally:
            with self._lock:
                self.active.pop(attempt.job_id, None)

    def hand_back_all(self) -> None:
        """Requeue every running attempt from this thread (the consumer is going down now).

        The attempts' own threads may still be running; fencing refuses their writes.
        """
        for attempt in self.running():
            self._hand_back(attempt)

    def _drive(self, kind: str, attempt: Attempt, folder: Path) -> Popped:
        job_id = attempt.job_id
        try:
            folder.mkdir(parents=True)
        except FileExistsError:  # a run with this number before Redis lost it: start clean
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        reporter = AttemptReporter(self.ledger, attempt, self.stopping)
        try:
            names = self.pipelines[kind].run(
                attempt.job, self.uploads_dir / job_id, folder, reporter
            )
        except Cancelled:
            return self._finish(kind, attempt, "cancelled", message="cancelled")
        except (HandBack, KeyboardInterrupt):
            self._hand_back(attempt)
            return None
        except TransientError as exc:
            return self._retry_or_fail(kind, attempt, exc)
        except PipelineError as exc:
            return self._finish(
                kind, attempt, "failed", message="failed", error=error_body(exc.code, str(exc))
            )
        except Exception:
            log.exception("job %s: unexpected pipeline error", job_id)
            return self._finish(
                kind,
                attempt,
                "failed",
                message="failed",
                error=error_body("internal_error", "the pipeline failed unexpectedly"),
            )
        artifacts = describe_artifacts(job_id, folder, names)
        popped = self._finish(kind, attempt, "completed", message="done", artifacts=artifacts)
        self._drop_other_attempts(job_id, attempt.number)
        log.info("job %s completed", job_id)
        return popped

    def _retry_or_fail(self, kind: str, attempt: Attempt, exc: TransientError) -> Popped:
        error = error_body(exc.code, str(exc))
        if attempt.charged >= self.max_attempts:
            error["message"] = f"gave up after {attempt.charged} attempts: {exc}"
            return self._finish(kind, attempt, "failed", message="failed", error=error)
        delay = retry_delay(self.retry_base, attempt.number)
        self.ledger.requeue(attempt, delay=delay, message=f"retrying in {delay:.0f}s", error=error)
        return None

    def _drop_other_attempts(self, job_id: str, keep: int) -> None:
        if keep == 1:
            return  # the first attempt won: no other attempt ever had a folder
        for folder in (self.artifacts_dir / job_id).iterdir():
            if folder.name != str(keep):
                shutil.rmtree(folder, ignore_errors=True)
