"""WebSocket /ws: a snapshot, then every job change, pushed by this process's hub."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import orjson
from sanic import Blueprint, Request
from sanic.server.websockets.impl import WebsocketImplProtocol

from ..events import Hub

log = logging.getLogger("myspinbot.events")
bp = Blueprint("ws")

MAX_MESSAGES_PER_SECOND = 5
CLOSE_POLICY = 1008
CLOSE_TRY_LATER = 1013


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


@bp.websocket("/ws")
async def events(request: Request, ws: WebsocketImplProtocol) -> None:
    hub: Hub = request.app.ctx.hub
    client = hub.join()
    pump = asyncio.create_task(hub.pump(client, ws.send))
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
