"""The pipeline protocol: what a real ComfyUI/Ollama pipeline implements to replace the mocks."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol


class Cancelled(Exception):
    """Raised by Reporter.report when the job was cancelled; let it propagate."""


class PipelineError(Exception):
    """A failure the pipeline understands. Permanent unless it is a TransientError.

    `code` becomes the job's error code; `str(error)` its human message, so it must
    not contain secrets or paths a user should not see.
    """

    code = "pipeline_failed"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code


class TransientError(PipelineError):
    """A failure worth retrying (a busy GPU, a model server restarting): retried with backoff."""

    code = "transient_failure"


class Reporter(Protocol):
    def report(self, progress: int, message: str, result: Mapping[str, Any] | None = None) -> None:
        """Record progress (0-100), a short message and, optionally, fields of the job's
        `result` (merged into it).

        The result is kept across attempts: what a step stores there (a written prompt,
        the engine's prompt id) the next attempt finds in `job["result"]`. Call it at
        least once per step: it is also where cancellation and shutdown are noticed (it
        raises Cancelled, or an exception that hands the job back).
        """
        ...

    def check(self) -> None:
        """Raise as `report` would (cancelled, stopping, superseded), without writing.

        Cheap (no I/O): call it while waiting on an engine.
        """
        ...

    def job(self, job_id: str) -> dict[str, Any] | None:
        """Another job's record, read-only: the training job a generate job names."""
        ...


class Pipeline(Protocol):
    kind: str

    def run(
        self, job: dict[str, Any], inputs: Path, outputs: Path, reporter: Reporter
    ) -> list[str]:
        """Do the work of `job`.

        Args:
            job: the job object (its "input" says what was asked).
            inputs: the job's upload folder (may not exist for jobs without uploads).
            outputs: an empty folder to write artifacts into.
            reporter: progress, cancellation and shutdown.

        Returns:
            The names of the files written to `outputs`, in display order.
        """
        ...
