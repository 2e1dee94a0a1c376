"""The one coupling to Huey's message layout: stamped messages decode as Huey's own."""

from __future__ import annotations

import pytest
from huey.api import TaskWrapper

from myspinbot.jobs.messages import TASK_NAMES, job_message, message_job_id
from myspinbot.jobs.model import KINDS, new_job_id
from myspinbot.jobs.queues import JobQueue, job_queue
from myspinbot.jobs.worker.tasks import register_task

# A worker's queues with its tasks registered; nothing here runs a task or reaches Redis.
QUEUES = {kind: job_queue(kind, "redis://127.0.0.1:1") for kind in KINDS}
TASKS: dict[str, TaskWrapper] = {
    kind: register_task(queue, kind, runner=None, serving=print)  # type: ignore[arg-type]
    for kind, queue in QUEUES.items()
}


@pytest.mark.parametrize("kind", ["train", "generate"])
def test_stamped_messages_decode_to_the_task_for_that_job(kind: str) -> None:
    job_id = new_job_id()
    task = QUEUES[kind].deserialize_task(job_message(kind, job_id))
    assert (task.id, task.args, task.kwargs) == (job_id, (job_id,), {})
    assert type(task) is type(TASKS[kind].s(job_id))
    assert message_job_id(kind, job_message(kind, job_id)) == job_id


def test_stamped_message_equals_a_freshly_serialized_one() -> None:
    job_id = new_job_id()
    fresh = QUEUES["generate"].serialize_task(TASKS["generate"].s(job_id, id=job_id))
    assert job_message("generate", job_id) == fresh


def test_an_id_of_another_shape_is_serialized_the_slow_way() -> None:
    task = QUEUES["train"].deserialize_task(job_message("train", "short-id"))
    assert task.args == ("short-id",) and task.id == "short-id"


def test_huey_revocation_is_not_a_second_cancel_path(tmp_path) -> None:
    """Cancel lives in the job record; Huey's revoke flag would be a second, unread one.

    The queue points at a Redis that does not exist, so any round trip would raise.
    """
    import redis

    queue = JobQueue("revocation-check", results=False, url=f"unix://{tmp_path}/none.sock")
    task = TASKS["generate"].s(new_job_id())
    with pytest.raises(NotImplementedError, match="cancel"):
        queue.revoke(task)
    with pytest.raises(NotImplementedError):
        queue.revoke_by_id(task.id)
    assert queue.is_revoked(task, peek=False) is False  # no Redis touched
    assert queue.delete(task.revoke_id) is False
    with pytest.raises(redis.ConnectionError):
        queue.delete("some-result-key")  # every other key still reaches the storage


@pytest.mark.parametrize("kind", ["train", "generate"])
def test_task_names_are_the_ones_hueys_registry_gives_our_tasks(kind: str) -> None:
    registry = QUEUES[kind]._registry
    assert registry.task_to_string(TASKS[kind].task_class) == TASK_NAMES[kind]
