"""The Jinja2 environment of the dashboard and a helper to render a page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader
from sanic import Request
from sanic.response import HTTPResponse, html

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = ROOT / "templates"
DIST_DIR = ROOT / "static" / "dist"

# What the pages need: own scripts and styles only, blob:/data: for upload previews.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)


def static_url(name: str) -> str:
    """The URL of a built asset, versioned by its mtime so a rebuild is never served stale."""
    try:
        version = int((DIST_DIR / name).stat().st_mtime)
    except OSError:
        return f"/static/{name}"
    return f"/static/{name}?v={version}"


def create_environment() -> Environment:
    """A Jinja2 environment over `templates/` with autoescaping always on."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static_url"] = static_url
    return env


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTTPResponse:
    """Render `template` with the request's CSRF token and `status`, as a page never cached."""
    env: Environment = request.app.ctx.templates
    context.setdefault("csrf_token", getattr(request.ctx, "csrf_token", ""))
    body = env.get_template(template).render(status=status, **context)
    return html(
        body,
        status=status,
        # The other hardening headers come from api/security.py, on every response.
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-store"},
    )
