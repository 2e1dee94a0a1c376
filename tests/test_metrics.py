"""/metrics against real deployments: HTTP workers, a worker replica, WebSockets, Redis."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from ops_helpers import dashboard_metric_names, exposition_metric_names
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families
from support import ROOT, Events, Server, descendants, running_server, wait_until

from myspinbot.jobs.keys import WORKER_TTL_MS
from myspinbot.jobs.model import new_job_id
from myspinbot.metrics.http import UNMATCHED, method_label, route_template
from myspinbot.metrics.jobs import RedisJobCollector
from myspinbot.server.shared_metrics import DIR_PREFIX, forget_dead_processes, remove_orphaned_dirs

QUEUES = ("train", "generate")
JOB_ID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(http: httpx.Client) -> tuple[str, Samples]:
    response = http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def metric(http: httpx.Client, name: str, **labels: str) -> float | None:
    """One sample's value; None when this scrape failed (an HTTP worker was just killed)."""
    try:
        return value(scrape(http)[1], name, **labels)
    except httpx.TransportError:
        return None


def assert_no_job_ids(samples: Samples) -> None:
    for _, labels in samples:
        for label, text in labels:
            assert not JOB_ID.search(text), f"a job id in label {label}={text!r}"


def generate(http: httpx.Client, prompt: str) -> dict:
    response = http.post("/api/generate", json={"prompt": prompt})
    assert response.status_code == 202, response.text
    return response.json()


def finished(http: httpx.Client, job_id: str) -> dict | None:
    job = http.get(f"/api/status/{job_id}").json()
    return job if job["state"] in ("completed", "failed", "cancelled") else None


def start_replica(server: Server, queue: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "myspinbot.cli", "worker", "--queue", queue],
        cwd=ROOT,
        env=server.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def ws_gauge_per_process(server: Server) -> dict[int, float]:
    """Each HTTP worker's own myspinbot_ws_clients, read from the multiprocess files."""
    assert server.proc is not None
    folder = None
    for pid in descendants(server.proc.pid):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for entry in environ:
            if entry.startswith(b"PROMETHEUS_MULTIPROC_DIR="):
                folder = Path(entry.split(b"=", 1)[1].decode())
    assert folder is not None, "no process of the server has PROMETHEUS_MULTIPROC_DIR"
    counts = {}
    for path in folder.glob("gauge_livesum_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        values = MmapedDict.read_all_values_from_file(str(path))
        counts[pid] = sum(v for key, v, _, _ in values if "myspinbot_ws_clients" in key)
    return counts


def test_job_metrics_follow_real_jobs_with_two_http_workers_and_a_replica(
    external_redis: str, tmp_path: Path
) -> None:
    jobs = 3
    with (
        running_server(
            tmp_path / "data",
            REDIS_URL=external_redis,
            MYSPINBOT_HTTP_WORKERS="2",
            MYSPINBOT_INPROCESS_WORKERS="0",
        ) as server,
        server.client() as http,
    ):
        _, before = scrape(http)
        for queue in QUEUES:
            assert value(before, "myspinbot_workers", queue=queue) == 0
            assert value(before, "myspinbot_queue_depth", queue=queue) == 0
        ids = [generate(http, f"metrics {i}")["id"] for i in range(jobs)]

        # No worker yet: the jobs wait, and every HTTP worker's scrape says so.
        for _ in range(4):
            _, queued = scrape(http)
            assert value(queued, "myspinbot_queue_depth", queue="generate") == jobs
            assert value(queued, "myspinbot_jobs", queue="generate", state="queued") == jobs
            assert value(queued, "myspinbot_queue_depth", queue="train") == 0

        replica = start_replica(server, "generate")
        try:
            wait_until(
                lambda: metric(http, "myspinbot_workers", queue="generate") == 1,
                message="the replica's heartbeat in myspinbot_workers",
            )
            assert metric(http, "myspinbot_workers", queue="train") == 0
            for job_id in ids:
                assert wait_until(lambda job_id=job_id: finished(http, job_id))["state"] == (
                    "completed"
                )
            body, after = scrape(http)
        finally:
            replica.kill()  # no goodbye: only the heartbeat's expiry can take it off the count
            replica.wait(10)

        def moved(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert moved("myspinbot_jobs_finished_total", queue="generate", state="completed") == jobs
        assert moved("myspinbot_job_duration_seconds_count", queue="generate") == jobs
        assert moved("myspinbot_job_duration_seconds_bucket", queue="generate", le="+Inf") == jobs
        assert value(after, "myspinbot_job_duration_seconds_sum", queue="generate") > 0
        assert value(after, "myspinbot_jobs", queue="generate", state="completed") == jobs
        assert value(after, "myspinbot_queue_depth", queue="generate") == 0
        for state in ("failed", "cancelled"):
            assert moved("myspinbot_jobs_finished_total", queue="generate", state=state) == 0
        assert moved("myspinbot_jobs_finished_total", queue="train", state="completed") == 0
        assert_no_job_ids(after)
        assert not any(job_id in body for job_id in ids)

        wait_until(
            lambda: metric(http, "myspinbot_workers", queue="generate") == 0,
            timeout=WORKER_TTL_MS / 1000 + 5,
            message="myspinbot_workers to drop once the replica's heartbeat expires",
        )


def open_sockets_on_every_worker(server: Server, workers: int, limit: int = 40) -> list[Events]:
    """Open WebSockets until each HTTP worker holds some (the kernel picks the worker)."""
    sockets = [Events(server.ws_url) for _ in range(8)]
    while True:
        for socket in sockets:
            if not socket.frames:
                socket.next()  # the snapshot: the server has counted this socket
        holding = [count for count in ws_gauge_per_process(server).values() if count > 0]
        if len(holding) >= workers:
            return sockets
        assert len(sockets) < limit, f"{len(sockets)} sockets all went to {len(holding)} worker"
        sockets.append(Events(server.ws_url))


def close_all(sockets: list[Events]) -> None:
    for socket in sockets:
        try:
            socket.close()
        except Exception:  # a socket of a killed worker may fail to close cleanly; it is gone
            continue


def test_ws_clients_counts_open_sockets_across_http_workers_and_worker_restarts(
    tmp_path: Path,
) -> None:
    with (
        running_server(
            tmp_path / "data", MYSPINBOT_HTTP_WORKERS="2", MYSPINBOT_INPROCESS_WORKERS="0"
        ) as server,
        server.client() as http,
    ):
        assert metric(http, "myspinbot_ws_clients") == 0
        sockets = open_sockets_on_every_worker(server, workers=2)
        count = len(sockets)
        # Whichever worker answers, the scrape sums both.
        for _ in range(6):
            assert metric(http, "myspinbot_ws_clients") == count
        close_all(sockets[: count // 2])
        wait_until(lambda: metric(http, "myspinbot_ws_clients") == count - count // 2)
        close_all(sockets[count // 2 :])
        wait_until(lambda: metric(http, "myspinbot_ws_clients") == 0)

        # A crashed worker's sockets are gone with it, and so must be its share of the gauge.
        sockets = open_sockets_on_every_worker(server, workers=2)
        per_process = ws_gauge_per_process(server)
        victim, held = next((pid, n) for pid, n in per_process.items() if n > 0)
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: metric(http, "myspinbot_ws_clients") == len(sockets) - held,
            message="the killed worker's sockets to leave myspinbot_ws_clients",
        )
        close_all(sockets)
        wait_until(lambda: metric(http, "myspinbot_ws_clients") == 0)


def test_http_metrics_label_route_templates_never_raw_paths(http: httpx.Client) -> None:
    job = generate(http, "labels")
    wait_until(lambda: finished(http, job["id"]))
    artifact = http.get(f"/api/status/{job['id']}").json()["artifacts"][0]
    assert http.get(artifact["url"]).status_code == 200
    assert http.get(f"/api/status/{new_job_id()}").status_code == 404
    assert http.get(f"/no/such/page/{new_job_id()}").status_code == 404
    http.request("BREW", f"/api/status/{new_job_id()}")

    body, samples = scrape(http)
    counted = {
        dict(labels)["route"]: dict(labels)
        for name, labels in samples
        if name == "myspinbot_http_request_duration_seconds_count"
    }
    assert {
        "/api/generate",
        "/api/status/<job_id>",
        "/api/jobs/<job_id>/artifacts/<name>",
        "/health",
        UNMATCHED,
    } <= set(counted)
    assert all(route == UNMATCHED or route.startswith("/") for route in counted), counted
    methods = {labels["method"] for labels in counted.values()}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    assert_no_job_ids(samples)
    assert job["id"] not in body


def test_dashboard_queries_only_metric_names_that_metrics_exports(
    server: Server, http: httpx.Client
) -> None:
    job = generate(http, "dashboard")
    events = Events(server.ws_url)
    try:
        assert events.next()["type"] == "snapshot"
        wait_until(lambda: finished(http, job["id"]))
        body, _ = scrape(http)
    finally:
        events.close()
    missing = dashboard_metric_names() - exposition_metric_names(body)
    assert not missing, f"the Grafana dashboard queries metrics /metrics does not export: {missing}"


def readme_metrics() -> dict[str, tuple[str, set[str]]]:
    """The metrics table of docs/api.md: name -> (type, label names)."""
    section = (ROOT / "docs" / "api.md").read_text(encoding="utf-8").split("\n## Metrics", 1)[1]
    section = section.split("\n## ", 1)[0]
    found = {}
    for name, labels, kind in re.findall(
        r"^\| `(\w+)(?:\{([\w,]*)\})?` \| (\w+) \|", section, re.M
    ):
        found[name] = (kind, set(filter(None, labels.split(","))))
    assert len(found) >= 8, found
    return found


# Series that exist only where engines are configured (this server runs the mocks).
ONLY_WITH_ENGINES = {"myspinbot_engine_up"}


def test_every_metric_the_readme_lists_is_exported_with_its_labels_for_both_queues(
    http: httpx.Client,
) -> None:
    body = http.get("/metrics").text
    families = {family.name: family for family in text_string_to_metric_families(body)}
    for name, (kind, labels) in readme_metrics().items():
        family_name = name.removesuffix("_total") if kind == "counter" else name
        assert family_name in families, f"{name} is not exported"
        family = families[family_name]
        assert family.type == kind, (name, family.type)
        if name in ONLY_WITH_ENGINES:
            continue  # declared, and without series here (tests/engines has them)
        assert family.samples, f"{name} has no samples"
        for sample in family.samples:
            assert set(sample.labels) - {"le"} == labels, (name, sample.labels)
        if "queue" in labels:
            assert {s.labels["queue"] for s in family.samples} == set(QUEUES), name
        if name == "myspinbot_jobs":
            assert len({tuple(s.labels.values()) for s in family.samples}) == 2 * 5
        if name == "myspinbot_jobs_finished_total":
            states = {s.labels["state"] for s in family.samples}
            assert states == {"completed", "failed", "cancelled"}
    names = exposition_metric_names(body)
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"} <= names


@pytest.fixture()
def stoppable_redis(redis_binary: str, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    sock = tmp_path / "r.sock"
    proc = subprocess.Popen(
        [redis_binary, "--port", "0", "--unixsocket", str(sock), "--save", "", "--dir", tmp_path],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"unix://{sock}"

    def answers() -> bool:
        try:
            with redis.Redis.from_url(url, socket_timeout=1) as conn:
                return bool(conn.ping())
        except redis.ConnectionError:  # the socket file exists before it accepts
            return False

    wait_until(answers, message="redis")
    try:
        yield url, proc
    finally:
        proc.kill()
        proc.wait(10)


def test_metrics_still_answer_when_redis_is_down(
    stoppable_redis: tuple[str, subprocess.Popen], tmp_path: Path
) -> None:
    url, redis_proc = stoppable_redis
    with (
        running_server(tmp_path / "data", REDIS_URL=url, MYSPINBOT_INPROCESS_WORKERS="0") as server,
        server.client() as http,
    ):
        assert metric(http, "myspinbot_redis_up") == 1
        redis_proc.terminate()
        redis_proc.wait(10)
        body, samples = scrape(http)
        assert value(samples, "myspinbot_redis_up") == 0
        assert value(samples, "myspinbot_ws_clients") == 0
        # Unknown is not zero: the job series are left out rather than reported as 0.
        assert "myspinbot_queue_depth" not in exposition_metric_names(body)


def test_route_labels_read_as_templates() -> None:
    assert route_template("api/status/<job_id:str>") == "/api/status/<job_id>"
    assert route_template("api/jobs/<job_id:str>/artifacts/<name:str>") == (
        "/api/jobs/<job_id>/artifacts/<name>"
    )
    assert route_template("static/<__file_uri__:path>") == "/static/<file_uri>"
    assert route_template("") == "/"
    assert route_template("health") == "/health"
    assert method_label("GET") == "GET"
    assert method_label("BREW") == "other"


def test_job_collector_reports_redis_down_without_inventing_zeros() -> None:
    families = list(RedisJobCollector(None).collect())
    assert [f.name for f in families] == ["myspinbot_redis_up"]
    assert families[0].samples[0].value == 0


def test_live_gauges_of_dead_processes_are_forgotten(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for pid in (gone.pid, os.getpid()):
        (tmp_path / f"gauge_livesum_{pid}.db").write_bytes(b"")
    (tmp_path / f"histogram_{gone.pid}.db").write_bytes(b"")
    assert forget_dead_processes(str(tmp_path)) == [gone.pid]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"gauge_livesum_{os.getpid()}.db", f"histogram_{gone.pid}.db"]
    )


def test_sample_folders_of_servers_that_died_are_removed_at_start(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    orphan = tmp_path / f"{DIR_PREFIX}{gone.pid}-x1"
    running = tmp_path / f"{DIR_PREFIX}{os.getpid()}-x2"
    for folder in (orphan, running):
        folder.mkdir()
        (folder / "histogram_1.db").write_bytes(b"")
    remove_orphaned_dirs(tmp_path)
    assert not orphan.exists()
    assert running.exists()
