"""Job use cases: submit, cancel, get, list. Handlers translate; this decides."""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..errors import Conflict, InvalidField, NotFound, ServiceUnavailable
from .messages import job_message
from .model import FINISHED, Kind, is_job_id, loads, new_job, new_job_id, now_ms
from .store import JobStore


class JobService:
    def __init__(self, store: JobStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    async def submit(
        self,
        kind: Kind,
        job_input: dict[str, Any],
        *,
        job_id: str | None = None,
        idempotency_key: str | None = None,
        request_id: str = "",
    ) -> tuple[dict[str, Any], bool]:
        """Queue a job; returns (job, created). A repeated idempotency key returns the first job."""
        created_ms = now_ms()
        job_id = job_id or new_job_id(created_ms)
        job = new_job(job_id, kind, job_input, created_ms, request_id)
        status, stored = await self.store.create(
            job,
            created_ms,
            job_message(kind, job_id),
            cap=self.settings.queue_cap,
            idempotency_key=f"{kind}:{idempotency_key}" if idempotency_key else None,
        )
        if status == "full":
            raise ServiceUnavailable(
                f"the {kind} queue is full ({self.settings.queue_cap} jobs waiting); "
                "try again later",
                code="queue_full",
                retry_after=10,
            )
        if status == "duplicate":
            return loads(stored), False
        return job, True

    async def find_idempotent(self, kind: Kind, key: str) -> dict[str, Any] | None:
        return await self.store.find_idempotent(f"{kind}:{key}")

    async def get(self, job_id: str) -> dict[str, Any]:
        job = await self.store.get(job_id) if is_job_id(job_id) else None
        if job is None:
            raise NotFound(f"no job with id {job_id!r}")
        return job

    async def require_lora(self, lora: str) -> None:
        job = await self.store.get(lora) if is_job_id(lora) else None
        if job is None or job["kind"] != "train":
            raise InvalidField(f"lora {lora!r} is not a training job", field="lora")
        if job["state"] != "completed":
            raise InvalidField(
                f"lora {lora!r} has not completed training (it is {job['state']})", field="lora"
            )

    async def cancel(self, job_id: str) -> dict[str, Any]:
        """Queued: cancelled at once. Active: flagged, cancelled at its next step."""
        state, doc = await self.store.cancel(job_id) if is_job_id(job_id) else ("", None)
        if not state or doc is None:
            raise NotFound(f"no job with id {job_id!r}")
        job = loads(doc)
        if state in FINISHED:
            raise Conflict(f"job {job_id} already {state}", code="already_finished")
        if state == "active":
            job["message"] = "cancelling"
        return job

    async def list(self, limit: int, kind: str | None, state: str | None) -> list[bytes]:
        return await self.store.newest_raw(limit, kind, state)
