"""Fan-out client process: N WebSocket clients on one epoll loop.

Every read takes the kernel's receive timestamp (SO_TIMESTAMPNS), so the delay of
a `done` event is measured to the moment it reached the client's socket, not to
when this process got round to it; the user-space time is kept too, to show the gap.

Protocol with the parent: prints `READY <open> <failed>` once connected, then reads
`STOP` on stdin, drains briefly and writes its records as JSON to --out.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import resource
import select
import socket
import struct
import sys
import time
from pathlib import Path

from bench.ws import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameReader,
    client_frame,
    handshake,
    split_response,
)

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
CMSG_SPACE = socket.CMSG_SPACE(16)


class Client:
    def __init__(self, idx: int, port: int) -> None:
        self.idx = idx
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.state = "connecting"
        self.head = b""
        self.reader = FrameReader()
        self.records: list[tuple[float, float, bytes]] = []
        self.messages = 0
        rc = self.sock.connect_ex(("127.0.0.1", port))
        if rc not in (0, errno.EINPROGRESS):
            raise OSError(rc, "connect failed")


class Fan:
    def __init__(self, port: int) -> None:
        self.port = port
        self.ep = select.epoll()
        self.by_fd: dict[int, Client] = {}
        self.failed = 0
        self.dropped = 0

    def add(self, idx: int) -> None:
        try:
            c = Client(idx, self.port)
        except OSError:
            self.failed += 1
            return
        self.by_fd[c.sock.fileno()] = c
        self.ep.register(c.sock.fileno(), select.EPOLLOUT)

    def pending(self) -> int:
        return sum(1 for c in self.by_fd.values() if c.state in ("connecting", "handshake"))

    def opened(self) -> int:
        return sum(1 for c in self.by_fd.values() if c.state == "open")

    def fail(self, c: Client, during_run: bool) -> None:
        if c.state != "closed":
            if c.state == "open" and during_run:
                self.dropped += 1
            elif c.state != "open":
                self.failed += 1
            c.state = "closed"
            self.ep.unregister(c.sock.fileno())
            c.sock.close()

    def on_event(self, fd: int, ev: int, during_run: bool) -> None:
        c = self.by_fd.get(fd)
        if c is None or c.state == "closed":
            return
        if c.state == "connecting":
            if c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) or ev & select.EPOLLERR:
                self.fail(c, during_run)
                return
            c.sock.send(handshake(self.port))
            c.state = "handshake"
            self.ep.modify(fd, select.EPOLLIN)
            return
        self.read(c, during_run)

    def read(self, c: Client, during_run: bool) -> None:
        try:
            data, anc, _, _ = c.sock.recvmsg(262144, CMSG_SPACE)
        except BlockingIOError:
            return
        except OSError:
            self.fail(c, during_run)
            return
        uts = time.time()
        if not data:
            self.fail(c, during_run)
            return
        kts = uts
        for level, kind, raw in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
                sec, nsec = struct.unpack("qq", raw[:16])
                kts = sec + nsec / 1e9
        if c.state == "handshake":
            c.head += data
            parsed = split_response(c.head)
            if parsed is None:
                return
            status, data = parsed
            if status != 101:
                self.fail(c, during_run)
                return
            c.state = "open"
        for op, payload in c.reader.feed(data):
            self.frame(c, op, payload, kts, uts)

    def frame(self, c: Client, op: int, payload: bytes, kts: float, uts: float) -> None:
        if op in (OP_TEXT, OP_BINARY):
            c.messages += 1
            if b'"done"' in payload and b'"snapshot"' not in payload[:64]:
                c.records.append((kts, uts, payload))
        elif op == OP_PING:
            c.sock.send(client_frame(OP_PONG, payload))
        elif op == OP_CLOSE:
            with contextlib.suppress(OSError):
                c.sock.send(client_frame(OP_CLOSE, payload[:2]))
            self.fail(c, True)


def connect_all(fan: Fan, n: int, concurrency: int, deadline: float) -> None:
    nxt = 0
    while time.monotonic() < deadline:
        while nxt < n and fan.pending() < concurrency:
            fan.add(nxt)
            nxt += 1
        if nxt >= n and fan.pending() == 0:
            return
        for fd, ev in fan.ep.poll(0.05):
            fan.on_event(fd, ev, during_run=False)
    for c in list(fan.by_fd.values()):
        if c.state in ("connecting", "handshake"):
            fan.fail(c, during_run=False)
    fan.failed += n - nxt


def run(fan: Fan, max_seconds: float, drain: float) -> None:
    stdin = sys.stdin.fileno()
    fan.ep.register(stdin, select.EPOLLIN)
    end = time.monotonic() + max_seconds
    stop_at = None
    while time.monotonic() < (stop_at or end):
        for fd, ev in fan.ep.poll(0.05):
            if fd == stdin:
                line = sys.stdin.readline()
                if not line or line.strip() == "STOP":
                    stop_at = time.monotonic() + drain
                    fan.ep.unregister(stdin)
                continue
            fan.on_event(fd, ev, during_run=True)


def results(fan: Fan) -> dict[str, object]:
    records = []
    for c in fan.by_fd.values():
        for kts, uts, payload in c.records:
            try:
                obj = json.loads(payload)
            except ValueError:
                continue
            if obj.get("type") == "done":
                job = obj.get("job") or {}
                records.append([c.idx, job.get("id"), job.get("finished_at"), kts, uts])
    return {
        "open_at_end": fan.opened(),
        "failed": fan.failed,
        "dropped": fan.dropped,
        "messages": sum(c.messages for c in fan.by_fd.values()),
        "records": records,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--clients", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--connect-timeout", type=float, default=60.0)
    ap.add_argument("--connect-concurrency", type=int, default=64)
    ap.add_argument("--max-seconds", type=float, default=300.0)
    ap.add_argument("--drain", type=float, default=0.5)
    args = ap.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, args.clients + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    fan = Fan(args.port)
    try:
        connect_all(
            fan, args.clients, args.connect_concurrency, time.monotonic() + args.connect_timeout
        )
        print(f"READY {fan.opened()} {fan.failed}", flush=True)
        run(fan, args.max_seconds, args.drain)
        args.out.write_text(json.dumps(results(fan)))
    finally:
        for c in fan.by_fd.values():
            c.sock.close()
        fan.ep.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
