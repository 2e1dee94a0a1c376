"""The dashboard: HTML pages rendered with Jinja2 and the built front-end assets."""

from __future__ import annotations

from sanic import Sanic

from myspinbot.web.pages import DIST_DIR, dashboard, favicon
from myspinbot.web.templating import create_environment


def setup_web(app: Sanic) -> None:
    """Register the dashboard, its static assets and the favicon on `app`."""
    app.ctx.templates = create_environment()
    app.static("/static", DIST_DIR, name="static", resource_type="dir")
    app.add_route(dashboard, "/", methods=["GET"], name="web_dashboard")
    app.add_route(favicon, "/favicon.ico", methods=["GET"], name="web_favicon")
