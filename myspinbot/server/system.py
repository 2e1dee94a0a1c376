"""What the server runs beside HTTP: the in-process workers of both queues and the upkeep.

In the one-process layout they start once the server's own connections are open and
stop (handing running jobs back) before those close. With several HTTP workers they run
in Sanic's main process instead, which also restarts HTTP workers that die.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from sanic import Sanic

from ..config import Settings
from ..jobs.worker.consumers import InProcessWorkers
from ..jobs.worker.maintenance import Maintenance, MaintenanceLoop
from ..jobs.worker.runtime import redis_client
from .supervisor import Supervisor, defer_shutdown_signals

log = logging.getLogger("myspinbot.server")

# In one process the worker threads share the GIL with the event loop. Python hands it
# over every 5 ms by default; 1 ms gives it back to HTTP and /ws sooner while a pipeline
# computes (bench busy scenario, three A/B pairs: status p99 under load 16.2 -> 13.9 ms,
# /ws delivery 16.7 -> 13.3 ms; zero-work throughput unchanged within the noise).
SHARED_GIL_SWITCH_INTERVAL = 0.001


class Background:
    """The in-process workers (MYSPINBOT_INPROCESS_WORKERS per queue) and the upkeep loop.

    Upkeep (reaper, retries, sweep, retention) runs here even with no in-process worker,
    so it goes on while every worker is away; a Redis lock keeps one round at a time
    across the whole deployment.
    """

    def __init__(self, settings: Settings) -> None:
        per_queue = settings.inprocess_workers
        self.workers = InProcessWorkers(settings, per_queue) if per_queue else None
        self.maintenance = MaintenanceLoop(
            Maintenance(redis_client(settings.store_url), settings),
            settings.maintenance_interval,
        )

    def start(self) -> None:
        if self.workers:
            self.workers.start()
        self.maintenance.start()

    def stop(self) -> None:
        self.maintenance.stop()
        if self.workers:
            self.workers.stop()


def setup_background(app: Sanic) -> None:
    """The one-process layout: call after the app's own listeners are registered."""
    app.before_server_start(_start)
    app.after_server_start(_announce)
    # Shutdown listeners run in reverse order of registration: this one runs first, while
    # Redis and the app's connections are still there for the hand-backs.
    app.before_server_stop(_stop)


async def _start(app: Sanic) -> None:
    if app.ctx.settings.inprocess_workers:  # only worker threads share the GIL with HTTP
        sys.setswitchinterval(SHARED_GIL_SWITCH_INTERVAL)
    app.ctx.background = Background(app.ctx.settings)
    app.ctx.background.start()


async def _announce(app: Sanic) -> None:
    settings: Settings = app.ctx.settings
    log.info("MySpinBot is ready on http://%s:%s", settings.host, settings.port)


async def _stop(app: Sanic) -> None:
    background = getattr(app.ctx, "background", None)
    if background is not None:  # joining the worker threads must not block the event loop
        await asyncio.get_running_loop().run_in_executor(None, background.stop)


def setup_main_process(app: Sanic) -> None:
    """With several HTTP workers: the background runs in Sanic's main process."""
    app.main_process_ready(_start_in_main)
    app.main_process_stop(_stop_in_main)


def _start_in_main(app: Sanic) -> None:
    settings: Settings = app.ctx.settings
    app.ctx.background = Background(settings)
    app.ctx.background.start()
    url = f"http://{settings.host}:{settings.port}"
    app.ctx.supervisor = Supervisor(
        app.manager, on_ready=lambda: log.info("MySpinBot is ready on %s", url)
    )
    app.ctx.supervisor.start()
    defer_shutdown_signals(app.manager)


def _stop_in_main(app: Sanic) -> None:
    supervisor = getattr(app.ctx, "supervisor", None)
    if supervisor is not None:
        supervisor.stop()
    background = getattr(app.ctx, "background", None)
    if background is not None:
        background.stop()
