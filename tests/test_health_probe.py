"""`myspinbot health`: the container health check of a worker (heartbeat file) and a server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from reliability_support import api_server, redis_server, reliability_env, replicas
from support import ROOT, wait_until

from myspinbot.jobs import keys
from myspinbot.jobs.keys import WORKER_TTL_MS
from myspinbot.server.health_check import check_worker


def health(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "myspinbot.cli", "health", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_worker_is_healthy_while_it_beats_and_not_once_stopped(
    redis_binary: str, tmp_path: Path
) -> None:
    beat = tmp_path / "worker.beat"
    with redis_server(redis_binary, tmp_path / "redis") as store:
        env = reliability_env(tmp_path / "data", store.url, MYSPINBOT_HEARTBEAT_FILE=str(beat))
        assert health("--worker", env=env).returncode == 1  # no beat yet
        with replicas(env, tmp_path, 1) as (replica,):
            wait_until(beat.exists, 60, "the first heartbeat")
            # No flag: the file says this container runs a worker; no HTTP server is needed.
            assert health(env=env).returncode == 0
            assert health("--worker", env=env).returncode == 0
            assert health("--http", env=env).returncode == 1
            replica.signal(signal.SIGINT)
            assert replica.wait() == 0
        result = health("--worker", env=env)
        assert result.returncode == 1
        assert "no heartbeat" in result.stderr


def test_a_heartbeat_older_than_the_live_window_is_unhealthy(tmp_path: Path) -> None:
    beat = tmp_path / "worker.beat"
    beat.write_text("host:1:abcd 0\n")
    assert check_worker(beat) is None
    stale = time.time() - WORKER_TTL_MS / 1000 - 1
    os.utime(beat, (stale, stale))
    assert "last heartbeat" in (check_worker(beat) or "")


def test_a_server_is_healthy_while_its_health_answers(redis_binary: str, tmp_path: Path) -> None:
    with redis_server(redis_binary, tmp_path / "redis") as store:
        env = reliability_env(tmp_path / "data", store.url, MYSPINBOT_INPROCESS_WORKERS="0")
        port = env["MYSPINBOT_PORT"]
        with api_server(tmp_path / "data", env):
            assert health(env=env).returncode == 0
            assert health("--http", "--port", port).returncode == 0
        result = health(env=env)
        assert result.returncode == 1
        assert "unreachable" in result.stderr


def test_a_heartbeat_file_that_cannot_be_written_leaves_the_redis_beats_alone(
    redis_binary: str, tmp_path: Path
) -> None:
    beat = tmp_path / "missing-dir" / "worker.beat"  # its folder does not exist
    with redis_server(redis_binary, tmp_path / "redis") as store:
        env = reliability_env(tmp_path / "data", store.url, MYSPINBOT_HEARTBEAT_FILE=str(beat))
        with replicas(env, tmp_path, 1) as (replica,):
            wait_until(lambda: "cannot be written" in replica.log(), 60, "the warning")
            client = store.client()
            first = wait_until(
                lambda: client.zrange(keys.workers("generate"), 0, -1, withscores=True), 30
            )
            wait_until(
                lambda: client.zrange(keys.workers("generate"), 0, -1, withscores=True) != first,
                30,
                "a later Redis beat",
            )
            client.close()
            assert replica.log().count("cannot be written") == 1
