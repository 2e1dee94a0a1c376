"""create_app: the one place that wires settings to each area of the HTTP application."""

from __future__ import annotations

from sanic import Sanic

from .config import Settings
from .logs import configure_logging, logging_config

APP_NAME = "myspinbot"
JSON_BODY_MAX = 1024 * 1024  # every body but the streamed training upload (which has its own)
WEBSOCKET_MAX_MESSAGE = 16 * 1024


def create_app(settings: Settings | None = None) -> Sanic:
    """The HTTP application: API, /ws, dashboard, /metrics, and this process's connections."""
    from .api import setup_api
    from .api.connections import setup_connections
    from .metrics.endpoint import setup_metrics
    from .web import setup_web

    app = new_app(settings)
    app.config.AUTO_EXTEND = True  # sanic-ext: automatic HEAD and OPTIONS on every route
    setup_connections(app)
    setup_api(app)
    setup_metrics(app)
    setup_web(app)
    if app.ctx.settings.bench_routes:
        from .api.bench import setup_bench

        setup_bench(app)
    return app


def new_app(settings: Settings | None = None) -> Sanic:
    """A configured Sanic with no routes: the start of every layout."""
    settings = settings or Settings.from_env()
    configure_logging(settings)
    app = Sanic(APP_NAME, log_config=logging_config(settings), env_prefix="MYSPINBOT_SANIC_")
    app.ctx.settings = settings
    app.config.REQUEST_MAX_SIZE = JSON_BODY_MAX
    app.config.WEBSOCKET_MAX_SIZE = WEBSOCKET_MAX_MESSAGE
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = 8.0
    app.config.ACCESS_LOG = settings.access_log
    app.config.PROXIES_COUNT = settings.proxies_count  # trust X-Forwarded-* from Traefik
    app.config.OAS = False  # the OpenAPI document is served by our own route
    app.config.AUTO_EXTEND = False  # no routes yet, so no sanic-ext (and its ~4 MiB)
    return app
