"""Run one attempt of a job: claim it, drive its pipeline, record how it ended."""

from __future__ import annotations

import logging
import random
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..logs import request_id
from . import handoff
from .ledger import Attempt, Claimed, LeaseLost, Ledger, StoreUnreachable
from .model import error_body
from .pipelines import Cancelled, Pipeline, PipelineError, TransientError

log = logging.getLogger("myspinbot.jobs")

CONTENT_TYPES = {
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".flac": "audio/flac",
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".json": "application/json",
    ".safetensors": "application/octet-stream",
}
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


def artifact_folder(artifacts_dir: Path, job_id: str, attempt: int) -> Path:
    """Each attempt writes its own folder, so a zombie attempt cannot touch the result."""
    return artifacts_dir / job_id / str(attempt)


def describe_artifacts(job_id: str, folder: Path, names: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "url": f"/api/jobs/{job_id}/artifacts/{name}",
            "size": (folder / name).stat().st_size,
            "content_type": CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream"),
        }
        for name in names
    ]


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

    def run(self, kind: str, job_id: str) -> None:
        attempt = handoff.take(job_id)  # claimed already, when its message came from a claim
        if self.stopping.is_set():
            # Popped by a thread that has not seen the stop yet: give it straight back
            # rather than start an attempt only to hand it back.
            if attempt is not None:
                self._hand_back(attempt)
            else:
                self.ledger.release(kind, job_id)
            return
        if attempt is None:
            try:
                attempt = self.ledger.claim(job_id)
            except StoreUnreachable:
                # The message is spent; the sweep pushes a new one for a job left queued.
                log.warning("job %s not claimed: Redis unreachable", job_id)
                return
        if attempt is None:
            log.info("job %s is not queued any more; message skipped", job_id)
            return
        traced = request_id.set(attempt.job.get("request_id") or "-")  # logs name the request
        log.info("job %s attempt %d started", job_id, attempt.number)
        self._track(attempt)
        folder = artifact_folder(self.artifacts_dir, job_id, attempt.number)
        try:
            self._drive(kind, attempt, folder)
        except LeaseLost:
            log.warning(
                "job %s attempt %d lost its lease; its writes were refused", job_id, attempt.number
            )
            # Another attempt owns the job now; this one's files must not linger.
            shutil.rmtree(folder, ignore_errors=True)
        except StoreUnreachable:
            log.warning(
                "job %s attempt %d abandoned: Redis unreachable; the reaper will requeue it",
                job_id,
                attempt.number,
            )
        finally:
            with self._lock:
                self.active.pop(job_id, None)
            request_id.reset(traced)

    def pop_claim(self, kind: str) -> bytes | None:
        """The storage's claimer: the next message of `kind`'s queue, its job claimed."""
        if self.stopping.is_set():
            return None
        self._keep(self.ledger.pop_claim(kind))
        return handoff.next_message()

    def _keep(self, popped: Claimed | bytes | None) -> None:
        """Keep a claimed job for this thread's next task (heartbeats renew its lease)."""
        if popped is None:
            return
        if isinstance(popped, bytes):  # not one of ours: Huey runs it as it is
            handoff.put(popped, None)
            return
        message, attempt = popped
        self._track(attempt)
        handoff.put(message, attempt)

    def _finish(self, kind: str, attempt: Attempt, state: str, **kwargs: Any) -> None:
        """End the attempt; the same round trip claims this thread's next job unless stopping."""
        next_from = None if self.stopping.is_set() else kind
        self._keep(self.ledger.finish(attempt, state, next_from=next_from, **kwargs))

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

    def _drive(self, kind: str, attempt: Attempt, folder: Path) -> None:
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
            self._finish(kind, attempt, "cancelled", message="cancelled")
        except (HandBack, KeyboardInterrupt):
            self._hand_back(attempt)
        except TransientError as exc:
            self._retry_or_fail(kind, attempt, exc)
        except PipelineError as exc:
            self._finish(
                kind, attempt, "failed", message="failed", error=error_body(exc.code, str(exc))
            )
        except Exception:
            log.exception("job %s: unexpected pipeline error", job_id)
            self._finish(
                kind,
                attempt,
                "failed",
                message="failed",
                error=error_body("internal_error", "the pipeline failed unexpectedly"),
            )
        else:
            artifacts = describe_artifacts(job_id, folder, names)
            self._finish(kind, attempt, "completed", message="done", artifacts=artifacts)
            self._drop_other_attempts(job_id, attempt.number)
            log.info("job %s completed", job_id)

    def _retry_or_fail(self, kind: str, attempt: Attempt, exc: TransientError) -> None:
        error = error_body(exc.code, str(exc))
        if attempt.charged >= self.max_attempts:
            error["message"] = f"gave up after {attempt.charged} attempts: {exc}"
            self._finish(kind, attempt, "failed", message="failed", error=error)
            return
        delay = retry_delay(self.retry_base, attempt.number)
        self.ledger.requeue(attempt, delay=delay, message=f"retrying in {delay:.0f}s", error=error)

    def _drop_other_attempts(self, job_id: str, keep: int) -> None:
        if keep == 1:
            return  # the first attempt won: no other attempt ever had a folder
        for folder in (self.artifacts_dir / job_id).iterdir():
            if folder.name != str(keep):
                shutil.rmtree(folder, ignore_errors=True)
