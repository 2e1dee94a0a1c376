"""Transient pipeline errors are retried with backoff up to the limit; permanent ones fail once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from reliability_support import EventLog, api_server, reliability_env
from support import Server, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("retries") / "data"
    env = reliability_env(
        data, None, MYSPINBOT_MAX_ATTEMPTS="3", MYSPINBOT_RETRY_BASE_SECONDS="0.2"
    )
    with api_server(data, env) as live:
        yield live


def final(http, job_id: str) -> dict:
    def ended() -> dict | None:
        record = http.get(f"/api/status/{job_id}").json()
        return record if record["state"] not in ("queued", "active") else None

    return wait_until(ended, 30, f"job {job_id} to end")


def test_transient_errors_are_retried_then_fail_with_the_last_error(server: Server) -> None:
    events = EventLog(server.ws_url)
    with server.client() as http:
        job = http.post("/api/generate", json={"prompt": "#fault:transient always"}).json()
        failed = final(http, job["id"])
    events.close()
    assert failed["state"] == "failed" and failed["attempt"] == 3
    assert failed["error"]["code"] == "transient_failure"
    assert failed["error"]["message"].startswith("gave up after 3 attempts")
    frames = [f for f in events.snapshot() if f.get("job", {}).get("id") == job["id"]]
    waits = [f["job"] for f in frames if f["type"] == "queued" and f["job"]["attempt"] > 0]
    # Between attempts the record said why it waits and for how long.
    assert [w["attempt"] for w in waits] == [1, 2]
    assert all(w["error"]["code"] == "transient_failure" for w in waits)
    assert all(w["message"].startswith("retrying in") for w in waits)
    assert [f["type"] for f in frames].count("error") == 1


def test_a_permanent_error_fails_at_once(server: Server) -> None:
    with server.client() as http:
        job = http.post("/api/generate", json={"prompt": "#fault:fail now"}).json()
        failed = final(http, job["id"])
    assert failed["state"] == "failed" and failed["attempt"] == 1
    assert failed["error"] == {
        "code": "mock_failure",
        "message": "the mock pipeline was told to fail",
    }
