"""Errors by their cause: an outage is a 503 to retry, a reply error is a 500 to fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_support import RedisServer
from support import assert_api_error, running_server, wait_until

from myspinbot.jobs import keys
from myspinbot.jobs.model import new_job_id


@pytest.fixture()
def store(redis_binary: str, tmp_path: Path):
    server = RedisServer(redis_binary, tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


def test_a_reply_error_is_a_500_and_an_outage_is_a_503_with_retry_after(
    store: RedisServer, tmp_path: Path
) -> None:
    job_id = new_job_id()
    with (
        running_server(
            tmp_path / "data", REDIS_URL=store.url, MYSPINBOT_INPROCESS_WORKERS="0"
        ) as server,
        server.client() as http,
        store.client() as client,
    ):
        # A string where the job's hash belongs: Redis answers HGET with WRONGTYPE.
        client.set(keys.job(job_id), "not a hash")
        response = http.get(f"/api/status/{job_id}", headers={"X-Request-ID": "reply-err-1"})
        error = assert_api_error(response, 500, "internal_error")
        assert "retry-after" not in response.headers
        assert "reply-err-1" in error["message"] and "WRONGTYPE" not in response.text
        wait_until(lambda: "WRONGTYPE" in server.log(), 5, "the reply error in the log")
        log = server.log()
        assert "Traceback" in log and "reply-err-1" in log
        assert "the job store is unreachable" not in response.text

        assert http.get("/health").status_code == 200  # Redis itself is fine

        store.kill()
        response = http.get(f"/api/status/{job_id}", headers={"X-Request-ID": "outage-1"})
        assert_api_error(response, 503, "redis_unavailable")
        assert int(response.headers["retry-after"]) > 0
        assert http.get("/health").json()["redis"] == "unreachable"


def test_an_error_of_a_page_is_a_page_and_an_error_of_the_api_is_json(http) -> None:
    page = http.get("/no/such/page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Error 404" in page.text and "Back to the dashboard" in page.text
    refused = http.put("/login")
    assert refused.status_code == 405 and "GET" in refused.headers["allow"]
    assert refused.headers["content-type"].startswith("text/html")
    assert_api_error(http.get("/api/no/such/route"), 404, "not_found")
