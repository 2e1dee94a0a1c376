"""Sanic's main process: the embedded Redis, the in-process workers, their supervision.

The main process builds only this part of the app (`create_main_app`); each HTTP worker
builds the whole app through Sanic's loader. Keeping the routes, templates and their
libraries out of the main process saves it ~15 MiB.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time

from sanic import Sanic

from .config import QUEUES, Settings
from .embedded_redis import EmbeddedRedis
from .jobs.maintenance import Maintenance, MaintenanceLoop
from .jobs.queues import default_redis_url
from .metrics.samples_dir import prepare_multiprocess_dir, remove_multiprocess_dir
from .redis_binary import check_server_version
from .supervisor import Supervisor, defer_shutdown_signals

log = logging.getLogger("myspinbot.server")

WORKER_EXIT_WAIT = 12.0  # managed workers get this long to hand back jobs before Redis stops


def setup_main_process(app: Sanic) -> None:
    app.main_process_start(start_embedded_redis)
    app.main_process_start(prepare_multiprocess_dir)
    app.main_process_ready(start_inprocess_workers)
    app.main_process_stop(stop_main_process)
    app.main_process_stop(remove_multiprocess_dir)


def start_embedded_redis(app: Sanic) -> None:
    settings: Settings = app.ctx.settings
    app.ctx.embedded = None
    if settings.redis_url:
        log.info(
            "using %s at %s", external_server(settings.redis_url), _redacted(settings.redis_url)
        )
        return
    embedded = EmbeddedRedis(settings.data_dir, binary=settings.redis_server)
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


def external_server(url: str) -> str:
    """Which server REDIS_URL names; raises EmbeddedRedisError when it is older than Redis 7."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
    try:
        info = client.info("server")
    except redis.ConnectionError as exc:  # not up yet (a compose stack starting): check later
        log.warning("cannot check the Redis version yet (%s)", exc)
        return "Redis"
    finally:
        client.close()
    return check_server_version(info)


def stop_main_process(app: Sanic) -> None:
    """Stop Redis last: only after every managed process has exited (bounded)."""
    supervisor = getattr(app.ctx, "supervisor", None)
    if supervisor:
        supervisor.stop()
    maintenance = getattr(app.ctx, "maintenance", None)
    if maintenance:
        maintenance.stop()
    # Sanic refuses app.manager when start-up failed before the workers were ready.
    manager = app.manager if supervisor else None
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


def _redacted(url: str) -> str:
    """A Redis URL fit for the log: no password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        host = parts.hostname or ""
        netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
