"""WebSocket /ws: a snapshot, then every job change, pushed by this process's hub."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import orjson
from sanic import Blueprint, Request
from sanic.server.websockets.impl import WebsocketImplProtocol
from websockets.protocol import State

from .hub import Hub

log = logging.getLogger("myspinbot.events")
bp = Blueprint("ws")

MAX_MESSAGES_PER_SECOND = 5
CLOSE_POLICY = 1008
CLOSE_TRY_LATER = 1013
WRITE_BUFFER_LIMIT = 256 * 1024  # bytes queued in the kernel-side buffer before we hold back


async def read_client(ws: WebsocketImplProtocol, hub: Hub, client) -> None:
    """Clients may ask for health frames; anything else, or too much of it, closes the socket."""
    window, count = time.monotonic(), 0
    while True:
        message = await ws.recv()
        if message is None:
            return
        now = time.monotonic()
        if now - window > 1:
            window, count = now, 0
        count += 1
        if count > MAX_MESSAGES_PER_SECOND:
            await ws.close(CLOSE_POLICY, "too many messages")
            return
        try:
            request = orjson.loads(message)
        except orjson.JSONDecodeError:
            await ws.close(CLOSE_POLICY, "messages must be JSON")
            return
        if isinstance(request, dict) and request.get("type") == "subscribe":
            client.wants_health = "health" in (request.get("topics") or [])
            if client.wants_health:
                await hub.send_health_now(client)


class SanicFrameWriter:
    """Pre-built frames onto one Sanic WebSocket, beside Sanic's own sends (pings, close)."""

    def __init__(self, ws: WebsocketImplProtocol) -> None:
        self.ws = ws

    def _transport(self) -> asyncio.WriteTransport | None:
        if self.ws.ws_proto.state is not State.OPEN:
            return None
        transport = getattr(self.ws.io_proto, "transport", None)
        return None if transport is None or transport.is_closing() else transport

    def try_write(self, frame: bytes) -> bool:
        # Whole frames only, never while Sanic is mid-send (it holds conn_mutex then).
        transport = self._transport()
        if transport is None or self.ws.conn_mutex.locked():
            return False
        if transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
            return False  # the peer is not reading: its outbox and send timeout take over
        transport.write(frame)
        return True

    async def send(self, frame: bytes) -> None:
        async with self.ws.conn_mutex:
            if self._transport() is None:
                raise ConnectionResetError("the WebSocket is closed")
            await self.ws.io_proto.send(frame)  # waits while the transport is paused


@bp.websocket("/ws")
async def events(request: Request, ws: WebsocketImplProtocol) -> None:
    hub: Hub = request.app.ctx.hub
    client = hub.join(SanicFrameWriter(ws))
    pump = asyncio.create_task(hub.pump(client))
    reader = asyncio.create_task(read_client(ws, hub, client))
    try:
        done, _ = await asyncio.wait({pump, reader}, return_when=asyncio.FIRST_COMPLETED)
        if pump in done and pump.exception() is not None:
            log.info("dropping a WebSocket client: %r", pump.exception())
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(CLOSE_TRY_LATER, "too slow"), 1)
    finally:
        hub.leave(client)
        for task in (pump, reader):
            task.cancel()
        # RequestCancelled is a CancelledError: collect the tasks without re-raising it.
        await asyncio.gather(pump, reader, return_exceptions=True)
