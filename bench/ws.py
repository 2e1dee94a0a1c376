"""Minimal WebSocket client pieces (RFC 6455, no extensions) for the observers."""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from collections.abc import Callable
from typing import cast

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10

OnMessage = Callable[[bytes, float], None]


def handshake(port: int, path: str = "/ws") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def client_frame(opcode: int, payload: bytes = b"") -> bytes:
    """A masked, final client frame (payloads here are control-sized)."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


class FrameReader:
    """Incremental parser of server frames; reassembles fragmented messages."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self._parts: list[bytes] = []
        self._op = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Add bytes; return complete (opcode, payload) messages and control frames."""
        self.buf += data
        out: list[tuple[int, bytes]] = []
        buf = self.buf
        pos = 0
        while len(buf) - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            hdr = 2
            if n == 126:
                if len(buf) - pos < 4:
                    break
                n = struct.unpack_from("!H", buf, pos + 2)[0]
                hdr = 4
            elif n == 127:
                if len(buf) - pos < 10:
                    break
                n = struct.unpack_from("!Q", buf, pos + 2)[0]
                hdr = 10
            if b1 & 0x80:
                hdr += 4  # servers must not mask; tolerate it by skipping the key
            if len(buf) - pos < hdr + n:
                break
            payload = bytes(buf[pos + hdr : pos + hdr + n])
            pos += hdr + n
            self._frame(b0 & 0x80, b0 & 0x0F, payload, out)
        del buf[:pos]
        return out

    def _frame(self, fin: int, op: int, payload: bytes, out: list[tuple[int, bytes]]) -> None:
        if op >= OP_CLOSE:
            out.append((op, payload))
            return
        if op != OP_CONT:
            self._op, self._parts = op, []
        self._parts.append(payload)
        if fin:
            out.append((self._op, b"".join(self._parts)))
            self._parts = []


def split_response(buf: bytes) -> tuple[int, bytes] | None:
    """(status, rest after the headers) once the handshake answer is complete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    return int(buf[9:12]), buf[end + 4 :]


class _Observer(asyncio.Protocol):
    def __init__(self, port: int, on_message: OnMessage) -> None:
        self.port = port
        self.on_message = on_message
        self.reader = FrameReader()
        self.head = b""
        self.open = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        transport.write(handshake(self.port))

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if not self.open.done():
            self.head += data
            parsed = split_response(self.head)
            if parsed is None:
                return
            status, data = parsed
            if status != 101:
                self.open.set_exception(ConnectionError(f"/ws answered {status}"))
                assert self.transport is not None
                self.transport.close()
                return
            self.open.set_result(None)
        for op, payload in self.reader.feed(data):
            self._handle(op, payload, now)

    def _handle(self, op: int, payload: bytes, now: float) -> None:
        assert self.transport is not None
        if op in (OP_TEXT, OP_BINARY):
            self.on_message(payload, now)
        elif op == OP_PING:
            self.transport.write(client_frame(OP_PONG, payload))
        elif op == OP_CLOSE:
            self.transport.write(client_frame(OP_CLOSE, payload[:2]))
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.open.done():
            self.open.set_exception(exc or ConnectionError("/ws closed during handshake"))
        if not self.closed.done():
            self.closed.set_result(exc)


class Observer:
    """One asyncio WebSocket connection that hands every message to a callback."""

    def __init__(self, port: int, on_message: OnMessage) -> None:
        self.port = port
        self.on_message = on_message
        self.proto: _Observer | None = None

    async def __aenter__(self) -> Observer:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(
            lambda: _Observer(self.port, self.on_message), "127.0.0.1", self.port
        )
        self.proto = proto
        await asyncio.wait_for(proto.open, 10)
        return self

    @property
    def is_closed(self) -> bool:
        return self.proto is None or self.proto.closed.done()

    async def __aexit__(self, *exc: object) -> None:
        if self.proto and self.proto.transport and not self.proto.transport.is_closing():
            self.proto.transport.write(client_frame(OP_CLOSE, struct.pack("!H", 1000)))
            self.proto.transport.close()
