"""Retention: delete finished jobs (records and files) past the age or count limits.

Only finished jobs are candidates, and the PURGE script re-checks the state at the
moment of deletion, so a job that is queued or active is never deleted, whatever
the indexes said a moment before.
"""

from __future__ import annotations

import logging
import shutil
from typing import Any

import redis

from ...config import Settings
from .. import keys
from ..model import KINDS, now_ms, text

log = logging.getLogger("myspinbot.maintenance")

FINISHED_STATES = ("completed", "failed", "cancelled")


def doomed_jobs(client: redis.Redis, settings: Settings) -> set[str]:
    """Ids of finished jobs that are older than the age limit or beyond the count limit."""
    doomed: set[str] = set()
    indexes = [keys.index(kind, state) for kind in KINDS for state in FINISHED_STATES]
    if settings.retention_days > 0:
        cutoff = now_ms() - int(settings.retention_days * 86_400_000)
        for index in indexes:
            doomed.update(text(r) for r in client.zrangebyscore(index, 0, cutoff))
    if settings.retention_max_jobs > 0:
        total = sum(client.zcard(index) for index in indexes)
        if total > settings.retention_max_jobs:
            finished: list[tuple[Any, float]] = []
            for index in indexes:
                finished += client.zrange(index, 0, -1, withscores=True)
            finished.sort(key=lambda item: item[1], reverse=True)  # newest first
            doomed.update(text(r) for r, _ in finished[settings.retention_max_jobs :])
    return doomed


def trim(client: redis.Redis, settings: Settings, purge: Any) -> int:
    """Delete what `doomed_jobs` names; `purge` is the registered PURGE script."""
    removed = 0
    for job_id in doomed_jobs(client, settings):
        if purge(keys=[keys.job(job_id)], args=[keys.PREFIX, job_id]):
            shutil.rmtree(settings.artifacts_dir / job_id, ignore_errors=True)
            shutil.rmtree(settings.uploads_dir / job_id, ignore_errors=True)
            removed += 1
    if removed:
        log.info("retention removed %d finished jobs", removed)
    return removed
