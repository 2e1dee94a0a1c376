"""Worker replicas that die, freeze, get duplicate messages or are told to stop mid-job."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path

import pytest
import redis
from reliability_support import (
    INTERVAL,
    LEASE,
    EventLog,
    Replica,
    api_server,
    job,
    live_workers,
    post_generate,
    redis_server,
    reliability_env,
    replicas,
    wait_for_job,
)
from support import Server, wait_until

from myspinbot.jobs import keys
from myspinbot.jobs.messages import job_message
from myspinbot.jobs.queues import queue_key
from myspinbot.jobs.worker.runner import HANDED_BACK

pytestmark = pytest.mark.slow

STEPS, STEP = "40", "0.1"  # a 4 s job: long enough to interfere with
SLACK = 3.0  # seconds: process scheduling on a busy 2-core machine


class Rig:
    """One Redis, one API server without workers, replicas started per test."""

    def __init__(self, server: Server, client: redis.Redis, env: dict[str, str], folder: Path):
        self.server, self.client, self.env, self.folder = server, client, env, folder

    def replicas(self, count: int, threads: int = 1) -> ContextManager[list[Replica]]:
        return replicas(self.env, self.folder, count, threads=threads)


@pytest.fixture(scope="module")
def rig(redis_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    folder = tmp_path_factory.mktemp("workers")
    with redis_server(redis_binary, folder / "redis") as store:
        env = reliability_env(
            folder / "data",
            store.url,
            MYSPINBOT_INPROCESS_WORKERS="0",
            MYSPINBOT_MOCK_STEPS=STEPS,
            MYSPINBOT_MOCK_STEP_SECONDS=STEP,
        )
        with api_server(folder / "data", env) as server:
            client = store.client()
            yield Rig(server, client, env, folder)
            client.close()


def started_on(group: list[Replica], job_id: str, run: int, timeout: float = 30) -> Replica:
    """The replica whose log says it started this run of the job (hand-backs count as runs)."""
    line = f"job {job_id} run {run} started"
    return wait_until(lambda: next((r for r in group if line in r.log()), None), timeout, line)


def wait_live(rig: Rig, count: int) -> None:
    wait_until(lambda: live_workers(rig.client) >= count, 30, f"{count} live replicas")


def job_under_way(rig: Rig, group: list[Replica], prompt: str) -> tuple[str, Replica]:
    """Once `group` is live, submit a job; return it and the replica running its first
    attempt, once that attempt has made progress."""
    wait_live(rig, len(group))
    with rig.server.client() as http:
        job_id = post_generate(http, prompt)["id"]
    runner = started_on(group, job_id, 1)
    wait_for_job(rig.client, job_id, lambda j: j["progress"] >= 10)
    return job_id, runner


def test_kill_9_mid_job_completes_on_another_replica(rig: Rig) -> None:
    with rig.replicas(2) as group:
        job_id, first = job_under_way(rig, group, "survives a kill -9")
        first.signal(signal.SIGKILL)
        killed_at = time.monotonic()
        first.wait()
        second = started_on(group, job_id, 2, timeout=float(LEASE) + float(INTERVAL) + SLACK)
        took_over = time.monotonic() - killed_at
        assert second is not first
        assert took_over <= float(LEASE) + float(INTERVAL) + SLACK, took_over
        done = wait_for_job(
            rig.client, job_id, lambda j: j["state"] != "active" and j["attempt"] == 2
        )
    assert done["state"] == "completed" and done["attempt"] == 2, done
    assert done["error"] is None and done["progress"] == 100
    assert rig.client.zscore(keys.LEASES, job_id) is None


def test_a_frozen_replica_cannot_overwrite_the_new_attempt(rig: Rig) -> None:
    events = EventLog(rig.server.ws_url)
    with rig.replicas(2) as group:
        job_id, zombie = job_under_way(rig, group, "survives a zombie")
        zombie.signal(signal.SIGSTOP)
        try:
            current = started_on(group, job_id, 2, timeout=float(LEASE) + float(INTERVAL) + SLACK)
            assert current is not zombie
            wait_for_job(rig.client, job_id, lambda j: j["attempt"] == 2 and j["progress"] >= 5)
        finally:
            zombie.signal(signal.SIGCONT)
        wait_until(
            lambda: f"job {job_id} run 1 lost its lease" in zombie.log(),
            10,
            "the zombie to log that its writes were refused",
        )
        done = wait_for_job(rig.client, job_id, lambda j: j["state"] == "completed", 30)
        with rig.server.client() as http:
            clip = next(a for a in done["artifacts"] if a["name"] == "clip.webp")
            assert http.get(clip["url"]).status_code == 200
    events.close()
    assert done["attempt"] == 2 and done["message"] == "done"
    folder = Path(rig.env["MYSPINBOT_DATA_DIR"]) / "artifacts" / job_id
    wait_until(lambda: sorted(p.name for p in folder.iterdir()) == ["2"], 10, "only attempt 2")
    assert sorted(p.name for p in (folder / "2").iterdir()) == ["clip.webp", "result.json"]
    # Once attempt 2 had written, no event of attempt 1 was ever published again.
    frames = [f for f in events.snapshot() if f.get("job", {}).get("id") == job_id]
    first_of_2 = next(i for i, f in enumerate(frames) if f["job"]["attempt"] == 2)
    assert all(f["job"]["attempt"] == 2 for f in frames[first_of_2:]), frames
    assert [f["type"] for f in frames].count("done") == 1


def test_the_same_message_delivered_twice_runs_once(rig: Rig) -> None:
    events = EventLog(rig.server.ws_url)
    with rig.server.client() as http:
        job_id = post_generate(http, "delivered twice")["id"]
    rig.client.lpush(queue_key("generate"), job_message("generate", job_id))
    with rig.replicas(1, threads=2) as group:
        done = wait_for_job(rig.client, job_id, lambda j: j["state"] == "completed", 30)
        replica = group[0]
        wait_until(lambda: f"job {job_id} is not queued any more" in replica.log(), 10)
        # ... and once more after it finished: still skipped.
        rig.client.lpush(queue_key("generate"), job_message("generate", job_id))
        wait_until(lambda: replica.log().count(f"job {job_id} is not queued any more") == 2, 10)
        assert replica.log().count(f"job {job_id} run ") == 1
    events.close()
    assert done["attempt"] == 1
    assert job(rig.client, job_id) == done
    assert rig.client.llen(queue_key("generate")) == 0
    assert events.done_ids().count(job_id) == 1


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_replica_hands_its_job_back(rig: Rig, sig: int) -> None:
    with rig.replicas(1) as group:
        job_id, _ = job_under_way(rig, group, f"handed back on {signal.Signals(sig).name}")
        group[0].signal(sig)
        stopped_at = time.monotonic()
        assert group[0].wait(15) == 0
        # Handed back at once, not left active for the reaper.
        record = job(rig.client, job_id)
        assert record["state"] == "queued", record
        assert record["message"] == HANDED_BACK and record["resumed"] == 1
        assert time.monotonic() - stopped_at < float(LEASE) + SLACK
        assert rig.client.hget(keys.job(job_id), "handbacks") == "1"
    with rig.replicas(1) as group:
        done = wait_for_job(rig.client, job_id, lambda j: j["state"] == "completed", 30)
    assert done["attempt"] == 1 and done["resumed"] == 1 and done["progress"] == 100
