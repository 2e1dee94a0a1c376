"""GET /docs: the OpenAPI document (api/openapi.py's) in Swagger UI, from our own assets."""

from __future__ import annotations

from sanic import Request, Sanic
from sanic.response import HTTPResponse

from .templating import render

# Swagger UI sets inline styles; everything it loads comes from this origin (works offline).
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def setup_docs(app: Sanic) -> None:
    app.add_route(docs_page, "/docs", methods=["GET"], name="docs_page")


async def docs_page(request: Request) -> HTTPResponse:
    response = render(request, "docs.html")
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response
