"""A running attempt of a job, and the ways it can stop being the job's current one."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


class LeaseLost(BaseException):
    """This attempt is no longer current: another attempt, a cancel or the reaper took the job.

    A BaseException, so a pipeline's `except Exception` cannot swallow it and go on working.
    """


class StoreUnreachable(BaseException):
    """Redis stayed unreachable past our patience; the reaper will recover the job later."""


@dataclass
class Attempt:
    """A claimed, running attempt of a job and the record it owns while active."""

    job: dict[str, Any]
    number: int
    owner: str
    handbacks: int = 0
    started: float = field(default_factory=time.monotonic)
    lost: bool = False  # set when a heartbeat or a hand-back found the attempt superseded
    ending: bool = False  # its final write is under way: heartbeats have nothing left to renew
    cancel_requested: bool = False  # seen by a write or a heartbeat: the job is to stop

    @property
    def job_id(self) -> str:
        return self.job["id"]

    @property
    def charged(self) -> int:
        """Attempts that count against the maximum: hand-backs on shutdown are free."""
        return self.number - self.handbacks


@dataclass
class Stored:
    """A job hash as the ledger reads it."""

    job: dict[str, Any]
    state: str
    attempt: int
    owner: str
    handbacks: int
