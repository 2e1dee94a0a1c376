"""The pages: the dashboard, the sign-in form and the API docs, rendered with Jinja2."""

from __future__ import annotations

from sanic import Sanic

from myspinbot.web.docs import setup_docs
from myspinbot.web.pages import DIST_DIR, dashboard, error_page, favicon
from myspinbot.web.signin import setup_signin
from myspinbot.web.templating import create_environment


def setup_web(app: Sanic) -> None:
    """Register the pages, their static assets and the favicon on `app`."""
    app.ctx.templates = create_environment()
    app.ctx.render_error = error_page  # api/ renders errors of page routes with it
    app.static("/static", DIST_DIR, name="static", resource_type="dir")
    app.add_route(dashboard, "/", methods=["GET"], name="web_dashboard")
    app.add_route(favicon, "/favicon.ico", methods=["GET"], name="web_favicon")
    setup_signin(app)
    setup_docs(app)
