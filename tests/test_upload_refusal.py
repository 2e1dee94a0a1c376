"""A refused upload's 413 reaches a client that keeps writing (the server's lingering close).

A client that writes its whole body before reading (as httpx and browsers often do) used
to get a connection reset instead of the answer: the server closed while the body still
came in, and the kernel's reset ends the client's write (and on many systems discards the
answer). Now the server answers, ends its side, and reads and drops the rest for a bounded
time and number of bytes (MYSPINBOT_LINGER_BYTES) before it closes.

The 2 GB clients below send until the server stops reading: with the allowance set to
32 MiB here, each round moves about 33 MiB over loopback, so forty rounds take seconds on
a 2-core machine. With the default allowance (4 GiB) a 2 GB body is read to its end
(about 1.5-2.5 s each on this machine; not repeated here).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Server, job_files, running_server

MiB = 1024 * 1024
LIMIT = MiB
ALLOWANCE = 32 * MiB
TWO_GB = 2 * 1000**3
BLOCK = 1 * MiB
BOUNDARY = b"limit"
PART_HEAD = (
    b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="images"; '
    b'filename="big.png"\r\nContent-Type: image/png\r\n\r\n'
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("refusal") / "data"
    with running_server(
        data,
        MYSPINBOT_MAX_REQUEST_BYTES=str(LIMIT),
        MYSPINBOT_MAX_IMAGE_BYTES=str(64 * MiB),
        MYSPINBOT_LINGER_BYTES=str(ALLOWANCE),
        MYSPINBOT_INPROCESS_WORKERS="0",
        MYSPINBOT_ACCESS_LOG="false",
    ) as live:
        yield live


def request_head(path: str, total: int | None, content_type: str) -> bytes:
    framing = "Transfer-Encoding: chunked" if total is None else f"Content-Length: {total}"
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"{framing}\r\n\r\n"
    ).encode()


def send_body(sock: socket.socket, total: int, chunked: bool, first: bytes = b"") -> int:
    """Write `total` body bytes (the first ones `first`); stop at a failed write."""
    payload = first + b"\0" * (BLOCK - len(first))
    sent = 0
    try:
        while sent < total:
            block = payload if sent == 0 else b"\0" * BLOCK
            block = block[: total - sent]
            sock.sendall(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
            sent += len(block)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


def read_answer(sock: socket.socket) -> tuple[int, dict, bool]:
    """(status, JSON body, whether the server ended with a reset) of what it sent."""
    received = b""
    reset = False
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            reset = True
            break
        if not data:
            break
        received += data
    head, _, body = received.partition(b"\r\n\r\n")
    assert head, "the server sent no answer"
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body), reset


def upload(
    server: Server, path: str, total: int, *, chunked: bool, content_type: str, first: bytes = b""
) -> tuple[int, int, dict, bool]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(request_head(path, None if chunked else total, content_type))
        sent = send_body(sock, total, chunked, first)
        status, body, reset = read_answer(sock)
    return sent, status, body, reset


def multipart(server: Server, total: int, chunked: bool) -> tuple[int, int, dict, bool]:
    content_type = f"multipart/form-data; boundary={BOUNDARY.decode()}"
    return upload(
        server, "/api/train", total, chunked=chunked, content_type=content_type, first=PART_HEAD
    )


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_a_client_that_keeps_writing_2_gb_reads_the_413_twenty_times(
    server: Server, chunked: bool
) -> None:
    multipart(server, 4 * MiB, chunked)  # warm up before measuring memory
    assert server.proc is not None
    rss_before = rss_bytes(server.proc.pid)
    for _ in range(20):
        sent, status, body, _ = multipart(server, TWO_GB, chunked)
        assert status == 413, body
        assert body["error"]["code"] == "too_large"
        assert body["error"]["message"] == f"the upload is larger than {LIMIT} bytes"
        # The server went on reading after its answer instead of resetting at once.
        assert sent > LIMIT + ALLOWANCE // 2, sent
    assert rss_bytes(server.proc.pid) - rss_before < 64 * MiB
    assert job_files(server.data_dir) <= {"uploads/.staging"}
    assert not list((server.data_dir / "uploads" / ".staging").glob("*"))


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_a_client_that_writes_its_whole_body_first_reads_the_413(
    server: Server, chunked: bool
) -> None:
    sent, status, body, reset = multipart(server, 24 * MiB, chunked)
    assert sent == 24 * MiB  # every write went through
    assert status == 413 and body["error"]["code"] == "too_large"
    assert not reset  # the server ended with its answer, not with a reset


def test_an_oversized_json_body_gets_its_413_too(server: Server) -> None:
    sent, status, body, reset = upload(
        server, "/api/generate", 8 * MiB, chunked=False, content_type="application/json"
    )
    assert sent == 8 * MiB
    assert status == 413 and not reset
    assert body["error"]["code"] == "too_large"
