"""Processes: several HTTP workers share events, restarts keep data, stops leave nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from support import (
    Events,
    alive,
    descendants,
    processes_using,
    running_server,
    train_files,
    wait_until,
)


def test_two_websocket_clients_on_two_http_workers_see_every_event(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", MYSPINBOT_HTTP_WORKERS="2") as server:
        # Many connections, so both HTTP workers (one listening socket) get some of them.
        clients = [Events(server.ws_url) for _ in range(8)]
        try:
            for client in clients:
                client.next()
            with server.client() as http:
                job = http.post("/api/generate", json={"prompt": "fan out"}).json()
            for client in clients:
                client.until(lambda f: f["job"]["id"] == job["id"] and f["type"] == "done")
                types = [f["type"] for f in client.for_job(job["id"])]
                assert types[0] == "queued" and types[-1] == "done", types
        finally:
            for client in clients:
                client.close()
        pids = {
            int(line.split("[")[1].split("]")[0])
            for line in server.log().splitlines()
            if "Starting worker" in line and "[" in line
        }
        assert len(pids) != 1  # informational: Sanic names workers differently across versions


def test_restart_keeps_finished_jobs_and_artifacts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_server(data) as server, server.client() as http:
        job = http.post("/api/train", files=train_files(1)).json()
        wait_until(lambda: http.get(f"/api/status/{job['id']}").json()["state"] == "completed")
        done = http.get(f"/api/status/{job['id']}").json()
        weights = http.get(done["artifacts"][0]["url"]).content
    with running_server(data) as server, server.client() as http:
        assert http.get(f"/api/status/{job['id']}").json() == done
        assert http.get(done["artifacts"][0]["url"]).content == weights
        assert job["id"] in [j["id"] for j in http.get("/api/jobs").json()["jobs"]]


def test_the_default_layout_is_one_python_process_and_its_redis(tmp_path: Path) -> None:
    with running_server(tmp_path / "data") as server, server.client() as http:
        (child,) = server.pids  # the embedded Redis is the only child
        name = Path(f"/proc/{child}/comm").read_text().strip()
        assert name in ("redis-server", "valkey-server"), name
        assert not descendants(child)
        # The workers of both queues live in the server process itself.
        health = http.get("/health").json()
        assert health["workers"] == {"train": 1, "generate": 1}
        job = http.post("/api/generate", json={"prompt": "one process"}).json()
        wait_until(lambda: http.get(f"/api/status/{job['id']}").json()["state"] == "completed")
        assert descendants(server.proc.pid) == {child}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stopping_the_server_leaves_no_process_behind(tmp_path: Path, sig: int) -> None:
    data = tmp_path / "data"
    with running_server(data) as server:
        children = set(server.pids)
        assert len(children) == 1  # the embedded Redis
        assert server.stop(sig) == 0
    wait_until(lambda: not any(alive(pid) for pid in children), message="children to exit")
    assert processes_using(data) == []


@pytest.mark.parametrize("http_workers", ["1", "2"])
def test_kill_9_of_the_main_process_orphans_nothing_and_restart_works(
    tmp_path: Path, http_workers: str
) -> None:
    data = tmp_path / "data"
    with running_server(data, MYSPINBOT_HTTP_WORKERS=http_workers) as server:
        children = set(server.pids)
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(10)
        wait_until(lambda: not any(alive(pid) for pid in children), message="orphans to exit")
        assert processes_using(data) == []
    with running_server(data) as server:
        assert httpx.get(server.url + "/health").json()["redis"] == "ok"


def test_second_server_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_server(data) as first:
        from support import Server, free_port, server_env

        port = free_port()
        second = Server(data, port, server_env(data, port))
        with pytest.raises(AssertionError, match="server exited"):
            second.start(timeout=20)
        assert second.proc.returncode == 1
        assert "myspinbot: cannot start: another MySpinBot server is already using data dir" in (
            second.log()
        )
        assert "Traceback" not in second.log()
        assert httpx.get(first.url + "/health").status_code == 200


def test_a_bad_variable_stops_python_app_py_with_one_clear_line(tmp_path: Path) -> None:
    from support import ROOT, server_env

    env = server_env(tmp_path / "data", 0, MYSPINBOT_PORT="eighty")
    done = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "myspinbot: configuration error: MYSPINBOT_PORT: expected int, got 'eighty'"
    )


def start_refused(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python app.py ARGS` (or `myspinbot serve ARGS`) that is expected to refuse to start."""
    from support import ROOT, server_env

    environment = server_env(tmp_path / "data", 0, **env)
    command = (
        [sys.executable, "-m", "myspinbot.cli", "serve", *args]
        if args
        else [
            sys.executable,
            "app.py",
        ]
    )
    return subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_stops_the_start_with_one_line_and_nothing_started(
    tmp_path: Path, workers: str
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = start_refused(tmp_path, MYSPINBOT_PORT=str(port), MYSPINBOT_HTTP_WORKERS=workers)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    line = done.stderr.strip()
    assert "\n" not in line, done.stderr
    assert line.startswith(f"myspinbot: cannot start: port {port} is already in use")
    assert "MYSPINBOT_PORT" in line and "--port" in line
    # Nothing was started: no embedded Redis, not even the data dir.
    assert not (tmp_path / "data").exists()


def test_the_port_flag_is_named_when_the_flag_chose_the_port(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = start_refused(tmp_path, "--port", str(port))
    assert done.returncode == 2
    assert f"port {port} is already in use" in done.stderr and "--port" in done.stderr


@pytest.mark.parametrize("host", ["192.0.2.1", "no-such-host.invalid"])
def test_a_host_that_cannot_be_listened_on_stops_the_start_with_one_line(
    tmp_path: Path, host: str
) -> None:
    done = start_refused(tmp_path, MYSPINBOT_HOST=host)
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip()
    assert "\n" not in line, done.stderr
    assert line.startswith(f"myspinbot: cannot start: cannot listen on {host}")
    assert "MYSPINBOT_HOST" in line and "--host" in line
    assert not (tmp_path / "data").exists()
