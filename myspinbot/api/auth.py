"""Token auth: Bearer for scripts, a signed session cookie for the dashboard, CSRF for cookies.

Sessions are signed with a key derived from MYSPINBOT_API_TOKEN, so changing the token
signs everyone out. Failed attempts are counted per client in Redis and rate-limited.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from sanic import Request, Sanic
from sanic.response import HTTPResponse, redirect

from ..errors import Forbidden, TooManyRequests, Unauthorized, render
from ..jobs.keys import PREFIX

SESSION_COOKIE = "myspinbot_session"
LOGIN_COOKIE = "myspinbot_login"
SESSION_SECONDS = 7 * 24 * 3600
FAILURE_WINDOW = 300
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _sign(key: bytes, message: str) -> str:
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class TokenAuth:
    """What the configured token allows; every comparison is constant-time."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        self.key = (
            hashlib.sha256(b"myspinbot-session\0" + token.encode()).digest() if token else b""
        )

    @property
    def enabled(self) -> bool:
        return bool(self.token)

    def token_matches(self, given: str) -> bool:
        return bool(self.token) and hmac.compare_digest(given.encode(), self.token.encode())

    def new_session(self) -> str:
        payload = f"{int(time.time())}.{secrets.token_urlsafe(16)}"
        return f"{payload}.{_sign(self.key, payload)}"

    def session_id(self, cookie: str | None) -> str | None:
        """The session's nonce if the cookie is ours and fresh."""
        if not cookie or not self.enabled or cookie.count(".") != 2:
            return None
        issued, nonce, signature = cookie.split(".")
        if not hmac.compare_digest(signature, _sign(self.key, f"{issued}.{nonce}")):
            return None
        if not issued.isdigit() or int(issued) + SESSION_SECONDS < time.time():
            return None
        return nonce

    def csrf_token(self, session: str) -> str:
        return _sign(self.key, "csrf:" + session)


def setup_auth(app: Sanic) -> None:
    app.ctx.auth = TokenAuth(app.ctx.settings.api_token)
    app.on_request(authenticate, priority=80)
    app.add_route(login_page, "/login", methods=["GET"], name="login_page")
    app.add_route(login, "/login", methods=["POST"], name="login")
    app.add_route(logout, "/logout", methods=["POST"], name="logout")


def client_key(request: Request) -> str:
    return f"{PREFIX}authfail:{request.remote_addr or request.ip}"


async def too_many_failures(request: Request) -> bool:
    count = await request.app.ctx.redis.get(client_key(request))
    limit = request.app.ctx.settings.auth_max_failures
    return count is not None and int(count) >= limit


async def record_failure(request: Request) -> None:
    pipe = request.app.ctx.redis.pipeline(transaction=True)
    pipe.incr(client_key(request))
    pipe.expire(client_key(request), FAILURE_WINDOW, nx=True)
    await pipe.execute()


def rate_limited() -> TooManyRequests:
    return TooManyRequests(
        "too many failed sign-in attempts; wait a few minutes",
        code="too_many_attempts",
        headers={"Retry-After": str(FAILURE_WINDOW)},
    )


async def authenticate(request: Request) -> HTTPResponse | None:
    auth: TokenAuth = request.app.ctx.auth
    session = auth.session_id(request.cookies.get(SESSION_COOKIE))
    request.ctx.csrf_token = auth.csrf_token(session) if session else ""
    path = request.path
    protected = path.startswith("/api/") or path == "/ws"
    if not auth.enabled or not (protected or path == "/"):
        return None
    header = request.headers.get("authorization", "")
    if header:
        if await too_many_failures(request):
            return render(rate_limited())
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and auth.token_matches(given.strip()):
            return None
        await record_failure(request)
        return render(Unauthorized("the API token is not valid", code="invalid_token"))
    if session:
        if protected and request.method in UNSAFE:
            given = request.headers.get("x-csrf-token", "")
            if not hmac.compare_digest(given, request.ctx.csrf_token):
                return render(Forbidden("missing or wrong X-CSRF-Token", code="csrf_failed"))
        return None
    if path == "/":
        return redirect("/login")
    error = Unauthorized("sign in, or send Authorization: Bearer <token>")
    response = render(error)
    response.headers["WWW-Authenticate"] = 'Bearer realm="myspinbot"'
    return response


def _login_form(request: Request, status: int = 200, error: str = "") -> HTTPResponse:
    from ..web.templating import render as render_page

    csrf = secrets.token_urlsafe(24)
    response = render_page(request, "login.html", status=status, error=error, csrf_token=csrf)
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
    if await too_many_failures(request):
        return _login_form(request, 429, "Too many failed attempts. Wait a few minutes.")
    token = request.form.get("token", "") if request.form else ""
    if not auth.token_matches(token):
        await record_failure(request)
        return _login_form(request, 401, "That token is not right.")
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


async def logout(request: Request) -> HTTPResponse:
    given = (request.form.get("csrf", "") if request.form else "") or request.headers.get(
        "x-csrf-token", ""
    )
    if request.ctx.csrf_token and not hmac.compare_digest(given, request.ctx.csrf_token):
        return render(Forbidden("missing or wrong CSRF token", code="csrf_failed"))
    response = redirect("/login" if request.app.ctx.auth.enabled else "/", status=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
