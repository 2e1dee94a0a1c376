"""Reaper, retry dispatch, sweep and retention against a real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from reliability_support import create_job, job
from support import wait_until

from myspinbot.config import Settings
from myspinbot.jobs import keys
from myspinbot.jobs.queues import queue_key
from myspinbot.jobs.worker import maintenance
from myspinbot.jobs.worker.ledger import Attempt, Ledger
from myspinbot.jobs.worker.maintenance import Maintenance
from myspinbot.jobs.worker.runtime import redis_client

LEASE = 0.3


@pytest.fixture()
def client(external_redis: str) -> Iterator[redis.Redis]:
    conn = redis_client(external_redis)
    yield conn
    conn.close()


def settings(tmp_path: Path, **changes: object) -> Settings:
    base = Settings(
        data_dir=tmp_path / "data",
        lease_seconds=LEASE,
        max_attempts=3,
        maintenance_interval=0.1,
        retention_days=0,
        retention_max_jobs=0,
    )
    return base.replace(**changes).resolved()


@pytest.fixture()
def upkeep(client: redis.Redis, tmp_path: Path) -> Maintenance:
    return Maintenance(client, settings(tmp_path))


@pytest.fixture()
def ledger(client: redis.Redis) -> Ledger:
    return Ledger(client, lease_seconds=LEASE)


def lose(ledger: Ledger, client: redis.Redis, job_id: str) -> Attempt:
    """Claim the job, then let the attempt's lease run out as if its worker died."""
    attempt = ledger.claim(job_id)
    assert attempt is not None
    wait_until(lambda: client.zscore(keys.LEASES, job_id) < server_ms(client), 5, "lease expiry")
    # The reaper waits one lease after a Redis (re)start; this Redis has just started.
    wait_until(lambda: client.info("server")["uptime_in_seconds"] >= 1, 5, "redis uptime")
    return attempt


def server_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return seconds * 1000 + micros // 1000


def test_reaper_requeues_an_expired_attempt_with_a_new_message(upkeep, ledger, client) -> None:
    job_id = create_job(client)
    client.delete(queue_key("generate"))  # the worker popped it
    lose(ledger, client, job_id)
    assert upkeep.reap() == 1
    record = job(client, job_id)
    assert record["state"] == "queued" and record["attempt"] == 1
    assert record["error"]["code"] == "worker_lost"
    assert client.llen(queue_key("generate")) == 1
    assert client.zscore(keys.LEASES, job_id) is None
    again = ledger.claim(job_id)
    assert again is not None and again.number == 2


def test_reaper_leaves_a_renewed_lease_alone(upkeep, ledger, client) -> None:
    job_id = create_job(client)
    attempt = lose(ledger, client, job_id)
    ledger.progress(attempt, 50, "still here")  # the late write wins the race: lease renewed
    assert upkeep.reap() == 0
    assert job(client, job_id)["state"] == "active"


def test_reaper_fails_the_job_after_the_last_attempt(upkeep, ledger, client) -> None:
    job_id = create_job(client)
    for _ in range(3):
        lose(ledger, client, job_id)
        assert upkeep.reap() == 1
    record = job(client, job_id)
    assert record["state"] == "failed" and record["attempt"] == 3
    assert record["error"]["code"] == "worker_lost"
    assert "3 attempts" in record["error"]["message"]
    assert client.hget(keys.FINISHED_COUNTS, "generate:failed") == b"1"
    assert upkeep.reap() == 0 and ledger.claim(job_id) is None


def test_reaper_honours_a_pending_cancel(upkeep, ledger, client) -> None:
    job_id = create_job(client)
    lose(ledger, client, job_id)
    client.hset(keys.job(job_id), "cancel", "1")
    depth = client.llen(queue_key("generate"))
    assert upkeep.reap() == 1
    assert job(client, job_id)["state"] == "cancelled"
    assert client.llen(queue_key("generate")) == depth


def test_reaper_waits_one_lease_after_a_redis_restart(client, ledger, tmp_path: Path) -> None:
    patient = Maintenance(client, settings(tmp_path, lease_seconds=3600))
    job_id = create_job(client)
    lose(ledger, client, job_id)  # expired by its own (short) lease
    assert patient.reap() == 0  # but Redis has been up for less than a lease
    assert job(client, job_id)["state"] == "active"


def test_due_retries_are_dispatched_once_and_not_before(upkeep, ledger, client) -> None:
    job_id = create_job(client)
    client.delete(queue_key("generate"))
    attempt = ledger.claim(job_id)
    assert attempt is not None
    ledger.requeue(attempt, delay=0.3, message="retrying", error=None)
    assert upkeep.dispatch_due() == 0
    wait_until(lambda: upkeep.dispatch_due() == 1, 5, "retry to fall due")
    assert client.llen(queue_key("generate")) == 1
    assert upkeep.dispatch_due() == 0 and client.zscore(keys.RETRIES, job_id) is None


def test_sweep_repushes_a_lost_message_only_after_the_grace(
    upkeep, client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(maintenance, "SWEEP_GRACE_MS", 300)
    job_id = create_job(client)
    client.delete(queue_key("generate"))  # popped by a worker that died before claiming
    assert upkeep.sweep() == 0  # a suspect: a live worker may be claiming it right now
    assert client.hexists(keys.SWEEP_SUSPECTS, job_id)
    wait_until(lambda: upkeep.sweep() == 1, 5, "sweep to push the job again")
    assert client.llen(queue_key("generate")) == 1
    assert not client.hexists(keys.SWEEP_SUSPECTS, job_id)
    assert upkeep.sweep() == 0  # it has its message now


def test_sweep_forgets_a_suspect_that_got_claimed(upkeep, ledger, client, monkeypatch) -> None:
    monkeypatch.setattr(maintenance, "SWEEP_GRACE_MS", 0)
    job_id = create_job(client)
    client.delete(queue_key("generate"))
    assert upkeep.sweep() == 0
    assert ledger.claim(job_id) is not None
    assert upkeep.sweep() == 0
    assert not client.hexists(keys.SWEEP_SUSPECTS, job_id)


def test_only_one_process_holds_the_maintenance_lock(client, tmp_path: Path) -> None:
    first, second = (Maintenance(client, settings(tmp_path)) for _ in range(2))
    client.set(keys.MAINTENANCE_LOCK, first.token, px=5000)  # first is mid-round
    assert second.run_once() is False
    client.delete(keys.MAINTENANCE_LOCK)
    assert second.run_once() is True
    assert client.get(keys.MAINTENANCE_LOCK) is None  # released after the round


def finish(ledger: Ledger, job_id: str, folder: Path) -> None:
    attempt = ledger.claim(job_id)
    assert attempt is not None
    (folder / job_id / "1").mkdir(parents=True)
    (folder / job_id / "1" / "clip.webp").write_bytes(b"x")
    ledger.finish(attempt, "completed", message="done", artifacts=[])


def test_retention_keeps_the_newest_finished_and_never_live_jobs(
    client, ledger, tmp_path: Path
) -> None:
    config = settings(tmp_path, retention_max_jobs=2)
    start = server_ms(client)
    ids = [create_job(client, f"job {i}", created=start + i) for i in range(6)]
    live_queued, live_active = ids[0], ids[1]  # the oldest: first in line for deletion
    assert ledger.claim(live_active) is not None
    for job_id in ids[2:]:
        finish(ledger, job_id, config.artifacts_dir)
    assert Maintenance(client, config).trim() == 2
    remaining = {j for j in ids if client.exists(keys.job(j))}
    assert remaining == {live_queued, live_active, ids[4], ids[5]}
    assert sorted(p.name for p in config.artifacts_dir.iterdir()) == sorted(ids[4:])
    for gone in ids[2:4]:
        assert client.zscore(keys.index(), gone) is None
        assert client.zscore(keys.index("generate", "completed"), gone) is None


def test_retention_by_age(client, ledger, tmp_path: Path) -> None:
    config = settings(tmp_path, retention_days=1)
    old, young = create_job(client), create_job(client)
    for job_id in (old, young):
        finish(ledger, job_id, config.artifacts_dir)
    two_days_ago = server_ms(client) - 2 * 86_400_000
    client.zadd(keys.index("generate", "completed"), {old: two_days_ago})
    assert Maintenance(client, config).trim() == 1
    assert not client.exists(keys.job(old)) and client.exists(keys.job(young))
