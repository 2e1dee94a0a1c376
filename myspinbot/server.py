"""Serve the app: HTTP workers, in-process workers, embedded Redis, all from one command."""

from __future__ import annotations

import logging
import os

from sanic import Sanic
from sanic.server.protocols.websocket_protocol import WebSocketProtocol
from sanic.worker.loader import AppLoader

from . import MAIN_PID_ENV
from .config import Settings

log = logging.getLogger("myspinbot.server")


def serve() -> None:
    """Run until SIGINT/SIGTERM.

    Each HTTP worker builds the whole app through the loader; this process builds only
    its own part. Nothing builds one at import time, so the other processes Sanic spawns
    (its state manager, our consumers), which re-import the main module, stay small.
    """
    from .app import create_app, create_main_app

    loader = AppLoader(factory=create_app)
    app = create_main_app()
    settings: Settings = app.ctx.settings
    os.environ[MAIN_PID_ENV] = str(os.getpid())  # children arm their parent-death signal
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_token:
        log.warning(
            "\n%s\nMySpinBot is listening on %s with NO MYSPINBOT_API_TOKEN: anyone who can "
            "reach this address can read your photos and run jobs. Set MYSPINBOT_API_TOKEN.\n%s",
            "!" * 78,
            settings.host,
            "!" * 78,
        )
    app.prepare(
        host=settings.host,
        port=settings.port,
        workers=settings.http_workers,
        access_log=settings.access_log,
        motd=False,
        single_process=False,
        # Sanic picks the protocol from this process's app, which has no routes (so no /ws).
        protocol=WebSocketProtocol,
    )
    Sanic.serve(primary=app, app_loader=loader)
