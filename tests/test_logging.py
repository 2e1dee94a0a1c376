"""One logging configuration: one line per request, request ids end to end, JSON lines."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import ROOT, Events, Server, running_server, wait_until

from myspinbot.jobs.model import new_job_id

JSON_KEYS = {"time", "level", "logger", "message", "request_id"}


@pytest.fixture(scope="module")
def text_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Two HTTP workers, so a line printed once per process would show up twice."""
    data = tmp_path_factory.mktemp("logging") / "data"
    with running_server(data, MYSPINBOT_HTTP_WORKERS="2") as live:
        yield live


def lines_with(server: Server, text: str) -> list[str]:
    return [line for line in server.log().splitlines() if text in line]


def finished(http: httpx.Client, job_id: str) -> bool:
    return http.get(f"/api/status/{job_id}").json()["state"] in ("completed", "failed")


def test_each_request_logs_one_access_line_carrying_its_request_id(text_server: Server) -> None:
    with text_server.client() as http:
        answered = []
        for index in range(6):
            path = f"/api/status/{new_job_id()}"  # unique, so its lines can be counted
            given = {"X-Request-ID": f"client-{index}-{uuid.uuid4().hex[:8]}"} if index % 2 else {}
            response = http.get(path, headers=given)
            assert response.status_code == 404
            rid = response.headers["X-Request-ID"]
            assert rid == given.get("X-Request-ID", rid)
            answered.append((path, rid))
        bad = http.get("/health", headers={"X-Request-ID": "no spaces; or <tags>"})
        assert bad.headers["X-Request-ID"].isalnum()

    for path, rid in answered:
        wait_until(lambda path=path: lines_with(text_server, path), message=f"access line {path}")
        lines = lines_with(text_server, path)
        assert len(lines) == 1, lines  # no duplicate from a second handler or process
        assert "sanic.access" in lines[0]
        assert f"[{rid}]" in lines[0]
        assert f"GET http://127.0.0.1:{text_server.port}{path} 404" in lines[0]
        assert len(lines_with(text_server, rid)) == 1


def test_a_jobs_worker_log_lines_carry_the_request_id_of_its_post(text_server: Server) -> None:
    rid = f"trace-{uuid.uuid4().hex[:12]}"
    with text_server.client() as http:
        response = http.post(
            "/api/generate", json={"prompt": "trace me"}, headers={"X-Request-ID": rid}
        )
        assert response.status_code == 202
        job_id = response.json()["id"]
        wait_until(lambda: finished(http, job_id))
    wait_until(lambda: lines_with(text_server, f"job {job_id} completed"), message="job log")
    job_lines = [line for line in lines_with(text_server, job_id) if "myspinbot.jobs" in line]
    assert len(job_lines) >= 2, job_lines  # started, completed
    assert all(f"[{rid}]" in line for line in job_lines), job_lines


def test_json_format_gives_one_json_object_per_line_from_every_process(tmp_path: Path) -> None:
    rid = f"json-{uuid.uuid4().hex[:12]}"
    with (
        running_server(
            tmp_path / "data", MYSPINBOT_LOG_FORMAT="json", MYSPINBOT_HTTP_WORKERS="2"
        ) as server,
        server.client() as http,
    ):
        events = Events(server.ws_url)
        events.next()
        job = http.post("/api/generate", json={"prompt": "json"}, headers={"X-Request-ID": rid})
        job_id = job.json()["id"]
        wait_until(lambda: finished(http, job_id))
        assert http.post("/api/generate", json={"prompt": ""}).status_code == 422
        assert http.get("/no/such/page").status_code == 404
        events.close()
        wait_until(lambda: "WS CLOSE" in server.log(), message="the WebSocket's close line")
    # The server has stopped: its shutdown lines are in the log too.
    entries = []
    for line in server.log().splitlines():
        assert line.strip(), "an empty line"
        entry = json.loads(line)  # every line, whoever wrote it
        assert set(entry) >= JSON_KEYS, entry
        entries.append(entry)
    loggers = {entry["logger"] for entry in entries}
    assert {"sanic.access", "sanic.root", "myspinbot.jobs"} <= loggers, loggers
    post = [e for e in entries if e["logger"] == "sanic.access" and e["request_id"] == rid]
    assert len(post) == 1 and post[0]["message"].startswith("POST ") and post[0]["status"] == 202
    assert post[0]["duration"].endswith("ms")
    job_entries = [e for e in entries if e["logger"] == "myspinbot.jobs" and job_id in e["message"]]
    assert job_entries and all(e["request_id"] == rid for e in job_entries)
    assert any(e["message"].startswith("WS OPEN ") for e in entries)


PROBE = """
import logging, threading, warnings
from myspinbot.config import Settings
from myspinbot.logs import configure_logging, request_id
configure_logging(Settings(log_format="json", log_level="info"))
request_id.set("probe-1")
logging.getLogger("huey.consumer").warning("a line from %s", "huey")
logging.getLogger("sanic.access").info(
    "", extra={"request": "GET http://x/y", "status": 200, "byte": 5, "duration": " 1.0ms"}
)
logging.getLogger("sanic.access").info(
    "OPEN", extra={"request": " \N{ELECTRIC PLUG} ws://x/ws", "status": "", "byte": ""}
)
logging.getLogger("myspinbot.jobs").info("multi\\nline %s", "message")
warnings.warn("a warning goes through logging too")
thread = threading.Thread(target=lambda: 1 / 0, name="doomed")
thread.start()
thread.join()
raise RuntimeError("uncaught, but still one JSON line")
"""


def test_json_lines_from_every_logger_warnings_and_uncaught_errors_parse() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    by_logger = {entry["logger"]: entry for entry in entries}
    assert by_logger["huey.consumer"]["message"] == "a line from huey"
    assert by_logger["huey.consumer"]["request_id"] == "probe-1"
    access = [e["message"] for e in entries if e["logger"] == "sanic.access"]
    assert access == ["GET http://x/y 200 5 1.0ms", "WS OPEN ws://x/ws"]
    assert by_logger["myspinbot.jobs"]["message"] == "multi\nline message"
    assert "a warning goes through logging too" in by_logger["py.warnings"]["message"]
    errors = [e for e in entries if e["level"] == "critical"]
    assert "ZeroDivisionError" in errors[0]["exception"] and "doomed" in errors[0]["message"]
    assert "uncaught, but still one JSON line" in errors[1]["exception"]


def test_access_log_can_be_turned_off(tmp_path: Path) -> None:
    with running_server(
        tmp_path / "data", MYSPINBOT_ACCESS_LOG="false", MYSPINBOT_INPROCESS_WORKERS="0"
    ) as server:
        marker = new_job_id()
        with server.client() as http:
            assert http.get(f"/api/status/{marker}").status_code == 404
            assert http.get("/metrics").status_code == 200  # a request after it, then the check
    assert "sanic.access" not in server.log()
    assert marker not in server.log()
