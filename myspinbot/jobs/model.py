"""The job object of API.md: ids, timestamps and the record's shape."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

Kind = Literal["train", "generate"]
State = Literal["queued", "active", "completed", "failed", "cancelled"]

KINDS: tuple[Kind, ...] = ("train", "generate")
STATES: tuple[State, ...] = ("queued", "active", "completed", "failed", "cancelled")
FINISHED: frozenset[str] = frozenset({"completed", "failed", "cancelled"})

# The WebSocket event type that announces a job entering each state.
EVENT_FOR_STATE: dict[str, str] = {
    "queued": "queued",
    "active": "progress",
    "completed": "done",
    "failed": "error",
    "cancelled": "cancelled",
}

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_job_id(now_ms: int | None = None) -> str:
    """A ULID: 26 URL-safe characters that sort by creation time."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def is_job_id(value: str) -> bool:
    return len(value) == 26 and all(c in _CROCKFORD for c in value)


def now_ms() -> int:
    return int(time.time() * 1000)


def iso(ms: int) -> str:
    """Milliseconds since the epoch as API.md's timestamp: 2026-11-28T16:00:00.123Z."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_iso_ms(value: str) -> int:
    moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def new_job(
    job_id: str, kind: Kind, job_input: dict[str, Any], created_ms: int, request_id: str = ""
) -> dict[str, Any]:
    """A freshly queued job record."""
    job: dict[str, Any] = {
        "id": job_id,
        "kind": kind,
        "state": "queued",
        "progress": 0,
        "message": "queued",
        "created_at": iso(created_ms),
        "started_at": None,
        "finished_at": None,
        "attempt": 0,  # runs that failed or were lost, plus the current one
        "resumed": 0,  # times handed back on a worker's shutdown and taken up again
        "error": None,
        "input": job_input,
        "artifacts": [],
    }
    if request_id:
        job["request_id"] = request_id
    return job


def error_body(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def dumps(job: dict[str, Any]) -> str:
    return orjson.dumps(job).decode()


def text(value: Any) -> str:
    """A Redis reply (bytes) or any other value as a str."""
    return value.decode() if isinstance(value, bytes) else str(value)


def loads(raw: str | bytes) -> dict[str, Any]:
    return orjson.loads(raw)


# Upper bounds of the job duration histogram (seconds); one more bucket holds +Inf.
DURATION_BUCKETS: tuple[float, ...] = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


def duration_bucket(seconds: float) -> str:
    """The histogram field a duration is counted in: b0 … b13 (b13 is +Inf)."""
    for index, bound in enumerate(DURATION_BUCKETS):
        if seconds <= bound:
            return f"b{index}"
    return f"b{len(DURATION_BUCKETS)}"
