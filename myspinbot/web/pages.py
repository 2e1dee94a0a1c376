"""The dashboard's routes."""

from __future__ import annotations

from dataclasses import dataclass

from sanic import Request
from sanic.response import HTTPResponse, empty, file

from myspinbot.web.templating import DIST_DIR, render

__all__ = ["DIST_DIR", "Limits", "dashboard", "error_page", "favicon"]


@dataclass(frozen=True, slots=True)
class Limits:
    """The upload limits the page mirrors in its client-side checks."""

    max_images: int
    max_image_bytes: int
    max_voice_bytes: int
    max_request_bytes: int
    max_prompt_chars: int


def limits_of(request: Request) -> Limits:
    settings = request.app.ctx.settings
    return Limits(
        max_images=settings.max_images,
        max_image_bytes=settings.max_image_bytes,
        max_voice_bytes=settings.max_voice_bytes,
        max_request_bytes=settings.max_request_bytes,
        max_prompt_chars=settings.max_prompt_chars,
    )


async def dashboard(request: Request) -> HTTPResponse:
    """The control room: health, the train and generate forms, the live job list."""
    return render(request, "dashboard.html", limits=limits_of(request))


async def favicon(request: Request) -> HTTPResponse:
    """The SVG icon, for browsers that ask for /favicon.ico regardless of the page's link."""
    icon = DIST_DIR / "favicon.svg"
    if not icon.is_file():
        return empty(status=204)
    return await file(
        icon,
        mime_type="image/svg+xml",
        max_age=86400,
        request_headers=request.headers,
    )


def error_page(request: Request, status: int, message: str) -> HTTPResponse:
    """The answer to an error outside the JSON routes (api/'s error handler calls it)."""
    return render(request, "error.html", status=status, message=message)
