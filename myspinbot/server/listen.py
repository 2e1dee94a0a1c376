"""The server's listening socket, bound before anything else starts.

Binding first means a port in use (the most likely first-run failure) is reported in one
line, with the fix, before the embedded Redis or any worker has started. Sanic is handed
this socket (no second bind, so no race between the check and the use); with several
HTTP workers its main process passes the same socket to each of them.
"""

from __future__ import annotations

import errno
import socket
from ipaddress import ip_address

BACKLOG = 100  # Sanic's default


class ListenError(RuntimeError):
    """The server cannot listen where it was told to; the message says what to change."""


def listening_socket(host: str, port: int) -> socket.socket:
    try:
        return bind_socket(host, port, backlog=BACKLOG)
    except socket.gaierror:
        raise ListenError(
            f"cannot listen on {host}: no such host name; set an address of this machine "
            f"with MYSPINBOT_HOST or --host (127.0.0.1, or 0.0.0.0 for all of them)"
        ) from None
    except OSError as exc:
        raise ListenError(_reason(host, port, exc)) from None


def bind_socket(host: str, port: int, *, backlog: int) -> socket.socket:
    """A listening TCP socket, as Sanic makes one (kept here: the CLI need not load Sanic)."""
    try:
        family = socket.AF_INET6 if ip_address(host).version == 6 else socket.AF_INET
    except ValueError:  # a host name
        family = socket.AF_INET
    sock = socket.socket(family)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)  # Sanic's worker processes inherit it
    return sock


def _reason(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} is already in use on {host} (another MySpinBot, or another "
            f"program); stop it, or choose another port with MYSPINBOT_PORT or --port "
            f"(e.g. --port {port + 1 if port < 65535 else 8000})"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"cannot listen on {host}: it is not an address of this machine; set one with "
            f"MYSPINBOT_HOST or --host (127.0.0.1, or 0.0.0.0 for all of them)"
        )
    if exc.errno == errno.EACCES:
        return (
            f"port {port} needs privileges this process lacks; choose one from 1024 up "
            f"with MYSPINBOT_PORT or --port"
        )
    return (
        f"cannot listen on {host} port {port}: {exc.strerror}; check MYSPINBOT_HOST / "
        f"--host and MYSPINBOT_PORT / --port"
    )
