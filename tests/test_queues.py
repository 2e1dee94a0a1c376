"""The one coupling to Huey's message layout: stamped messages decode as Huey's own."""

from __future__ import annotations

import pytest

from myspinbot.jobs.model import new_job_id
from myspinbot.jobs.queues import QUEUES, job_message, message_job_id
from myspinbot.jobs.tasks import TASKS


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
