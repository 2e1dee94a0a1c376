"""The house's wiring: the web side loads no worker code, and nothing is wired through globals.

Two apps with two settings run side by side in one process, each with its own Redis and
its own in-process workers, and neither sees the other's jobs, workers or files.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis
from reliability_support import (
    RedisServer,
    create_job,
    job,
    live_workers,
    redis_server,
    wait_for_job,
)
from sanic import Sanic
from support import ROOT, server_env, wait_until

from myspinbot.api.connections import close_connections, open_connections
from myspinbot.app import create_app
from myspinbot.config import Settings
from myspinbot.jobs import keys
from myspinbot.server.system import Background

DONE = ("completed", "failed", "cancelled")


def test_the_web_side_loads_no_worker_code_and_reads_no_environment() -> None:
    """In a fresh interpreter whose environment holds a setting that cannot be parsed:
    anything that read the settings at import would raise."""
    probe = (
        "import json, sys\n"
        "import myspinbot.jobs, myspinbot.jobs.store, myspinbot.jobs.service\n"
        "import myspinbot.api, myspinbot.api.connections, myspinbot.app\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('myspinbot.'))))\n"
    )
    env = server_env(ROOT, 0, REDIS_URL="not a url", MYSPINBOT_PORT="not a port")
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert "myspinbot.jobs.store" in loaded  # the probe did import the web side
    assert [m for m in loaded if m.startswith("myspinbot.jobs.worker")] == []


@pytest.mark.parametrize(
    "path", ["myspinbot.jobs.worker.generate_queue", "myspinbot.jobs.generate_queue"]
)
def test_huey_consumer_runs_jobs_from_the_current_and_the_former_import_path(
    path: str, redis_binary: str, tmp_path: Path
) -> None:
    with redis_server(redis_binary, tmp_path / "redis") as store, ExitStack() as stack:
        client = store.client()
        stack.callback(client.close)
        job_id = create_job(client, "via huey_consumer")
        env = server_env(tmp_path / "data", 0, REDIS_URL=store.url, MYSPINBOT_MOCK_STEPS="2")
        log = (tmp_path / "consumer.log").open("wb")
        stack.callback(log.close)
        consumer = subprocess.Popen(
            [sys.executable, "-m", "huey.bin.huey_consumer", path, "-w", "1", "-k", "thread"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        stack.callback(consumer.wait, 15)
        stack.callback(consumer.terminate)
        done = wait_for_job(client, job_id, lambda j: j["state"] in DONE, 60)
        assert done["state"] == "completed", (tmp_path / "consumer.log").read_text()
        assert live_workers(client) == 1  # its startup hook began the heartbeats


def settings_for(folder: Path, redis_url: str) -> Settings:
    env = server_env(
        folder, 0, REDIS_URL=redis_url, MYSPINBOT_INPROCESS_WORKERS="1", MYSPINBOT_PORT="8000"
    )
    return Settings.from_env(env)


class RunningApp:
    """An app with what Sanic opens around serving it: its connections and its background."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self.settings = settings

    async def start(self) -> None:
        await open_connections(self.app)
        self.app.ctx.background = Background(self.settings)
        self.app.ctx.background.start()

    async def stop(self) -> None:
        await asyncio.to_thread(self.app.ctx.background.stop)
        await close_connections(self.app)


@pytest.fixture()
def two_servers(redis_binary: str, tmp_path: Path) -> Iterator[list[RedisServer]]:
    with ExitStack() as stack:
        yield [
            stack.enter_context(redis_server(redis_binary, tmp_path / f"redis-{name}"))
            for name in "ab"
        ]


def test_two_apps_with_two_settings_in_one_process_share_nothing(
    two_servers: list[RedisServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Sanic, "test_mode", True)  # two apps of one name in one process
    apps = [
        RunningApp(settings_for(tmp_path / name, server.url))
        for name, server in zip("ab", two_servers, strict=True)
    ]
    stores = [server.client() for server in two_servers]
    submitted = asyncio.run(_submit_to_each(apps, stores))

    for index, (store, job_id) in enumerate(zip(stores, submitted, strict=True)):
        other = stores[1 - index]
        assert job(store, job_id)["state"] == "completed"
        assert not other.exists(keys.job(job_id))  # its job stayed in its own Redis
        assert (apps[index].settings.artifacts_dir / job_id).is_dir()  # its files in its own dir
        assert not (apps[1 - index].settings.artifacts_dir / job_id).exists()
        store.close()


async def _submit_to_each(apps: list[RunningApp], stores: list[redis.Redis]) -> list[str]:
    for app in apps:
        await app.start()
    try:
        # Each app's workers heartbeat to its own Redis only: one worker per queue each.
        for store in stores:
            await asyncio.to_thread(_wait_live, store)
        submitted = []
        for app in apps:
            job, _ = await app.app.ctx.jobs.submit("generate", {"prompt": "mine", "lora": None})
            submitted.append(job["id"])
        for store, job_id in zip(stores, submitted, strict=True):
            await asyncio.to_thread(wait_for_job, store, job_id, lambda j: j["state"] in DONE, 60)
        for store in stores:
            assert live_workers(store, "generate") == 1
            assert live_workers(store, "train") == 1
        return submitted
    finally:
        for app in apps:
            await app.stop()


def _wait_live(store: redis.Redis) -> None:
    wait_until(
        lambda: live_workers(store, "generate") and live_workers(store, "train"),
        30,
        "the app's workers beating to its Redis",
    )
