"""`/ws`: the sockets, their routing by client id, and the one ordered outbox every event uses.

Follows ComfyUI 0.3.64 `server.py` (Comfy-Org/ComfyUI@a125cd84): the first frame is `status`
with `sid`; a socket that connects with the `clientId` of the running prompt also gets
`executing {node}`; an event addressed to a sid with no socket is dropped; sid None means every
socket; a first `feature_flags` message is stored and answered. A reconnect with a used
`clientId` takes over the sid without closing the old socket, and when that old socket closes
it removes the new one's entry -- ComfyUI 0.3.64's behaviour, kept. 2026 follows
Comfy-Org/ComfyUI@5e14d797 `server.py`: loopback peers get a `credential_key` in the first
`status`; reconnecting to a sid whose socket is still open needs a first `credential_auth`
frame with that key within 5 s, else close 1008; the old socket's close no longer evicts.
"""

from __future__ import annotations

import asyncio
import hmac
import io
import json
import secrets
import struct
import uuid
from typing import Any

import aiohttp
from aiohttp import web
from PIL import Image, ImageOps

PREVIEW_IMAGE, UNENCODED_PREVIEW_IMAGE, TEXT, PREVIEW_IMAGE_WITH_METADATA = 1, 2, 3, 4
SEND_ERRORS = (aiohttp.ClientError, ConnectionResetError, BrokenPipeError, ConnectionError)


class Hub:
    def __init__(self, generation: str, max_upload_bytes: int) -> None:
        self.new = generation == "2026"
        self.max_upload_bytes = max_upload_bytes
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.metadata: dict[str, dict[str, Any]] = {}
        self.live: dict[web.WebSocketResponse, asyncio.BaseTransport] = {}
        self.messages: asyncio.Queue = asyncio.Queue()
        self.queue_remaining = lambda: 0
        # The running prompt's client id and node, as PromptServer keeps them.
        self.client_id: str | None = None
        self.last_node_id: str | None = None
        self.last_prompt_id: str | None = None
        self.silent = False

    def server_features(self) -> dict[str, Any]:
        return {"supports_preview_metadata": True, "max_upload_size": self.max_upload_bytes}

    def queue_info(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": self.queue_remaining()}}

    def queue_updated(self) -> None:
        self.send_sync("status", {"status": self.queue_info()})

    def send_sync(self, event: Any, data: Any, sid: str | None = None) -> None:
        self.messages.put_nowait((event, data, sid))

    def supports_preview_metadata(self, sid: str | None) -> bool:
        flags = self.metadata.get(sid or "", {}).get("feature_flags", {})
        return flags.get("supports_preview_metadata", False) is True

    async def publish_loop(self) -> None:
        while True:
            event, data, sid = await self.messages.get()
            try:
                await self.send(event, data, sid)
            finally:
                self.messages.task_done()

    async def send(self, event: Any, data: Any, sid: str | None = None) -> None:
        if event == UNENCODED_PREVIEW_IMAGE:
            fmt, image = data[0], _fit(data[1], data[2])
            body = struct.pack(">I", 1 if fmt == "JPEG" else 2) + _encode(image, fmt)
            await self._deliver(struct.pack(">I", PREVIEW_IMAGE) + body, sid)
        elif event == PREVIEW_IMAGE_WITH_METADATA:
            (fmt, image, max_size), metadata = data
            metadata = {**metadata, "image_type": "image/png" if fmt == "PNG" else "image/jpeg"}
            meta = json.dumps(metadata).encode()
            body = struct.pack(">I", len(meta)) + meta + _encode(_fit(image, max_size), fmt)
            await self._deliver(struct.pack(">I", PREVIEW_IMAGE_WITH_METADATA) + body, sid)
        elif isinstance(data, bytes | bytearray):
            await self._deliver(struct.pack(">I", event) + bytes(data), sid)
        else:
            await self._deliver({"type": event, "data": data}, sid)

    async def _deliver(self, message: Any, sid: str | None) -> None:
        if self.silent:
            return
        if sid is None:
            targets = list(self.sockets.values())
        elif sid in self.sockets:
            targets = [self.sockets[sid]]
        else:
            return
        for ws in targets:
            try:
                if isinstance(message, bytes):
                    await ws.send_bytes(message)
                else:
                    await ws.send_json(message)
            except SEND_ERRORS:
                pass  # ComfyUI logs "send error" and carries on

    def close_all_abruptly(self) -> int:
        """Drop every socket's TCP connection without a close frame."""
        for transport in list(self.live.values()):
            transport.abort()
        return len(self.live)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        if self.new:
            return await self._handle_2026(request)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.rel_url.query.get("clientId", "")
        if sid:
            self.sockets.pop(sid, None)
        else:
            sid = uuid.uuid4().hex
        self.sockets[sid] = ws
        self.metadata[sid] = {"feature_flags": {}}
        self.live[ws] = request.transport
        try:
            await self.send("status", {"status": self.queue_info(), "sid": sid}, sid)
            await self._announce_running(sid)
            await self._read(ws, sid, credential_prelude=False)
        finally:
            self.live.pop(ws, None)
            self.sockets.pop(sid, None)
            self.metadata.pop(sid, None)
        return ws

    async def _handle_2026(self, request: web.Request) -> web.WebSocketResponse:
        sid = request.rel_url.query.get("clientId", "")
        existing = self.metadata.get(sid) if sid else None
        if existing is not None and sid not in self.sockets:
            self.metadata.pop(sid, None)
            existing = None
        known_key = existing.get("credential_key") if existing else None
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        if known_key is not None and not await self._credential_ok(ws, known_key):
            await ws.close(
                code=aiohttp.WSCloseCode.POLICY_VIOLATION, message=b"Invalid client credentials"
            )
            return ws
        if sid:
            self.sockets.pop(sid, None)
        else:
            sid = uuid.uuid4().hex
        self.sockets[sid] = ws
        key = known_key or secrets.token_urlsafe(32)  # every stand-in peer is loopback
        connection = secrets.token_hex(16)
        self.metadata[sid] = {
            "feature_flags": {},
            "connection_id": connection,
            "credential_key": key,
        }
        self.live[ws] = request.transport
        try:
            status = {"status": self.queue_info(), "sid": sid, "credential_key": key}
            await self.send("status", status, sid)
            await self._announce_running(sid)
            await self._read(ws, sid, credential_prelude=known_key is None)
        finally:
            self.live.pop(ws, None)
            if self.metadata.get(sid, {}).get("connection_id") == connection:
                self.sockets.pop(sid, None)
                self.metadata.pop(sid, None)
        return ws

    async def _credential_ok(self, ws: web.WebSocketResponse, expected: str) -> bool:
        try:
            message = await ws.receive(timeout=5)
            data = json.loads(message.data) if message.type == aiohttp.WSMsgType.TEXT else {}
        except (TimeoutError, json.JSONDecodeError):
            data = {}
        payload = data.get("data") if isinstance(data, dict) else None
        presented = payload.get("credential_key") if isinstance(payload, dict) else None
        if not isinstance(data, dict) or data.get("type") != "credential_auth":
            presented = None
        return isinstance(presented, str) and hmac.compare_digest(presented, expected)

    async def _announce_running(self, sid: str) -> None:
        if self.client_id == sid and self.last_node_id is not None:
            await self.send("executing", {"node": self.last_node_id}, sid)

    async def _read(self, ws: web.WebSocketResponse, sid: str, credential_prelude: bool) -> None:
        first = True
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                data = json.loads(message.data)
            except json.JSONDecodeError:
                continue
            if not isinstance(data, dict):
                first = False
                continue
            if first and credential_prelude and data.get("type") == "credential_auth":
                credential_prelude = False
                continue  # the first-message slot stays open for feature_flags
            if first and data.get("type") == "feature_flags":
                self.metadata[sid]["feature_flags"] = data.get("data", {})
                await self.send("feature_flags", self.server_features(), sid)
            first = False


def _fit(image: Image.Image, max_size: int | None) -> Image.Image:
    if max_size is None:
        return image
    return ImageOps.contain(image, (max_size, max_size), Image.Resampling.BILINEAR)


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, quality=95, compress_level=1)
    return buffer.getvalue()
