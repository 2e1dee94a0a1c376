"""The embedded redis-server, against real processes."""

from __future__ import annotations

import logging
import os
import selectors
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from myspinbot.config import embedded_redis_url, embedded_socket_path
from myspinbot.server.embedded_redis import EmbeddedRedis
from myspinbot.server.processes import PidLock, pid_alive
from myspinbot.server.redis_binary import RedisSetupError, choose_server

ROOT = Path(__file__).resolve().parents[1]

OWNER_SCRIPT = """
import sys, time
from pathlib import Path
from myspinbot.server.embedded_redis import EmbeddedRedis

server = EmbeddedRedis(Path(sys.argv[1]))
server.start()
print(server.pid, flush=True)
time.sleep(60)
"""


def wait_until(predicate: Callable[[], object], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


@contextmanager
def client(url: str) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(
        url, socket_timeout=5, socket_connect_timeout=5, decode_responses=True
    )
    try:
        yield conn
    finally:
        conn.close()


def dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


@pytest.fixture
def make_server() -> Iterator[Callable[..., EmbeddedRedis]]:
    servers: list[EmbeddedRedis] = []

    def make(data_dir: Path, **kwargs: Callable[[], None]) -> EmbeddedRedis:
        server = EmbeddedRedis(data_dir, **kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def test_serves_owner_only_unix_socket_with_aof_and_noeviction(tmp_path, make_server):
    server = make_server(tmp_path)
    server.start()

    assert server.url == embedded_redis_url(tmp_path) == f"unix://{embedded_socket_path(tmp_path)}"
    mode = os.stat(embedded_socket_path(tmp_path)).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o700
    with client(server.url) as conn:
        assert conn.ping()
        assert conn.config_get("port") == {"port": "0"}
        assert conn.config_get("appendonly") == {"appendonly": "yes"}
        assert conn.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    assert (tmp_path / "redis" / "VERSION").read_text().strip() == choose_server().build.to_record()
    assert int((tmp_path / "redis" / "redis.pid").read_text()) == server.pid


def test_data_persists_across_stop_and_start(tmp_path, make_server):
    server = make_server(tmp_path)
    server.start()
    with client(server.url) as conn:
        conn.set("greeting", "hello")
    pid = server.pid
    server.stop()
    server.stop()  # idempotent
    assert server.pid is None and not pid_alive(pid)
    assert not embedded_socket_path(tmp_path).exists()

    again = make_server(tmp_path)
    again.start()
    with client(again.url) as conn:
        assert conn.get("greeting") == "hello"


def test_second_server_on_same_data_dir_is_refused(tmp_path, make_server):
    first = make_server(tmp_path)
    first.start()

    with pytest.raises(RedisSetupError) as refused:
        make_server(tmp_path).start()

    message = str(refused.value)
    assert "already using data dir" in message and str(tmp_path.resolve()) in message
    assert f"pid {os.getpid()}" in message and "MYSPINBOT_DATA_DIR" in message
    with client(first.url) as conn:
        assert conn.ping()


# Holds a data dir's lock as a dead server's last redis process would: the lock file names
# a process that is gone, and the lock is released when a line arrives on stdin.
LINGERING_HOLDER = """
import fcntl, os, subprocess, sys
gone = subprocess.Popen(["true"]); gone.wait()
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0); os.pwrite(fd, f"{gone.pid}\\n".encode(), 0)
print("held", flush=True)
sys.stdin.readline()
"""


class WaitingForLock(logging.Handler):
    """Set once the embedded server says it is waiting for its data dir's lock."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "waiting for its lock" in record.getMessage():
            self.seen.set()


def test_a_lock_held_after_its_server_died_is_waited_for(tmp_path, make_server, caplog):
    (tmp_path / "redis").mkdir()
    caplog.set_level(logging.INFO, logger="myspinbot.redis")  # restored after the test
    handler = WaitingForLock()
    logger = logging.getLogger("myspinbot.redis")
    logger.addHandler(handler)
    command = [sys.executable, "-c", LINGERING_HOLDER, str(tmp_path / "redis" / "lock")]
    holder = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        server = make_server(tmp_path)
        failures: list[BaseException] = []

        def start() -> None:
            try:
                server.start()
            except BaseException as exc:  # reported by the assertion below
                failures.append(exc)

        starter = threading.Thread(target=start)
        starter.start()
        assert handler.seen.wait(10), "start() did not wait for the lock"
        assert holder.stdin is not None
        holder.stdin.write("release\n")
        holder.stdin.flush()
        starter.join(30)
        assert failures == [] and not starter.is_alive()
        with client(server.url) as conn:
            assert conn.ping()
    finally:
        logger.removeHandler(handler)
        holder.kill()
        holder.wait()


def test_supervisor_restarts_killed_redis_and_keeps_data(tmp_path, make_server):
    restarted = threading.Event()
    server = make_server(tmp_path, on_restart=restarted.set)
    server.start()
    server.supervise()
    with client(server.url) as conn:
        conn.set("survives", "yes")
    old_pid = server.pid
    assert old_pid is not None

    os.kill(old_pid, signal.SIGKILL)

    assert restarted.wait(10)
    assert server.pid not in (None, old_pid)
    with client(server.url) as conn:
        assert conn.get("survives") == "yes"


def test_kill_9_of_owner_leaves_no_redis_and_restart_keeps_data(tmp_path, make_server):
    command = [sys.executable, "-c", OWNER_SCRIPT, str(tmp_path)]
    redis_pid = 0
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as owner:
        try:
            assert owner.stdout is not None
            with selectors.DefaultSelector() as selector:
                selector.register(owner.stdout, selectors.EVENT_READ)
                assert selector.select(timeout=10), "the owner did not report its redis pid"
            redis_pid = int(owner.stdout.readline())
            with client(embedded_redis_url(tmp_path)) as conn:
                conn.set("kept", "1")

            owner.kill()
            owner.wait(5)

            assert wait_until(lambda: not pid_alive(redis_pid)), "redis-server outlived its owner"
        finally:
            owner.kill()
            if redis_pid and pid_alive(redis_pid):
                os.kill(redis_pid, signal.SIGKILL)

    server = make_server(tmp_path)
    server.start()
    with client(server.url) as conn:
        assert conn.get("kept") == "1"


def test_orphaned_redis_from_an_earlier_run_is_ended(tmp_path, make_server):
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    lock = PidLock(redis_dir / "lock")
    assert lock.acquire()
    (redis_dir / "lock").write_text(f"{dead_pid()}\n")  # the owner that started it is gone
    orphan = subprocess.Popen(
        [choose_server().path, "--port", "0", "--save", "", "--appendonly", "yes",
         "--unixsocket", str(embedded_socket_path(tmp_path)), "--dir", str(redis_dir),
         "--pidfile", str(redis_dir / "redis.pid")],
        cwd=redis_dir,
        pass_fds=(lock.fd,),
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        lock.release()  # only the orphan holds the lock now
        assert wait_until(lambda: (redis_dir / "redis.pid").exists())

        server = make_server(tmp_path)
        server.start()

        assert orphan.wait(10) is not None
        assert server.pid != orphan.pid
        with client(server.url) as conn:
            assert conn.ping()
    finally:
        orphan.kill()
        orphan.wait(5)


def test_stale_socket_and_pidfile_are_cleaned(tmp_path, make_server):
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    (redis_dir / "redis.pid").write_text(f"{dead_pid()}\n")
    with socket.socket(socket.AF_UNIX) as leftover:
        leftover.bind(str(embedded_socket_path(tmp_path)))  # stays on disk after close

    server = make_server(tmp_path)
    server.start()
    with client(server.url) as conn:
        assert conn.ping()
    assert int((redis_dir / "redis.pid").read_text()) == server.pid

    # A crash leaves both behind; stop() still removes them.
    crashed = server.pid
    assert crashed is not None
    os.kill(crashed, signal.SIGKILL)
    assert wait_until(lambda: server.pid is None)
    assert (redis_dir / "redis.pid").exists()
    server.stop()
    assert not (redis_dir / "redis.pid").exists()
    assert not embedded_socket_path(tmp_path).exists()


def test_data_dir_last_run_by_newer_redis_is_refused(tmp_path, make_server):
    (tmp_path / "redis").mkdir()
    current = choose_server().build
    (tmp_path / "redis" / "VERSION").write_text(f"{current.flavor} 99.1.0\n")

    with pytest.raises(RedisSetupError) as refused:
        make_server(tmp_path).start()

    assert "99.1.0" in str(refused.value) and current.label in str(refused.value)
    assert "one-way" in str(refused.value)
    # The refusal released the data dir.
    (tmp_path / "redis" / "VERSION").write_text(f"{current.to_record()}\n")
    make_server(tmp_path).start()


def test_long_data_dir_puts_socket_in_short_private_dir(tmp_path, make_server):
    data_dir = tmp_path / ("deep-" * 25)
    assert len(str(data_dir)) > 110
    path = embedded_socket_path(data_dir)
    assert len(os.fsencode(path)) < 100 and not path.is_relative_to(data_dir)
    assert embedded_socket_path(data_dir) == path  # deterministic

    server = make_server(data_dir)
    server.start()

    assert stat.S_IMODE(os.lstat(path.parent).st_mode) == 0o700
    with client(server.url) as conn:
        conn.set("k", "v")
        assert conn.get("k") == "v"
    server.stop()
    assert not path.parent.exists()


def test_arm_parent_death_signal_reports_a_parent_already_gone():
    script = """
import os
from myspinbot.lifeline import ParentGoneError, arm_parent_death_signal
assert arm_parent_death_signal(expected_parent=os.getppid())
try:
    arm_parent_death_signal(expected_parent=os.getppid() + 1)
except ParentGoneError:
    print("gone")
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=10)  # fmt: skip
    assert done.stdout.strip() == "gone", done.stderr
