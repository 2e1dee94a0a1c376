"""Cancel: queued at once, active within one step, finished is a 409."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import Events, Server, assert_api_error, running_server, wait_until

STEP = 0.3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("cancel") / "data"
    with running_server(
        data, MYSPINBOT_MOCK_STEPS="40", MYSPINBOT_MOCK_STEP_SECONDS=str(STEP)
    ) as live:
        yield live


def test_cancel_queued_job_is_immediate(server: Server, http) -> None:
    # The one generate worker is busy with the first job, so the second waits in the queue.
    busy = http.post("/api/generate", json={"prompt": "busy"}).json()
    waiting = http.post("/api/generate", json={"prompt": "waiting"}).json()
    response = http.post(f"/api/jobs/{waiting['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["state"] == "cancelled"
    assert http.get(f"/api/status/{waiting['id']}").json()["state"] == "cancelled"
    http.post(f"/api/jobs/{busy['id']}/cancel")
    wait_until(lambda: http.get(f"/api/status/{busy['id']}").json()["state"] == "cancelled")
    # The cancelled job's message is skipped when a worker pops it: it never runs.
    assert http.get(f"/api/status/{waiting['id']}").json()["started_at"] is None


def test_cancel_active_job_stops_within_one_step(server: Server, http) -> None:
    events = Events(server.ws_url)
    try:
        events.next()
        job = http.post("/api/generate", json={"prompt": "long"}).json()
        events.until(
            lambda f: (
                f["type"] == "progress"
                and f["job"]["id"] == job["id"]
                and f["job"]["progress"] >= 5
            )
        )
        response = http.post(f"/api/jobs/{job['id']}/cancel")
        assert response.status_code == 200 and response.json()["state"] == "active"
        at_cancel = http.get(f"/api/status/{job['id']}").json()["progress"]
        final = events.until(lambda f: f["job"]["id"] == job["id"] and f["type"] == "cancelled")
    finally:
        events.close()
    assert final["job"]["state"] == "cancelled"
    # One more step at most ran after the request (each step is 2.5 % of this job).
    assert final["job"]["progress"] <= at_cancel + 3
    assert final["job"]["artifacts"] == []


def test_cancel_finished_job_is_409(server: Server, http) -> None:
    job = http.post("/api/generate", json={"prompt": "quick"}).json()
    http.post(f"/api/jobs/{job['id']}/cancel")
    wait_until(lambda: http.get(f"/api/status/{job['id']}").json()["state"] == "cancelled")
    assert_api_error(http.post(f"/api/jobs/{job['id']}/cancel"), 409, "already_finished")
