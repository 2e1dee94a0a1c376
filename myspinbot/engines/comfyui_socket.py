"""ComfyUI's /ws: connect with our clientId, announce preview metadata, read typed events.

Text frames are `{"type": ..., "data": {...}}`. Binary frames start with a big-endian
uint32 event type: 1 is a preview image (a uint32 format, 1 JPEG or 2 PNG, then the
bytes), 4 a preview with metadata (a uint32 length, that much JSON naming node and
prompt, then the bytes; sent only to clients that declared `supports_preview_metadata`
in their first message, which this one does). Other binary types are ignored.
The credential key of newer servers is never logged: it is a secret of the connection.
"""

from __future__ import annotations

import base64
import contextlib
import json
import struct
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException
from websockets.sync.client import ClientConnection, connect

from .comfyui_http import ComfyUIServer, split_url
from .errors import EngineUnreachable

PREVIEW_IMAGE = 1
PREVIEW_IMAGE_WITH_METADATA = 4
IMAGE_FORMATS = {1: "image/jpeg", 2: "image/png"}
MAX_FRAME_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Event:
    type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Preview:
    """A preview frame; prompt_id and node_id are known only from type-4 frames."""

    image: bytes
    mime: str
    prompt_id: str | None = None
    node_id: str | None = None


class SocketLost(Exception):
    """The socket closed or failed; the caller reconciles through HTTP and reconnects."""


def socket_url(server: ComfyUIServer, client_id: str) -> tuple[str, tuple[str, str] | None]:
    base, params, basic = split_url(server.url)
    scheme = "wss" if base.startswith("https") else "ws"
    query = urlencode({**params, "clientId": client_id})
    return f"{scheme}{base[base.index(':') :]}/ws?{query}", basic


def parse_binary(frame: bytes) -> Preview | None:
    if len(frame) < 8:
        return None
    (kind,) = struct.unpack(">I", frame[:4])
    if kind == PREVIEW_IMAGE:
        (image_format,) = struct.unpack(">I", frame[4:8])
        return Preview(image=frame[8:], mime=IMAGE_FORMATS.get(image_format, "image/jpeg"))
    if kind == PREVIEW_IMAGE_WITH_METADATA:
        (length,) = struct.unpack(">I", frame[4:8])
        try:
            meta = json.loads(frame[8 : 8 + length])
        except ValueError:
            return None
        if not isinstance(meta, dict):
            return None
        return Preview(
            image=frame[8 + length :],
            mime=str(meta.get("image_type") or "image/png"),
            prompt_id=meta.get("prompt_id"),
            node_id=None if meta.get("node_id") is None else str(meta["node_id"]),
        )
    return None


class EventSocket:
    """One connection to /ws?clientId=…; `receive` returns an Event, a Preview or None."""

    def __init__(
        self, server: ComfyUIServer, client_id: str, credential_key: str | None = None
    ) -> None:
        self.server = server
        self.client_id = client_id
        # Newer ComfyUI (2026) hands out a key in its first status frame and, when the same
        # clientId reconnects while it still holds that client's state, wants it back as the
        # first message (else it closes with 1008). Older servers ignore the message.
        self.credential_key = credential_key
        self.connection: ClientConnection | None = None

    def open(self) -> EventSocket:
        url, basic = socket_url(self.server, self.client_id)
        headers: dict[str, str] = {}
        if self.server.token:
            headers["Authorization"] = f"Bearer {self.server.token}"
        elif basic:
            pair = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {pair}"
        try:
            self.connection = connect(
                url,
                additional_headers=headers,
                open_timeout=self.server.timeout,
                max_size=MAX_FRAME_BYTES,
                proxy=None,
                compression=None,
            )
            if self.credential_key:
                auth = {"credential_key": self.credential_key}
                self.connection.send(json.dumps({"type": "credential_auth", "data": auth}))
            self.connection.send(
                json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
            )
        except (OSError, TimeoutError, WebSocketException, InvalidURI, InvalidHandshake) as exc:
            self.close()
            raise EngineUnreachable(
                f"cannot open ComfyUI's event socket at {self.server.shown} ({type(exc).__name__})"
            ) from None
        return self

    def receive(self, timeout: float) -> Event | Preview | None:
        """The next frame we understand; None after `timeout` seconds of silence."""
        if self.connection is None:
            raise SocketLost("not connected")
        try:
            frame = self.connection.recv(timeout=timeout)
        except TimeoutError:
            return None
        except (OSError, WebSocketException) as exc:
            raise SocketLost(type(exc).__name__) from None
        if isinstance(frame, bytes):
            return parse_binary(frame)
        try:
            message = json.loads(frame)
        except ValueError:
            return Event("unreadable", {})
        if not isinstance(message, dict) or not isinstance(message.get("data"), dict):
            return Event(str(message.get("type")) if isinstance(message, dict) else "?", {})
        event = Event(str(message.get("type")), message["data"])
        if event.type == "status" and isinstance(event.data.get("credential_key"), str):
            self.credential_key = event.data["credential_key"]
        return event

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(OSError, WebSocketException):
                self.connection.close()
            self.connection = None

    def __enter__(self) -> EventSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
