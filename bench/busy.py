"""Does work stall the web? Latency of the API and of /ws while the workers are busy.

MySpinBot runs its workers as threads of the server process. This scenario measures,
on one started system, the p50/p99 of `GET /api/status/<id>` and the delivery delay of
`done` events on one /ws connection (receipt - the job's `finished_at`), first with
the workers idle, then while both queues are kept full of CPU-heavy mock work: clips
rendered anew for every job (unique prompts, no sleep between steps) and LoRA files
written by the mock trainer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime
from typing import Any

import orjson

from bench.httpload import build_request, percentile, run_load
from bench.procs import BenchError
from bench.systems import System
from bench.uploads import train_body
from bench.ws import Observer

BUSY_MOCK = (10, 0.0)  # ten progress writes, then the clip: no sleep anywhere
STATUS_CONNS = 4  # a dashboard's worth of pollers, not a load test
IDLE_JOBS = 20
BACKLOG = 40  # clips submitted every 2 s while the busy phase runs


class _Deliveries:
    """Delay of every `done` event seen on one /ws connection, after a start time."""

    def __init__(self) -> None:
        self.delays_ms: list[float] = []
        self.done: dict[str, asyncio.Event] = {}
        self.since = 0.0

    def __call__(self, payload: bytes, t: float) -> None:
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        if msg.get("type") != "done":
            return
        job = msg["job"]
        finished = _epoch(job.get("finished_at"))
        if finished is not None and finished >= self.since:
            self.delays_ms.append((t - finished) * 1000)
        self.done.setdefault(job["id"], asyncio.Event()).set()


def _epoch(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


async def _submit(port: int, path: str, body: bytes, content_type: str) -> str:
    got: list[str] = []

    def on_response(status: int, data: bytes) -> None:
        if status == 202:
            got.append(orjson.loads(data)["id"])

    request = build_request("POST", path, port, body, content_type=content_type)
    await run_load(port, request, 1, total=1, on_response=on_response, hard_timeout=30)
    if not got:
        raise BenchError(f"POST {path} did not answer 202 in the busy scenario")
    return got[0]


async def _generate(port: int, prompt: str) -> str:
    body = orjson.dumps({"prompt": prompt})
    return await _submit(port, "/api/generate", body, "application/json")


async def _train(port: int, n: int) -> str:
    body, content_type = train_body(f"busy {n}")
    return await _submit(port, "/api/train", body, content_type)


async def _status_latency(port: int, job_id: str, seconds: float) -> dict[str, Any]:
    request = build_request("GET", f"/api/status/{job_id}", port)
    res = await run_load(port, request, STATUS_CONNS, duration=seconds)
    return {
        "requests": res.requests,
        "p50_ms": round(percentile(res.latencies_ms, 50) or 0, 2),
        "p99_ms": round(percentile(res.latencies_ms, 99) or 0, 2),
    }


def _summary(delays: list[float]) -> dict[str, Any]:
    return {
        "events": len(delays),
        "p50_ms": round(percentile(delays, 50) or 0, 2) if delays else None,
        "p99_ms": round(percentile(delays, 99) or 0, 2) if delays else None,
    }


async def busy(system: System, seconds: float) -> dict[str, Any]:
    port = system.port
    seen = _Deliveries()
    async with Observer(port, seen):
        probe = await _generate(port, "the probe")
        await asyncio.wait_for(seen.done.setdefault(probe, asyncio.Event()).wait(), 30)
        # Idle: the status probe alone, then jobs one at a time for /ws delivery.
        idle_status = await _status_latency(port, probe, seconds)
        seen.since, seen.delays_ms = time.time(), []
        for n in range(IDLE_JOBS):
            job = await _generate(port, f"idle {n}")
            await asyncio.wait_for(seen.done.setdefault(job, asyncio.Event()).wait(), 30)
        idle_ws = _summary(seen.delays_ms)
        # Busy: both queues kept full while the same probe runs.
        stop = asyncio.Event()
        feeder = asyncio.create_task(_keep_busy(port, stop))
        try:
            await asyncio.sleep(1.0)  # the backlog is in place and the workers are at it
            seen.since, seen.delays_ms = time.time(), []
            busy_status = await _status_latency(port, probe, seconds)
            busy_ws = _summary(seen.delays_ms)
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder
    return {
        "status": {"idle": idle_status, "busy": busy_status},
        "ws": {"idle": idle_ws, "busy": busy_ws},
    }


async def _keep_busy(port: int, stop: asyncio.Event) -> None:
    """Every 2 s, BACKLOG more clips (one training job per four), every prompt new (no
    cached clip): the queues only grow, so the workers never run dry while it lasts."""
    n = 0
    while not stop.is_set():
        for _ in range(BACKLOG):
            await _generate(port, f"busy clip {n} {time.monotonic_ns()}")
            if n % 4 == 0:
                await _train(port, n)
            n += 1
            if stop.is_set():
                return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 2.0)
