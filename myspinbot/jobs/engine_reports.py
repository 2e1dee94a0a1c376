"""Reading the workers' engine reports: fresh ones merged per engine server, stale ones found.

Each worker writes what it sees of its engines under its own name in one hash
(worker/engine_probe.py); /health, the dashboard and /metrics read them through here.
"""

from __future__ import annotations

from typing import Any

import orjson

from .model import now_ms

FRESH_MS = 35_000  # an entry older than this is a worker that went away


def merge_reports(raw: dict[Any, Any], now: int | None = None) -> list[dict[str, Any]]:
    """Fresh reports of every worker, one entry per engine server (workers that see it)."""
    now = now or now_ms()
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for value in raw.values():
        try:
            report = orjson.loads(value)
        except orjson.JSONDecodeError:
            continue
        if now - int(report.get("at", 0)) > FRESH_MS:
            continue
        for engine, seen in (report.get("engines") or {}).items():
            key = (engine, seen.get("url", ""))
            entry = merged.setdefault(key, {"engine": engine, **seen, "workers": 0})
            entry["workers"] += 1
            if seen.get("up"):  # any worker that reaches it counts it up
                entry.update({k: v for k, v in seen.items() if k != "url"})
    return sorted(merged.values(), key=lambda e: (e["engine"], e.get("url", "")))


def stale_fields(raw: dict[Any, Any], now: int | None = None) -> list[Any]:
    """Reports of workers gone for long (to delete; readers skip them anyway)."""
    now = now or now_ms()
    old = []
    for field, value in raw.items():
        try:
            at = int(orjson.loads(value).get("at", 0))
        except (orjson.JSONDecodeError, AttributeError):
            at = 0
        if now - at > 10 * FRESH_MS:
            old.append(field)
    return old
