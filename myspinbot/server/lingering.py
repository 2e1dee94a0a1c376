"""A lingering close: a client still sending a refused body gets to read the answer.

When a request is refused before its body is read (a 413, or any error on an upload), the
connection must close: the rest of the body is not wanted. Closing a socket whose receive
buffer still holds data makes the kernel send a TCP reset, and a client that writes its
whole body before reading (most do, browsers included) then sees "connection reset" where
the 413 was (the reset discards the answer on many systems, and such clients stop at the
failed write). So, as nginx and Apache do, the server sends its answer, shuts down its
sending side (the client sees the answer end) and reads and drops what the client still
sends, until the client stops, for at most LINGER_SECONDS, LINGER_IDLE_SECONDS without a
byte, or MYSPINBOT_LINGER_BYTES; then it closes. Nothing is kept: memory and disk stay flat.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sanic.http import Http
from sanic.server.protocols.websocket_protocol import WebSocketProtocol

LINGER_SECONDS = 30.0  # nginx's lingering_time
LINGER_IDLE_SECONDS = 5.0  # nginx's lingering_timeout


class LingeringHttp(Http):
    """Sanic's HTTP/1.1 connection, telling its protocol when it ends with a body unread."""

    async def http1(self) -> None:
        await super().http1()
        if self.request_body and self.response is not None:
            self.protocol.body_left_unread = True


class LingeringProtocol(WebSocketProtocol):
    """Sanic's protocol (HTTP and /ws) whose close lingers after a refused upload."""

    __slots__ = ("body_left_unread", "_dropped", "_last_data", "_deadline", "_idle")
    HTTP_CLASS = LingeringHttp
    linger_seconds = LINGER_SECONDS
    linger_idle_seconds = LINGER_IDLE_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.body_left_unread = False
        self._dropped: int | None = None  # bytes dropped while lingering; None: not lingering
        self._last_data = 0.0  # loop time of the last bytes dropped
        self._deadline: asyncio.TimerHandle | None = None
        self._idle: asyncio.TimerHandle | None = None

    def close(self, timeout: float | None = None) -> None:
        if self.body_left_unread and self._can_linger():
            self.body_left_unread = False
            self._linger()
            return
        self._stop_lingering()
        super().close(timeout=timeout)

    def close_if_idle(self) -> bool:
        """On shutdown: a lingering connection is closed at once, not waited for."""
        if self._dropped is not None:
            self.body_left_unread = False
            self.close()
            return True
        return super().close_if_idle()

    def data_received(self, data: bytes) -> None:
        if self._dropped is None:
            super().data_received(data)
            return
        self._dropped += len(data)
        self._last_data = self.loop.time()
        if self._dropped > self.app.ctx.settings.linger_bytes:
            self.close()

    def eof_received(self) -> bool | None:
        """The client has sent everything: a lingering connection is done."""
        if self._dropped is None:
            return super().eof_received()
        self.close()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_lingering()
        super().connection_lost(exc)

    def _can_linger(self) -> bool:
        transport = self.transport
        return (
            transport is not None
            and not transport.is_closing()
            and transport.can_write_eof()
            and self._dropped is None
        )

    def _linger(self) -> None:
        """Answer sent: end our side (FIN after it), then drop what the client still sends."""
        self._dropped = 0
        self.recv_buffer.clear()
        self.transport.write_eof()
        self.transport.resume_reading()  # Sanic pauses reading when its buffer is full
        self._last_data = self.loop.time()
        self._deadline = self.loop.call_later(self.linger_seconds, self.close)
        self._idle = self.loop.call_later(self.linger_idle_seconds, self._check_idle)

    def _check_idle(self) -> None:
        """Close once the client has sent nothing for linger_idle_seconds (one timer, not
        one per chunk: chunks come thousands of times a second)."""
        quiet = self.loop.time() - self._last_data
        if quiet >= self.linger_idle_seconds:
            self.close()
        else:
            self._idle = self.loop.call_later(self.linger_idle_seconds - quiet, self._check_idle)

    def _stop_lingering(self) -> None:
        for timer in (self._deadline, self._idle):
            if timer is not None:
                timer.cancel()
        self._deadline = self._idle = None
