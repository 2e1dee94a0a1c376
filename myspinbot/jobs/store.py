"""The web side of the job store: create, read, list and cancel, without blocking the loop."""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis

from . import keys, scripts
from .batching import ScriptBatcher
from .engine_reports import merge_reports
from .model import KINDS, STATES, iso, loads, now_ms, text
from .queues import queue_key

IDEMPOTENCY_TTL = 24 * 3600


class JobStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._scripts = {name: client.register_script(src) for name, src in scripts.SOURCES.items()}
        self._create = ScriptBatcher(client, scripts.CREATE)

    async def create(
        self,
        job: dict[str, Any],
        created_ms: int,
        message: bytes,
        *,
        cap: int,
        idempotency_key: str | None = None,
    ) -> tuple[str, str]:
        """Store a queued job and push its message in one step: ('ok'|'duplicate'|'full', doc)."""
        status, stored = await self._create(
            keys=[keys.job(job["id"])],
            args=[
                keys.PREFIX,
                job["id"],
                job["kind"],
                created_ms,
                queue_key(job["kind"]),
                message,
                cap,
                keys.idempotency(idempotency_key) if idempotency_key else "",
                IDEMPOTENCY_TTL,
                *scripts.fields(job),
            ],
        )
        return text(status), text(stored)

    async def find_idempotent(self, idempotency_key: str) -> dict[str, Any] | None:
        job_id = await self.client.get(keys.idempotency(idempotency_key))
        return await self.get(text(job_id)) if job_id else None

    async def get_raw(self, job_id: str) -> bytes | None:
        return await self.client.hget(keys.job(job_id), "doc")

    async def run_number(self, job_id: str) -> int:
        """The number of the job's current or last run: its artifacts' folder."""
        return int(await self.client.hget(keys.job(job_id), "attempt") or 0)

    async def get(self, job_id: str) -> dict[str, Any] | None:
        raw = await self.get_raw(job_id)
        return loads(raw) if raw else None

    async def newest_raw(
        self, limit: int, kind: str | None = None, state: str | None = None
    ) -> list[bytes]:
        """Job documents, newest first, as stored (undecoded)."""
        if state is None:
            ids = await self.client.zrevrange(keys.index(kind), 0, limit - 1)
        else:
            ids = await self._newest_in_state(limit, state, (kind,) if kind else KINDS)
        if not ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(keys.job(text(job_id)), "doc")
        return [doc for doc in await pipe.execute() if doc]

    async def _newest_in_state(self, limit: int, state: str, kinds: tuple[str, ...]) -> list[bytes]:
        pipe = self.client.pipeline(transaction=False)
        for kind in kinds:
            pipe.zrevrange(keys.index(kind, state), 0, limit - 1, withscores=True)
        merged = [item for batch in await pipe.execute() for item in batch]
        merged.sort(key=lambda item: (item[1], item[0]), reverse=True)
        return [job_id for job_id, _ in merged[:limit]]

    async def cancel(self, job_id: str) -> tuple[str, bytes | None]:
        """Cancel a queued job at once, or flag an active one: (state it was in, doc after)."""
        state, doc = await self._scripts["cancel"](
            keys=[keys.job(job_id)],
            args=[keys.PREFIX, job_id, orjson.dumps(iso(now_ms()))],
        )
        return text(state), doc or None

    async def counts(self) -> dict[str, dict[str, int]]:
        """Jobs per kind and state."""
        pipe = self.client.pipeline(transaction=False)
        for kind in KINDS:
            for state in STATES:
                pipe.zcard(keys.index(kind, state))
        values = iter(await pipe.execute())
        return {kind: {state: next(values) for state in STATES} for kind in KINDS}

    async def health(self) -> dict[str, Any]:
        """Redis reachability is the caller's to judge: this raises when Redis is down."""
        pipe = self.client.pipeline(transaction=False)
        cutoff = now_ms() - keys.WORKER_TTL_MS
        for kind in KINDS:
            pipe.zcount(keys.workers(kind), cutoff, "+inf")
        for kind in KINDS:
            pipe.zcard(keys.index(kind, "queued"))
        pipe.hgetall(keys.ENGINES)
        *values, engines = await pipe.execute()
        found = {
            "workers": dict(zip(KINDS, values[:2], strict=True)),
            "queues": dict(zip(KINDS, values[2:], strict=True)),
        }
        merged = merge_reports(engines)
        if merged:  # only deployments with engines say anything about them
            found["engines"] = merged
        return found

    async def job_metrics(self) -> dict[str, Any]:
        """What /metrics exports from Redis: counts, finished totals, duration histograms."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(keys.FINISHED_COUNTS)
        for kind in KINDS:
            pipe.hgetall(keys.durations(kind))
        finished, *durations = await pipe.execute()
        return {
            "counts": await self.counts(),
            "health": await self.health(),
            "finished": {text(k): int(v) for k, v in finished.items()},
            "durations": {
                kind: {text(k): float(v) for k, v in hist.items()}
                for kind, hist in zip(KINDS, durations, strict=True)
            },
        }


__all__ = ["JobStore"]
