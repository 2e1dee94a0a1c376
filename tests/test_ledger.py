"""The ledger's fencing against a real Redis: claims, zombies, cancels, lost replies, outages."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from reliability_support import create_job, job, redis_server
from support import wait_until

from myspinbot.jobs import keys, scripts
from myspinbot.jobs.messages import job_message
from myspinbot.jobs.queues import queue_key
from myspinbot.jobs.worker.ledger import Attempt, LeaseLost, Ledger, StoreUnreachable
from myspinbot.jobs.worker.runner import HANDED_BACK
from myspinbot.jobs.worker.runtime import redis_client


@pytest.fixture()
def client(external_redis: str) -> Iterator[redis.Redis]:
    conn = redis_client(external_redis)
    yield conn
    conn.close()


@pytest.fixture()
def ledger(client: redis.Redis) -> Ledger:
    return Ledger(client, lease_seconds=30)


def claimed(ledger: Ledger, job_id: str) -> Attempt:
    attempt = ledger.claim(job_id)
    assert attempt is not None
    return attempt


def expire_and_requeue(ledger: Ledger, attempt: Attempt) -> None:
    """What the reaper does to a lost attempt (its own tests are in test_maintenance)."""
    ledger.requeue(attempt, delay=0, message="requeued: worker lost", error=None)


def test_claim_moves_queued_to_active_with_a_new_attempt(ledger: Ledger, client) -> None:
    job_id = create_job(client)
    attempt = claimed(ledger, job_id)
    assert attempt.number == 1 and attempt.charged == 1
    record = job(client, job_id)
    assert record["state"] == "active" and record["attempt"] == 1 and record["started_at"]
    assert client.zscore(keys.LEASES, job_id) is not None


def test_close_closes_the_connections_each_thread_opened(client: redis.Redis) -> None:
    ledger = Ledger(client, lease_seconds=30)
    before = len(client.client_list())
    threads = [threading.Thread(target=ledger.claim, args=(create_job(client),)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(client.client_list()) == before + 3  # one per thread, outside the pool
    ledger.close()
    wait_until(lambda: len(client.client_list()) == before, message="Redis to drop them")
    assert ledger.claim(create_job(client)) is not None  # and it still works after


def test_a_second_claim_of_the_same_job_is_refused(ledger: Ledger, client) -> None:
    job_id = create_job(client)
    claimed(ledger, job_id)
    assert ledger.claim(job_id) is None
    assert job(client, job_id)["attempt"] == 1


def test_concurrent_claims_have_exactly_one_winner(ledger: Ledger, client) -> None:
    job_id = create_job(client)
    results: list[Attempt | None] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        results.append(Ledger(redis_client_like(client), 30).claim(job_id))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    winners = [r for r in results if r is not None]
    assert len(results) == 8 and len(winners) == 1
    assert job(client, job_id)["attempt"] == 1


def redis_client_like(client: redis.Redis) -> redis.Redis:
    return redis.Redis(connection_pool=client.connection_pool)


def test_a_zombie_attempt_cannot_write_after_another_took_over(ledger: Ledger, client) -> None:
    job_id = create_job(client)
    zombie = claimed(ledger, job_id)
    ledger.progress(zombie, 30, "step 3")
    expire_and_requeue(ledger, Attempt(job=dict(zombie.job), number=1, owner=zombie.owner))
    zombie.lost = False  # the zombie has not noticed anything yet
    current = claimed(ledger, job_id)
    assert current.number == 2
    ledger.progress(current, 10, "step 1")
    with pytest.raises(LeaseLost):
        ledger.progress(zombie, 90, "step 9")
    with pytest.raises(LeaseLost):
        ledger.finish(zombie, "completed", message="done", artifacts=[])
    record = job(client, job_id)
    assert record["state"] == "active" and record["attempt"] == 2
    assert record["progress"] == 10 and record["message"] == "step 1"
    ledger.finish(current, "completed", message="done", artifacts=[])
    assert job(client, job_id)["state"] == "completed"


def test_heartbeat_of_a_superseded_attempt_marks_it_lost(ledger: Ledger, client) -> None:
    job_id = create_job(client)
    first = claimed(ledger, job_id)
    assert ledger.heartbeat(first)
    expire_and_requeue(ledger, Attempt(job=dict(first.job), number=1, owner=first.owner))
    claimed(ledger, job_id)
    assert not ledger.heartbeat(first)
    assert first.lost
    with pytest.raises(LeaseLost):
        ledger.progress(first, 50, "late")


def cancel_queued(client: redis.Redis, job_id: str) -> bytes:
    """What JobService.cancel does: the CANCEL script (a queued job is cancelled at once)."""
    state, _ = client.register_script(scripts.CANCEL)(
        keys=[keys.job(job_id)], args=[keys.PREFIX, job_id, b'"2026-12-01T00:00:00.000Z"']
    )
    return state


def test_cancel_then_claim_never_runs_the_job(ledger: Ledger, client) -> None:
    job_id = create_job(client)
    assert cancel_queued(client, job_id) == b"queued"
    assert ledger.claim(job_id) is None
    assert job(client, job_id)["state"] == "cancelled"


def test_a_cancel_after_a_claim_only_flags_the_running_job(ledger: Ledger, client) -> None:
    job_id = create_job(client)
    attempt = claimed(ledger, job_id)
    assert cancel_queued(client, job_id) == b"active"
    assert job(client, job_id)["state"] == "active"
    assert ledger.progress(attempt, 10, "step 1") is True  # the worker sees the request


def test_a_cancel_requested_while_active_wins_over_a_requeue(ledger: Ledger, client) -> None:
    job_id = create_job(client)
    attempt = claimed(ledger, job_id)
    client.hset(keys.job(job_id), "cancel", "1")  # REQUEST_CANCEL on an active job
    depth = client.llen(queue_key("generate"))
    status = ledger.requeue(attempt, delay=0, message="requeued", error=None, handback=True)
    assert status == "cancelled"
    record = job(client, job_id)
    assert record["state"] == "cancelled" and record["finished_at"]
    assert client.llen(queue_key("generate")) == depth  # no message for a cancelled job
    assert client.hget(keys.job(job_id), "cancel") is None
    assert client.zscore(keys.LEASES, job_id) is None
    assert client.hget(keys.FINISHED_COUNTS, "generate:cancelled") == b"1"


def test_hand_backs_do_not_count_against_the_attempts(ledger: Ledger, client) -> None:
    job_id = create_job(client)
    for number in (1, 2, 3):
        attempt = claimed(ledger, job_id)
        assert attempt.number == number and attempt.charged == 1
        ledger.requeue(
            attempt, delay=0, message="requeued: worker stopped", error=None, handback=True
        )
    attempt = claimed(ledger, job_id)
    assert attempt.number == 4 and attempt.charged == 1
    ledger.requeue(attempt, delay=0, message="requeued: worker lost", error=None)
    assert claimed(ledger, job_id).charged == 2


def test_a_hand_back_is_not_an_attempt_in_the_job_and_says_it_resumed(
    ledger: Ledger, client
) -> None:
    """The job's `attempt` counts runs that failed or were lost (plus the running one); a
    run handed back on shutdown is resumed under its number, and says so."""
    job_id = create_job(client)
    first = claimed(ledger, job_id)
    assert job(client, job_id)["attempt"] == 1 and job(client, job_id)["resumed"] == 0
    ledger.requeue(first, delay=0, message=HANDED_BACK, error=None, handback=True)
    record = job(client, job_id)
    assert record["state"] == "queued" and record["attempt"] == 1 and record["resumed"] == 1
    assert record["message"] == HANDED_BACK
    resumed = claimed(ledger, job_id)
    record = job(client, job_id)
    assert record["state"] == "active" and record["attempt"] == 1 and record["resumed"] == 1
    assert record["message"] == "resumed after a restart"
    ledger.progress(resumed, 40, "step 4")
    expire_and_requeue(ledger, resumed)  # this run is lost: that one counts
    retried = claimed(ledger, job_id)
    record = job(client, job_id)
    assert record["attempt"] == 2 and record["message"] == "starting"
    ledger.finish(retried, "completed", message="done", artifacts=[])
    record = job(client, job_id)
    assert record["state"] == "completed" and record["attempt"] == 2 and record["resumed"] == 1
    assert client.hget(keys.job(job_id), "attempt") == b"3"  # the run number: its folder


def test_a_delayed_retry_waits_in_the_retry_set_not_the_queue(ledger: Ledger, client) -> None:
    job_id = create_job(client)
    client.delete(queue_key("generate"))
    attempt = claimed(ledger, job_id)
    ledger.requeue(attempt, delay=60, message="retrying in 60s", error=None)
    assert client.llen(queue_key("generate")) == 0
    due = client.zscore(keys.RETRIES, job_id)
    seconds, micros = client.time()
    assert due is not None and 55_000 < due - (seconds * 1000 + micros // 1000) <= 60_000


class LostReply:
    """Runs the script, then loses the reply once: the ambiguous outcome of a dropped link."""

    def __init__(self, script: Any) -> None:
        self.script = script
        self.armed = True

    def __call__(self, **kwargs: Any) -> Any:
        result = self.script(**kwargs)
        if self.armed:
            self.armed = False
            raise redis.ConnectionError("connection lost after the command ran")
        return result


def test_a_claim_whose_reply_was_lost_is_still_ours(ledger: Ledger, client) -> None:
    job_id = create_job(client)
    ledger._scripts["claim"] = LostReply(ledger._scripts["claim"])
    attempt = ledger.claim(job_id)
    assert attempt is not None and attempt.number == 1
    ledger.progress(attempt, 50, "half")  # its writes pass the fence: it really is the owner
    assert job(client, job_id)["attempt"] == 1


def test_a_finish_whose_reply_was_lost_is_not_mistaken_for_a_lost_lease(
    ledger: Ledger, client
) -> None:
    job_id = create_job(client)
    attempt = claimed(ledger, job_id)
    ledger._scripts["finish_next"] = LostReply(ledger._scripts["finish_next"])
    ledger.finish(attempt, "completed", message="done", artifacts=[])
    record = job(client, job_id)
    assert record["state"] == "completed" and record["attempt"] == 1
    assert client.hget(keys.FINISHED_COUNTS, "generate:completed") == b"1"


def test_a_pop_claim_whose_reply_was_lost_returns_the_job_it_claimed(
    ledger: Ledger, client
) -> None:
    first, second = create_job(client, "first"), create_job(client, "second")
    ledger._scripts["pop_claim"] = LostReply(ledger._scripts["pop_claim"])
    popped = ledger.pop_claim("generate")
    assert isinstance(popped, tuple) and popped[1].job_id == first
    assert popped[0] == job_message("generate", first)
    ledger.progress(popped[1], 50, "half")  # it passes the fence: the claim is really ours
    assert job(client, second)["state"] == "queued"
    assert client.llen(queue_key("generate")) == 1


def test_a_finish_whose_reply_was_lost_returns_the_next_job_it_claimed(
    ledger: Ledger, client
) -> None:
    first, second, third = (create_job(client, name) for name in ("first", "second", "third"))
    client.delete(queue_key("generate"))  # claim the first by id; the others stay queued
    client.lpush(queue_key("generate"), job_message("generate", second))
    client.lpush(queue_key("generate"), job_message("generate", third))
    attempt = claimed(ledger, first)
    ledger._scripts["finish_next"] = LostReply(ledger._scripts["finish_next"])
    popped = ledger.finish(attempt, "completed", message="done", artifacts=[], next_from="generate")
    assert job(client, first)["state"] == "completed"
    assert isinstance(popped, tuple) and popped[1].job_id == second
    ledger.progress(popped[1], 50, "half")
    assert job(client, third)["state"] == "queued"
    assert client.llen(queue_key("generate")) == 1


def test_writes_ride_out_a_redis_restart(redis_binary: str, tmp_path: Path) -> None:
    with redis_server(redis_binary, tmp_path / "redis") as server:
        conn = redis_client(server.url)
        ledger = Ledger(conn, lease_seconds=30)
        job_id = create_job(conn)
        attempt = claimed(ledger, job_id)
        server.kill()
        restarter = threading.Timer(1.0, server.start)
        restarter.start()
        try:
            ledger.progress(attempt, 40, "after the outage")  # blocks until Redis is back
        finally:
            restarter.join()
        record = job(conn, job_id)
        assert record["progress"] == 40 and record["attempt"] == 1
        ledger.finish(attempt, "completed", message="done", artifacts=[])
        assert job(conn, job_id)["state"] == "completed"
        conn.close()


def test_a_write_gives_up_when_redis_stays_away(redis_binary: str, tmp_path: Path) -> None:
    with redis_server(redis_binary, tmp_path / "redis") as server:
        conn = redis_client(server.url)
        ledger = Ledger(conn, lease_seconds=30, patience=1.0)
        attempt = claimed(ledger, create_job(conn))
        server.kill()
        with pytest.raises(StoreUnreachable):
            ledger.progress(attempt, 40, "nobody listens")
        conn.close()


def test_pop_claim_takes_the_oldest_message_and_claims_its_job_at_once(
    ledger: Ledger, client
) -> None:
    first, second = create_job(client, "first"), create_job(client, "second")
    popped = ledger.pop_claim("generate")
    assert isinstance(popped, tuple)
    message, attempt = popped
    assert attempt.job_id == first and attempt.number == 1
    assert attempt.job["state"] == "active" and attempt.job["input"]["prompt"] == "first"
    assert job(client, first)["state"] == "active"
    assert client.zscore(keys.LEASES, first) is not None
    assert job(client, second)["state"] == "queued"
    assert client.llen(queue_key("generate")) == 1
    assert message == job_message("generate", first)


def test_pop_claim_skips_the_messages_of_cancelled_jobs(ledger: Ledger, client) -> None:
    doomed, kept = create_job(client, "doomed"), create_job(client, "kept")
    assert cancel_queued(client, doomed) == b"queued"
    popped = ledger.pop_claim("generate")
    assert isinstance(popped, tuple) and popped[1].job_id == kept
    assert ledger.pop_claim("generate") is None  # empty now
    assert job(client, doomed)["state"] == "cancelled"


def test_pop_claim_hands_a_message_that_is_not_ours_back_unclaimed(ledger: Ledger, client) -> None:
    odd = job_message("generate", "short-id")  # not stamped from the template
    client.lpush(queue_key("generate"), odd)
    assert ledger.pop_claim("generate") == odd


def test_finishing_a_job_claims_the_next_in_the_same_round_trip(ledger: Ledger, client) -> None:
    first, second = create_job(client, "first"), create_job(client, "second")
    client.delete(queue_key("generate"))  # claim the first by id, leave only the second queued
    client.lpush(queue_key("generate"), job_message("generate", second))
    attempt = claimed(ledger, first)
    popped = ledger.finish(attempt, "completed", message="done", artifacts=[], next_from="generate")
    assert job(client, first)["state"] == "completed"
    assert isinstance(popped, tuple) and popped[1].job_id == second
    record = job(client, second)
    assert record["state"] == "active" and record["attempt"] == 1 and record["started_at"]
    assert client.llen(queue_key("generate")) == 0
    assert ledger.finish(popped[1], "completed", message="done", next_from="generate") is None


def test_the_stored_document_lists_the_fields_in_the_api_order(ledger: Ledger, client) -> None:
    job_id = create_job(client)
    attempt = claimed(ledger, job_id)
    ledger.progress(attempt, 50, "half", result={"prompt": "written"})
    raw = client.hget(keys.job(job_id), "doc")
    record = json.loads(raw)
    assert list(record) == [
        "id", "kind", "state", "progress", "message", "created_at", "started_at",
        "finished_at", "attempt", "resumed", "error", "input", "artifacts", "result",
    ]  # fmt: skip
    assert record["progress"] == 50 and record["result"] == {"prompt": "written"}
