"""`myspinbot submit` against live servers: outcomes, exit codes, reconnection."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import ROOT, Server, descendants, free_port, png_bytes, running_server, wait_until
from support import wav_bytes as make_wav

TOKEN = "submit-test-token"


def cli_env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("MYSPINBOT_") and k != "REDIS_URL"
    }
    env.update(extra)
    return env


def submit_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "myspinbot.cli", "submit", *args]


def submit(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        submit_command(*args),
        cwd=ROOT,
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose mock pipelines obey #fault: markers."""
    data = tmp_path_factory.mktemp("submit") / "data"
    with running_server(data, MYSPINBOT_MOCK_FAULTS="true") as live:
        yield live


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Jobs long enough (~5 s) to cancel them, or to lose the WebSocket, while they run."""
    data = tmp_path_factory.mktemp("submit-slow") / "data"
    with running_server(
        data, MYSPINBOT_MOCK_STEPS="100", MYSPINBOT_MOCK_STEP_SECONDS="0.05"
    ) as live:
        yield live


def assert_clean_error(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""


def test_generate_prints_the_clip_url_and_exits_0(faulty: Server) -> None:
    result = submit("--url", faulty.url, "generate", "a lighthouse at dusk")
    assert result.returncode == 0, result.stderr
    urls = result.stdout.split()
    assert any(url.endswith("/clip.webp") for url in urls), result.stdout
    for url in urls:
        assert url.startswith(faulty.url + "/api/jobs/")
        assert httpx.get(url, timeout=10).status_code == 200
    # Not a terminal: plain progress lines on stderr, ending at 100 %.
    assert "100% done" in result.stderr


def test_train_with_real_files_exits_0(faulty: Server, tmp_path: Path) -> None:
    images = []
    for index in range(2):
        image = tmp_path / f"face-{index}.png"
        image.write_bytes(png_bytes(color=(40 * index, 90, 160)))
        images.append(str(image))
    voice = tmp_path / "voice.wav"
    voice.write_bytes(make_wav())
    result = submit(
        "--url", faulty.url, "train", "--images", *images, "--voice", str(voice), "--name", "me"
    )
    assert result.returncode == 0, result.stderr
    assert any(url.endswith("/lora.safetensors") for url in result.stdout.split())


def test_failed_job_exits_1_with_its_error(faulty: Server) -> None:
    result = submit("--url", faulty.url, "generate", "boom #fault:fail")
    assert result.returncode == 1, result.stderr
    assert "the mock pipeline was told to fail" in result.stderr
    assert_clean_error(result)


def test_invalid_request_exits_3_with_the_api_message(faulty: Server) -> None:
    prompt = "x" * 3000
    answer = httpx.post(faulty.url + "/api/generate", json={"prompt": prompt}, timeout=10)
    assert answer.status_code == 422
    result = submit("--url", faulty.url, "generate", prompt)
    assert result.returncode == 3
    assert answer.json()["error"]["message"] in result.stderr
    assert_clean_error(result)


def test_unreachable_server_exits_3(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = submit("--url", url, "generate", "anyone there?")
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"nothing answers at {url}" in result.stderr
    assert "this URL comes from --url" in result.stderr
    assert "--url URL or the MYSPINBOT_URL environment variable" in result.stderr
    assert_clean_error(result)


def test_refused_default_url_names_where_it_came_from_and_how_to_change_it() -> None:
    port = free_port()
    result = submit("generate", "anyone there?", MYSPINBOT_PORT=str(port))
    assert result.returncode == 3
    assert f"nothing answers at http://127.0.0.1:{port} " in result.stderr
    assert "comes from MYSPINBOT_HOST / MYSPINBOT_PORT" in result.stderr
    assert "--url URL or the MYSPINBOT_URL environment variable" in result.stderr
    assert_clean_error(result)


def test_url_variable_points_the_command_at_a_server(faulty: Server) -> None:
    result = submit("generate", "found by url", MYSPINBOT_URL=faulty.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{faulty.url}/api/jobs/")


def test_missing_file_exits_3_before_sending_anything(tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    result = submit("train", "--images", str(missing), "--voice", str(missing))
    assert result.returncode == 3
    assert "nope.png: no such file" in result.stderr
    assert_clean_error(result)


def test_default_url_is_the_local_server_of_the_environment(faulty: Server) -> None:
    result = submit("generate", "found by port", MYSPINBOT_PORT=str(faulty.port))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"http://127.0.0.1:{faulty.port}/api/jobs/")


def submit_in_background(server: Server, prompt: str) -> subprocess.Popen[str]:
    """`myspinbot submit generate PROMPT` following its job while the test acts on it."""
    return subprocess.Popen(
        submit_command("--url", server.url, "generate", prompt),
        cwd=ROOT,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cancelled_job_exits_2(slow: Server) -> None:
    prompt = "cancel me while I render"
    with submit_in_background(slow, prompt) as proc, slow.client() as http:
        job = wait_until(lambda: active_job(http, prompt), message="the submitted job to run")
        assert http.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 2, stderr
    assert "was cancelled" in stderr
    assert stdout == ""


def active_job(http: httpx.Client, prompt: str) -> dict | None:
    jobs = http.get("/api/jobs", params={"state": "active"}).json()["jobs"]
    mine = [job for job in jobs if job["input"].get("prompt") == prompt and job["progress"] > 0]
    return mine[0] if mine else None


def http_worker_pids(server: Server) -> list[int]:
    """The server's HTTP workers: the processes that keep a myspinbot_ws_clients gauge."""
    assert server.proc is not None
    pids = []
    for pid in descendants(server.proc.pid):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        variable = b"PROMETHEUS_MULTIPROC_DIR="
        folder = next((e[len(variable) :] for e in environ if e.startswith(variable)), b"")
        if folder and (Path(folder.decode()) / f"gauge_livesum_{pid}.db").exists():
            pids.append(pid)
    return pids


@pytest.fixture(scope="module")
def slow_multi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Long jobs on the multi-process layout, whose HTTP workers can die without the jobs."""
    data = tmp_path_factory.mktemp("submit-multi") / "data"
    with running_server(
        data,
        MYSPINBOT_HTTP_WORKERS="2",
        MYSPINBOT_MOCK_STEPS="100",
        MYSPINBOT_MOCK_STEP_SECONDS="0.05",
    ) as live:
        yield live


def test_follows_the_job_through_a_websocket_drop(slow_multi: Server) -> None:
    prompt = "keep following after the drop"
    with submit_in_background(slow_multi, prompt) as proc, slow_multi.client() as http:
        wait_until(lambda: active_job(http, prompt), message="the submitted job to run")
        workers = http_worker_pids(slow_multi)
        assert len(workers) == 2
        for worker in workers:  # whichever holds the socket: the supervisor restarts both
            os.kill(worker, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "reconnecting" in stderr
    assert "/clip.webp" in stdout


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("submit-token") / "data"
    with running_server(data, MYSPINBOT_API_TOKEN=TOKEN) as live:
        yield live


def test_token_is_sent_on_http_and_on_the_websocket(guarded: Server) -> None:
    refused = submit("--url", guarded.url, "generate", "no token")
    assert refused.returncode == 3
    message = httpx.get(guarded.url + "/api/jobs", timeout=10).json()["error"]["message"]
    assert message in refused.stderr
    assert_clean_error(refused)
    accepted = submit("--url", guarded.url, "--token", TOKEN, "generate", "with token")
    assert accepted.returncode == 0, accepted.stderr
    assert "/clip.webp" in accepted.stdout
    from_env = submit("--url", guarded.url, "generate", "token from env", MYSPINBOT_API_TOKEN=TOKEN)
    assert from_env.returncode == 0, from_env.stderr
