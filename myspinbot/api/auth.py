"""Token auth: Bearer for scripts, a signed session cookie for the dashboard, CSRF for cookies.

Sessions are signed with a key derived from MYSPINBOT_API_TOKEN, so changing the token
signs everyone out. Failed attempts are counted per client in Redis and rate-limited.
The sign-in form that hands out sessions is a page, in web/signin.py.
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
    """The token check on every request; the sign-in pages are web/signin.py's."""
    app.ctx.auth = TokenAuth(app.ctx.settings.api_token)
    app.on_request(authenticate, priority=80)


def client_key(request: Request) -> str:
    return f"{PREFIX}authfail:{request.remote_addr or request.ip}"


async def lockout_seconds(request: Request) -> int:
    """Seconds this client's failures stay refused (0: not locked out).

    Failures are counted per client address over a window of FAILURE_WINDOW seconds from
    the first one; at MYSPINBOT_AUTH_MAX_FAILURES the client's *failures* get a 429 until
    the window ends. The right token is never refused: it is checked first.
    """
    pipe = request.app.ctx.redis.pipeline(transaction=False)
    pipe.get(client_key(request))
    pipe.ttl(client_key(request))
    count, ttl = await pipe.execute()
    if count is None or int(count) < request.app.ctx.settings.auth_max_failures:
        return 0
    return ttl if ttl > 0 else FAILURE_WINDOW


async def record_failure(request: Request) -> None:
    pipe = request.app.ctx.redis.pipeline(transaction=True)
    pipe.incr(client_key(request))
    pipe.expire(client_key(request), FAILURE_WINDOW, nx=True)
    await pipe.execute()


async def refuse_failure(request: Request) -> int:
    """After a wrong token: the lockout's seconds left (then refuse with 429), or 0 once
    this failure is counted (then refuse with 401)."""
    seconds = await lockout_seconds(request)
    if not seconds:
        await record_failure(request)
    return seconds


def rate_limited(seconds: int) -> TooManyRequests:
    return TooManyRequests(
        f"too many failed sign-in attempts from your address; try again in {seconds} s "
        "(the right token still works)",
        code="too_many_attempts",
        headers={"Retry-After": str(seconds)},
    )


def invalid_token() -> Unauthorized:
    return Unauthorized(
        "the API token is not valid",
        code="invalid_token",
        headers={"WWW-Authenticate": 'Bearer realm="myspinbot", error="invalid_token"'},
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
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and auth.token_matches(given.strip()):
            return None
        seconds = await refuse_failure(request)
        return render(rate_limited(seconds) if seconds else invalid_token())
    if session:
        if protected and request.method in UNSAFE:
            given = request.headers.get("x-csrf-token", "")
            if not hmac.compare_digest(given, request.ctx.csrf_token):
                return render(Forbidden("missing or wrong X-CSRF-Token", code="csrf_failed"))
        return None
    if path == "/":
        return redirect("/login")
    return render(Unauthorized("sign in, or send Authorization: Bearer <token>"))
