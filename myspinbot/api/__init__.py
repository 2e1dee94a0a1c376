"""The REST API, /health and /ws, with one error renderer for all of them."""

from __future__ import annotations

import logging
import os
import re

from sanic import Request, Sanic
from sanic.exceptions import SanicException
from sanic.response import HTTPResponse, text

from ..errors import REDIS_OUTAGE, MySpinBotError, ServiceUnavailable, json_error, render
from ..logs import request_id
from . import health, jobs, ws
from .auth import setup_auth
from .openapi import setup_openapi
from .security import setup_security

log = logging.getLogger("myspinbot.api")

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
SANIC_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "too_large",
    416: "range_not_satisfiable",
    503: "unavailable",
}
JSON_PATHS = ("/api", "/ws", "/health", "/metrics", "/bench")
KEPT_HEADERS = ("allow", "retry-after", "www-authenticate")  # on a page error too


def setup_api(app: Sanic) -> None:
    app.blueprint(health.bp)
    app.blueprint(jobs.bp)
    app.blueprint(ws.bp)
    setup_openapi(app)
    app.on_request(assign_request_id, priority=100)
    setup_security(app)
    setup_auth(app)
    app.on_response(echo_request_id)
    app.exception(Exception)(handle_error)


def assign_request_id(request: Request) -> None:
    """Take a sane X-Request-ID from the client (or Traefik), or make one."""
    given = request.headers.get("x-request-id", "")
    request.ctx.request_id = given if given and REQUEST_ID.match(given) else os.urandom(8).hex()
    request_id.set(request.ctx.request_id)


def echo_request_id(request: Request, response: HTTPResponse) -> None:
    rid = getattr(request.ctx, "request_id", None)
    if rid:
        response.headers["X-Request-ID"] = rid


def as_api_error(request: Request, exc: Exception) -> MySpinBotError | HTTPResponse:
    if isinstance(exc, MySpinBotError):
        return exc
    if isinstance(exc, SanicException) and exc.status_code < 500:
        code = SANIC_CODES.get(exc.status_code, "bad_request")
        message = str(exc) or code.replace("_", " ")
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return json_error(exc.status_code, code, message, headers=headers)
    if isinstance(exc, REDIS_OUTAGE):
        log.warning("Redis unavailable during %s %s: %s", request.method, request.path, exc)
        return ServiceUnavailable(
            "the job store is unreachable; try again shortly",
            code="redis_unavailable",
            retry_after=5,
        )
    log.error("unexpected error in %s %s", request.method, request.path, exc_info=exc)
    rid = getattr(request.ctx, "request_id", "-")
    return json_error(
        500,
        "internal_error",
        f"something went wrong on our side (request {rid}); it has been logged",
    )


def allowed_methods(request: Request) -> list[str]:
    """The methods the requested path does answer (RFC 9110 wants them on a 405)."""
    allowed = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        try:
            request.app.router.get(request.path, method, request.host)
        except SanicException:
            continue
        allowed.append(method)
    return allowed


async def handle_error(request: Request, exc: Exception) -> HTTPResponse:
    error = as_api_error(request, exc)
    response = render(error) if isinstance(error, MySpinBotError) else error
    if request.path.startswith(JSON_PATHS):
        return response
    page = getattr(request.app.ctx, "render_error", None)
    status = response.status
    message = (
        error.message
        if isinstance(error, MySpinBotError)
        else "something went wrong"
        if status >= 500
        else str(exc)
    )
    answer = page(request, status, message) if page is not None else text(message, status=status)
    for name in KEPT_HEADERS:
        if name in response.headers:
            answer.headers[name] = response.headers[name]
    return answer
