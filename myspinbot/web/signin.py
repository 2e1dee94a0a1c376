"""The dashboard's sign-in: a form that exchanges the API token for a session cookie.

The token check itself, the session format and the failure counting are api/auth.py's.
"""

from __future__ import annotations

import hmac
import secrets

from sanic import Request, Sanic
from sanic.response import HTTPResponse, redirect

from ..api.auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_SECONDS,
    TokenAuth,
    refuse_failure,
)
from ..errors import Forbidden, render
from .templating import render as render_page


def setup_signin(app: Sanic) -> None:
    app.add_route(login_page, "/login", methods=["GET"], name="login_page")
    app.add_route(login, "/login", methods=["POST"], name="login")
    app.add_route(logout, "/logout", methods=["POST"], name="logout")


def _login_form(
    request: Request, status: int = 200, error: str = "", headers: dict[str, str] | None = None
) -> HTTPResponse:
    csrf = secrets.token_urlsafe(24)
    response = render_page(request, "login.html", status=status, error=error, csrf_token=csrf)
    response.headers.update(headers or {})
    response.add_cookie(
        LOGIN_COOKIE,
        csrf,
        httponly=True,
        samesite="Strict",
        path="/login",
        secure=request.scheme == "https",
        max_age=3600,
    )
    return response


async def login_page(request: Request) -> HTTPResponse:
    if not request.app.ctx.auth.enabled or request.ctx.csrf_token:
        return redirect("/")
    return _login_form(request)


async def login(request: Request) -> HTTPResponse:
    auth: TokenAuth = request.app.ctx.auth
    if not auth.enabled:
        return redirect("/")
    expected = request.cookies.get(LOGIN_COOKIE, "")
    given = request.form.get("csrf", "") if request.form else ""
    if not expected or not hmac.compare_digest(given, expected):
        return _login_form(request, 403, "Your sign-in form expired. Please try again.")
    token = request.form.get("token", "") if request.form else ""
    if not auth.token_matches(token):
        return await _refused(request)
    response = redirect("/", status=303)
    response.add_cookie(
        SESSION_COOKIE,
        auth.new_session(),
        httponly=True,
        samesite="Strict",
        secure=request.scheme == "https",
        path="/",
        max_age=SESSION_SECONDS,
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


async def _refused(request: Request) -> HTTPResponse:
    """A wrong token: 401, or 429 while this address is locked out (the right one works)."""
    seconds = await refuse_failure(request)
    if seconds:
        minutes = max(1, round(seconds / 60))
        error = (
            f"Too many failed attempts from your address. Try again in about {minutes} "
            f"minute{'s' if minutes > 1 else ''}, or sign in with the right token now."
        )
        return _login_form(request, 429, error, {"Retry-After": str(seconds)})
    return _login_form(
        request, 401, "That token is not right.", {"WWW-Authenticate": 'Bearer realm="myspinbot"'}
    )


async def logout(request: Request) -> HTTPResponse:
    given = (request.form.get("csrf", "") if request.form else "") or request.headers.get(
        "x-csrf-token", ""
    )
    if request.ctx.csrf_token and not hmac.compare_digest(given, request.ctx.csrf_token):
        return render(Forbidden("missing or wrong CSRF token", code="csrf_failed"))
    response = redirect("/login" if request.app.ctx.auth.enabled else "/", status=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
