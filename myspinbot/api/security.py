"""Response hardening headers, and refusal of cross-site writes and WebSocket hijacking."""

from __future__ import annotations

from urllib.parse import urlsplit

from sanic import Request, Sanic
from sanic.response import HTTPResponse

from ..errors import Forbidden, render

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Pages send their own, looser policy (see web/templating.py); everything else gets this.
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
# Every response: no sniffing, no framing, no referrer leaks, no cross-site embedding.
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# Only documents can use these; JSON answers skip them (each header costs every request).
PAGE_HEADERS = {
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def setup_security(app: Sanic) -> None:
    app.on_request(refuse_cross_site, priority=90)
    app.on_response(add_security_headers)


def same_origin(request: Request) -> bool:
    """True unless the browser says the request comes from another site."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        return False
    origin = request.headers.get("origin")
    if not origin:
        return True  # scripts and curl send no Origin; browsers always do on these requests
    return urlsplit(origin).netloc.lower() == (request.host or "").lower()


def refuse_cross_site(request: Request) -> HTTPResponse | None:
    """No other site may make a browser write to MySpinBot or open its /ws (CSWSH)."""
    is_socket = request.path == "/ws"
    if (request.method not in SAFE_METHODS or is_socket) and not same_origin(request):
        what = "WebSocket connections" if is_socket else "requests"
        return render(Forbidden(f"cross-origin {what} are refused", code="cross_origin"))
    return None


def add_security_headers(request: Request, response: HTTPResponse) -> None:
    headers = response.headers
    for name, value in HEADERS.items():
        headers.setdefault(name, value)
    headers.setdefault("Content-Security-Policy", DEFAULT_CSP)
    if (response.content_type or "").startswith("text/html"):
        for name, value in PAGE_HEADERS.items():
            headers.setdefault(name, value)
    if request.scheme == "https":
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
