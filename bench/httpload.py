"""A small closed-loop HTTP/1.1 load client on raw keep-alive sockets (asyncio protocols).

Each connection sends one request, waits for the whole response, records its latency,
and sends the next one: the same model as wrk, but every request's latency is kept.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import cast

OnResponse = Callable[[int, bytes], None]


def build_request(
    method: str, path: str, port: int, body: bytes = b"", content_type: str = "application/json"
) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    if body or method in ("POST", "PUT"):
        head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


@dataclass
class LoadResult:
    """What a load phase saw."""

    statuses: Counter[int] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())


def _parse_one(buf: bytearray) -> tuple[int, bytes, int, bool] | None:
    """Parse one complete response at the start of buf: (status, body, consumed, close)."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).lower()
    status = int(head[9:12])
    close = b"\r\nconnection: close" in head
    start = end + 4
    i = head.find(b"\r\ncontent-length:")
    if i >= 0:
        j = head.find(b"\r\n", i + 2)
        length = int(head[i + 17 : j if j >= 0 else len(head)])
        if len(buf) < start + length:
            return None
        return status, bytes(buf[start : start + length]), start + length, close
    if b"\r\ntransfer-encoding: chunked" in head:
        return _parse_chunked(buf, status, start, close)
    return status, b"", start, close


def _parse_chunked(
    buf: bytearray, status: int, pos: int, close: bool
) -> tuple[int, bytes, int, bool] | None:
    body = bytearray()
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        if len(buf) < eol + 2 + size + 2:
            return None
        body += buf[eol + 2 : eol + 2 + size]
        pos = eol + 2 + size + 2
        if size == 0:
            return status, bytes(body), pos, close


class _Conn(asyncio.Protocol):
    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.buf = bytearray()
        self.sent_at = 0.0
        self.inflight = False
        self.transport: asyncio.Transport | None = None
        self.done = pool.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        request = self.pool.take()
        if request is None:
            self.transport.close()
            return
        self.sent_at = time.perf_counter()
        self.inflight = True
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        parsed = _parse_one(self.buf)
        if parsed is None:
            return
        status, body, used, close = parsed
        del self.buf[:used]
        self.inflight = False
        self.pool.record(status, body, (time.perf_counter() - self.sent_at) * 1000.0)
        if close:
            assert self.transport is not None
            self.transport.close()
        else:
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.inflight and exc is None:
            exc = ConnectionError("connection closed with a request in flight")
        if not self.done.done():
            self.done.set_result(exc)


class _Pool:
    def __init__(
        self,
        request: bytes | Iterator[bytes],
        duration: float | None,
        total: int | None,
        on_response: OnResponse | None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.request = request
        self.deadline = time.perf_counter() + duration if duration else float("inf")
        self.remaining = total if total is not None else -1
        self.on_response = on_response
        self.result = LoadResult()

    @property
    def finished(self) -> bool:
        return time.perf_counter() >= self.deadline or self.remaining == 0

    def take(self) -> bytes | None:
        if self.finished:
            return None
        if isinstance(self.request, bytes):
            if self.remaining > 0:
                self.remaining -= 1
            return self.request
        nxt = next(self.request, None)
        if nxt is None:
            self.remaining = 0
        return nxt

    def record(self, status: int, body: bytes, ms: float) -> None:
        self.result.statuses[status] += 1
        self.result.latencies_ms.append(ms)
        if self.on_response is not None:
            self.on_response(status, body)


async def run_load(
    port: int,
    request: bytes | Iterator[bytes],
    conns: int,
    *,
    duration: float | None = None,
    total: int | None = None,
    on_response: OnResponse | None = None,
    hard_timeout: float = 600.0,
) -> LoadResult:
    """Closed loop over `conns` keep-alive connections until `duration` s or `total` requests.

    `request` is sent again and again, or, as an iterator, each of its items once.
    A connection the server closes is reopened while there is work left.
    """
    pool = _Pool(request, duration, total, on_response)
    t0 = time.perf_counter()
    hard = t0 + hard_timeout

    async def worker() -> None:
        while time.perf_counter() < hard:
            try:
                _, conn = await pool.loop.create_connection(lambda: _Conn(pool), "127.0.0.1", port)
                exc = await asyncio.wait_for(conn.done, max(0.1, hard - time.perf_counter()))
            except (TimeoutError, OSError):
                exc = OSError("connect/read failed")
            if exc is not None:
                pool.result.errors += 1
                await asyncio.sleep(0.01)
            if pool.finished:
                return

    await asyncio.gather(*(worker() for _ in range(conns)))
    pool.result.elapsed = time.perf_counter() - t0
    return pool.result


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of unsorted values; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(q / 100.0 * len(ordered)) - 1))
    return ordered[k]
