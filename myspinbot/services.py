"""The server's moving parts: Redis (embedded or not), in-process workers, per-worker clients."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from sanic import Sanic

from .api.health import health_report
from .config import QUEUES, Settings
from .embedded_redis import EmbeddedRedis
from .events import SNAPSHOT_SIZE, Hub
from .jobs.maintenance import Maintenance, MaintenanceLoop
from .jobs.queues import default_redis_url
from .jobs.service import JobService
from .jobs.store import JobStore
from .metrics.process import process_metrics
from .supervisor import Supervisor, defer_shutdown_signals

log = logging.getLogger("myspinbot.server")

# A request waits at most ~2 x REDIS_TIMEOUT for an unresponsive Redis (one retry), then
# answers 503: well inside any sensible client timeout.
REDIS_TIMEOUT = 2.5
WORKER_EXIT_WAIT = 12.0  # managed workers get this long to hand back jobs before Redis stops


def setup_services(app: Sanic) -> None:
    app.main_process_start(start_embedded_redis)
    app.main_process_ready(start_inprocess_workers)
    app.main_process_stop(stop_main_process)
    app.before_server_start(open_connections)
    app.after_server_stop(close_connections)


def start_embedded_redis(app: Sanic) -> None:
    settings: Settings = app.ctx.settings
    app.ctx.embedded = None
    if settings.redis_url:
        log.info("using Redis at %s", _redacted(settings.redis_url))
        return
    embedded = EmbeddedRedis(settings.data_dir)
    embedded.start()
    embedded.supervise()
    app.ctx.embedded = embedded
    log.info("embedded Redis serving on %s", embedded.url)


def start_inprocess_workers(app: Sanic) -> None:
    from .jobs.worker import redis_client as worker_redis_client
    from .jobs.worker import run_managed_consumer

    settings: Settings = app.ctx.settings
    env = settings.to_env()
    env["REDIS_URL"] = default_redis_url(settings)
    for queue in QUEUES:
        for index in range(settings.inprocess_workers):
            app.manager.manage(
                f"Worker-{queue}-{index}",
                run_managed_consumer,
                {
                    "queue": queue,
                    "settings_env": env,
                    "threads": settings.worker_threads,
                    "parent_pid": os.getpid(),
                },
                restartable=True,
            )
    url = f"http://{settings.host}:{settings.port}"
    app.ctx.supervisor = Supervisor(
        app.manager, on_ready=lambda: log.info("MySpinBot is ready on %s", url)
    )
    app.ctx.supervisor.start()
    defer_shutdown_signals(app.manager)
    # Upkeep (reaper, retries, sweep, retention) also runs here, so it goes on when no
    # worker is running; the lock in Redis keeps one round at a time deployment-wide.
    client = worker_redis_client(default_redis_url(settings))
    app.ctx.maintenance = MaintenanceLoop(
        Maintenance(client, settings), settings.maintenance_interval
    )
    app.ctx.maintenance.start()


def stop_main_process(app: Sanic) -> None:
    """Stop Redis last: only after every managed process has exited (bounded)."""
    supervisor = getattr(app.ctx, "supervisor", None)
    if supervisor:
        supervisor.stop()
    maintenance = getattr(app.ctx, "maintenance", None)
    if maintenance:
        maintenance.stop()
    manager = getattr(app, "manager", None)
    deadline = time.monotonic() + WORKER_EXIT_WAIT
    if manager is not None:
        for process in list(manager.processes):
            while process.is_alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if process.is_alive():
                log.warning("%s did not stop in time; killing it", process.name)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
    embedded = getattr(app.ctx, "embedded", None)
    if embedded is not None:
        embedded.stop()


def redis_client(url: str, retries: int = 1) -> aioredis.Redis:
    """Bounded waits everywhere (redis-py's defaults wait forever, or retry ten times)."""
    backoff = ExponentialWithJitterBackoff(base=0.05, cap=0.5) if retries else NoBackoff()
    return aioredis.Redis.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT,
        socket_connect_timeout=REDIS_TIMEOUT,
        health_check_interval=30,
        max_connections=256,
        retry=Retry(backoff, retries),
    )


async def open_connections(app: Sanic) -> None:
    settings: Settings = app.ctx.settings
    app.ctx.redis = redis_client(default_redis_url(settings))
    # The subscriber must see every disconnect (no silent reconnect inside redis-py), or it
    # could not tell its clients that events were missed.
    app.ctx.pubsub_redis = redis_client(default_redis_url(settings), retries=0)
    app.ctx.store = JobStore(app.ctx.redis)
    app.ctx.jobs = JobService(app.ctx.store, settings)

    async def health() -> dict:
        return (await health_report(app))[1]

    app.ctx.hub = Hub(
        app.ctx.pubsub_redis,
        lambda: app.ctx.store.newest_raw(SNAPSHOT_SIZE),
        health,
        on_count=process_metrics().ws_clients.set,
    )
    app.ctx.hub.start()


async def close_connections(app: Sanic) -> None:
    await app.ctx.hub.stop()
    await app.ctx.redis.aclose()
    await app.ctx.pubsub_redis.aclose()


def _redacted(url: str) -> str:
    """A Redis URL fit for the log: no password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        host = parts.hostname or ""
        netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
