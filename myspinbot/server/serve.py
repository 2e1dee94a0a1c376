"""Serve MySpinBot: one Python process by default, Sanic's worker processes when asked.

`python app.py` (= `myspinbot serve`, = `make run`) with one HTTP worker is a single
process: Sanic serving HTTP, /ws, the dashboard and /metrics, with both queues' Huey
workers and the upkeep loop as threads beside its event loop, and the embedded Redis as
its only child. MYSPINBOT_HTTP_WORKERS > 1 is the multi-process form: Sanic's main
process runs the workers and the upkeep, each HTTP worker process serves requests.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from sanic import Sanic
from sanic.worker.loader import AppLoader

from ..app import create_app, new_app
from ..config import Settings
from ..lifeline import MAIN_PID_ENV
from .embedded_redis import EmbeddedRedis
from .lingering import LingeringProtocol
from .listen import listening_socket
from .redis_binary import external_server_label
from .shared_metrics import forget_dead_processes, shared_metrics_dir
from .system import setup_background, setup_main_process

log = logging.getLogger("myspinbot.server")


def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM. Redis comes up before the server and goes down after it.

    The port is bound first: if it cannot be, ListenError says so and nothing has started.
    """
    sock = listening_socket(settings.host, settings.port)
    try:
        _warn_if_open(settings)
        _warn_if_guessable(settings)
        with _redis(settings):
            if settings.http_workers == 1:
                _serve_one_process(settings, sock)
            else:
                _serve_worker_processes(settings, sock)
    finally:
        sock.close()


@contextmanager
def _redis(settings: Settings) -> Iterator[None]:
    """REDIS_URL's server (checked for its version), or the embedded one, supervised."""
    if settings.redis_url:
        label = external_server_label(settings.redis_url)
        log.info("using %s at %s", label, redacted(settings.redis_url))
        yield
        return
    embedded = EmbeddedRedis(settings.data_dir, binary=settings.redis_server)
    embedded.start()
    embedded.supervise()
    try:
        yield
    finally:
        embedded.stop()


def _serve_one_process(settings: Settings, sock: socket.socket) -> None:
    app = create_app(settings)
    setup_background(app)
    app.prepare(
        sock=sock,
        access_log=settings.access_log,
        motd=False,
        single_process=True,
        protocol=LingeringProtocol,  # HTTP and /ws; a refused upload's answer is read
    )
    Sanic.serve_single(primary=app)


def _serve_worker_processes(settings: Settings, sock: socket.socket) -> None:
    """Each HTTP worker builds the whole app through the loader; this process only its part."""
    os.environ[MAIN_PID_ENV] = str(os.getpid())  # children arm their parent-death signal
    app = new_app(settings)
    setup_main_process(app)
    app.prepare(
        sock=sock,  # Sanic hands it to each worker process
        workers=settings.http_workers,
        access_log=settings.access_log,
        motd=False,
        # Sanic would pick the protocol from this process's app, which has no routes (so no
        # /ws): name it. It serves /ws, and a refused upload's answer is read (lingering.py).
        protocol=LingeringProtocol,
    )
    with shared_metrics_dir():  # per-process HTTP metrics, merged at scrape time
        Sanic.serve(primary=app, app_loader=AppLoader(factory=http_worker_app))


def http_worker_app() -> Sanic:
    """What each HTTP worker process serves (MYSPINBOT_HTTP_WORKERS > 1)."""
    app = create_app(Settings.from_env())
    app.ctx.before_scrape = forget_dead_processes  # a dead worker's live gauges must go
    return app


def _warn_if_open(settings: Settings) -> None:
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_token:
        log.warning(
            "\n%s\nMySpinBot is listening on %s with NO MYSPINBOT_API_TOKEN: anyone who can "
            "reach this address can read your photos and run jobs. Set MYSPINBOT_API_TOKEN.\n%s",
            "!" * 78,
            settings.host,
            "!" * 78,
        )


MIN_TOKEN_CHARS = 20


def _warn_if_guessable(settings: Settings) -> None:
    """The failure limit never refuses the right token, so it cannot stop a patient guesser
    on its own: the token's length must."""
    token = settings.api_token
    if token and len(token) < MIN_TOKEN_CHARS:
        log.warning(
            "MYSPINBOT_API_TOKEN has only %d characters: the failure limit refuses wrong "
            "tokens but never the right one, so a short token can be guessed. Use %d or more "
            "random characters, e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'",
            len(token),
            MIN_TOKEN_CHARS,
        )


def redacted(url: str) -> str:
    """A URL fit for the log: no password."""
    parts = urlsplit(url)
    if parts.password:
        host = parts.hostname or ""
        netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
