"""Token auth, sessions and CSRF, origin checks, streaming limits, traversal, headers, secrets."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import (
    Server,
    assert_api_error,
    png_bytes,
    running_server,
    train_files,
    wait_until,
    wav_bytes,
)
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

TOKEN = "correct-horse-battery-staple-42"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
JOB = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
PROTECTED = [
    ("POST", "/api/generate"),
    ("POST", "/api/train"),
    ("GET", f"/api/status/{JOB}"),
    ("GET", "/api/jobs"),
    ("POST", f"/api/jobs/{JOB}/cancel"),
    ("GET", f"/api/jobs/{JOB}/artifacts/clip.webp"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("secure") / "data"
    with running_server(
        data,
        MYSPINBOT_API_TOKEN=TOKEN,
        MYSPINBOT_AUTH_MAX_FAILURES="10000",
        MYSPINBOT_MAX_IMAGE_BYTES=str(1024 * 1024),
    ) as live:
        yield live


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}]
)
def test_protected_routes_refuse_missing_or_wrong_token(http, method, path, headers) -> None:
    assert_api_error(http.request(method, path, headers=headers), 401)


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_protected_routes_accept_the_token(http, method, path) -> None:
    response = http.request(method, path, headers=BEARER)
    assert response.status_code != 401, response.text


def test_health_and_metrics_stay_open(http) -> None:
    assert http.get("/health").status_code == 200
    assert http.get("/metrics").status_code == 200


def test_a_whole_job_with_the_token(http) -> None:
    job = http.post("/api/train", files=train_files(1), headers=BEARER)
    assert job.status_code == 202
    job_id = job.json()["id"]
    done = wait_until(
        lambda: (
            (j := http.get(f"/api/status/{job_id}", headers=BEARER).json())["state"] == "completed"
            and j
        )
    )
    artifact = http.get(done["artifacts"][0]["url"], headers=BEARER)
    assert artifact.status_code == 200
    assert_api_error(http.get(done["artifacts"][0]["url"]), 401)


def ws_status(server: Server, **kwargs) -> int:
    try:
        with connect(server.ws_url, open_timeout=10, **kwargs) as conn:
            assert conn.recv(timeout=10).startswith('{"type":"snapshot"')
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def test_websocket_needs_the_token_and_our_origin(server: Server) -> None:
    assert ws_status(server) == 401
    assert ws_status(server, additional_headers={"Authorization": "Bearer nope"}) == 401
    assert ws_status(server, additional_headers=BEARER) == 101
    own = f"http://127.0.0.1:{server.port}"
    assert ws_status(server, additional_headers=BEARER, origin=own) == 101
    assert ws_status(server, additional_headers=BEARER, origin="http://evil.example") == 403


def login(server: Server, token: str = TOKEN) -> tuple[httpx.Client, httpx.Response]:
    client = server.client(follow_redirects=False)
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client, client.post("/login", data={"csrf": csrf, "token": token})


def test_login_sets_a_hardened_session_cookie_and_logout_clears_it(server: Server) -> None:
    client, response = login(server)
    try:
        assert response.status_code == 303 and response.headers["location"] == "/"
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert TOKEN not in cookie
        page = client.get("/")
        assert page.status_code == 200
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
        assert client.get("/api/jobs").status_code == 200
        out = client.post("/logout", data={"csrf": csrf})
        assert out.status_code == 303
        assert client.get("/").headers["location"] == "/login"
        assert_api_error(client.get("/api/jobs"), 401)
    finally:
        client.close()


def test_dashboard_redirects_to_login_without_a_session(http) -> None:
    response = http.get("/", follow_redirects=False)
    assert response.status_code == 302 and response.headers["location"] == "/login"


def test_cookie_writes_need_the_csrf_token(server: Server) -> None:
    client, _ = login(server)
    try:
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/").text).group(1)
        assert_api_error(client.post("/api/generate", json={"prompt": "x"}), 403, "csrf_failed")
        bad = {"X-CSRF-Token": "forged"}
        assert_api_error(client.post("/api/generate", json={"prompt": "x"}, headers=bad), 403)
        ok = client.post("/api/generate", json={"prompt": "x"}, headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 202
    finally:
        client.close()


def test_login_form_needs_its_csrf_cookie(server: Server) -> None:
    with server.client() as client:
        response = client.post("/login", data={"csrf": "guess", "token": TOKEN})
        assert response.status_code == 403
        assert "myspinbot_session" not in response.headers.get("set-cookie", "")


def test_cross_site_writes_are_refused_even_with_the_token(http) -> None:
    response = http.post(
        "/api/generate", json={"prompt": "x"}, headers={**BEARER, "Origin": "https://evil.example"}
    )
    assert_api_error(response, 403, "cross_origin")


def test_a_lockout_refuses_only_failures_and_the_right_token_still_works(
    tmp_path: Path,
) -> None:
    """Ten wrong tokens from one address: its wrong tokens get 429 with Retry-After for the
    rest of the window, while the right token still works on the API, /ws and sign-in."""
    with (
        running_server(
            tmp_path / "data", MYSPINBOT_API_TOKEN=TOKEN, MYSPINBOT_INPROCESS_WORKERS="0"
        ) as live,
        live.client() as client,
    ):
        wrong = {"Authorization": "Bearer no"}
        failures = [client.get("/api/jobs", headers=wrong) for _ in range(10)]
        for failure in failures:
            assert_api_error(failure, 401, "invalid_token")
            assert failure.headers["www-authenticate"].startswith('Bearer realm="myspinbot"')
        limited = client.get("/api/jobs", headers=wrong)
        assert_api_error(limited, 429, "too_many_attempts")
        assert 0 < int(limited.headers["retry-after"]) <= 300
        assert "the right token still works" in limited.json()["error"]["message"]

        assert client.get("/api/jobs", headers=BEARER).status_code == 200
        assert client.post("/api/generate", json={"prompt": "x"}, headers=BEARER).status_code == 202
        assert ws_status(live, additional_headers=BEARER) == 101
        assert ws_status(live, additional_headers=wrong) == 429

        session, signed_in = login(live)
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"
        assert session.get("/").status_code == 200
        session.close()
        stranger, refused = login(live, token="still wrong")
        assert refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= 300
        assert "Too many failed attempts" in refused.text
        stranger.close()


def test_every_401_says_how_to_authenticate(server: Server, http) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        response = http.get("/api/jobs", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith('Bearer realm="myspinbot"')
    client, refused = login(server, token=TOKEN + "-wrong")
    client.close()
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith('Bearer realm="myspinbot"')


def test_oversized_upload_is_cut_off_while_streaming(server: Server) -> None:
    """A 64 MiB image against a 1 MiB limit: refused once the limit is passed, nothing more
    stored; the rest is read and dropped, so the client gets the 413 (test_upload_refusal)."""
    staging = server.data_dir / "uploads" / ".staging"
    sent = {"bytes": 0}
    largest = {"bytes": 0}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            size = (
                sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
                if staging.exists()
                else 0
            )
            largest["bytes"] = max(largest["bytes"], size)
            stop.wait(0.005)

    def body() -> Iterator[bytes]:
        yield (
            b'--xyz\r\nContent-Disposition: form-data; name="images"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n"
        )
        chunk = b"\0" * 65536
        for _ in range(1024):
            sent["bytes"] += len(chunk)
            yield chunk

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with server.client() as client:
            response = client.post(
                "/api/train",
                content=body(),
                headers={**BEARER, "Content-Type": "multipart/form-data; boundary=xyz"},
            )
    finally:
        stop.set()
        watcher.join()
    assert_api_error(response, 413, "too_large")
    assert largest["bytes"] <= 2 * 1024 * 1024, largest
    assert not staging.exists() or not any(staging.iterdir())


@pytest.mark.parametrize(
    "path",
    [
        "/api/status/..%2F..%2Fetc%2Fpasswd",
        "/api/status/%2e%2e",
        f"/api/jobs/..%2F{JOB}/cancel",
        f"/api/jobs/{JOB}/artifacts/..%2F..%2F..%2Fetc%2Fpasswd",
        f"/api/jobs/{JOB}/artifacts/%2e%2e%2fmanifest.json",
        "/api/jobs/..%2F..%2Fvar/artifacts/clip.webp",
        "/static/..%2F..%2Fpyproject.toml",
        "/static/../../pyproject.toml",
    ],
)
def test_path_traversal_in_path_parameters_fails(http, path) -> None:
    method = "POST" if path.endswith("/cancel") else "GET"
    response = http.request(method, path, headers=BEARER)
    assert response.status_code in (400, 404), (path, response.status_code)
    assert b"[project]" not in response.content and b"root:" not in response.content


def test_traversal_into_another_jobs_artifacts_fails(http) -> None:
    done = http.post("/api/generate", json={"prompt": "mine"}, headers=BEARER).json()
    other = http.post("/api/generate", json={"prompt": "other"}, headers=BEARER).json()
    for job in (done, other):
        wait_until(
            lambda j=job: (
                http.get(f"/api/status/{j['id']}", headers=BEARER).json()["state"] == "completed"
            )
        )
    sneaky = f"/api/jobs/{done['id']}/artifacts/..%2F..%2F{other['id']}%2F1%2Fclip.webp"
    assert http.get(sneaky, headers=BEARER).status_code == 404


PAGE_HEADERS = ("content-security-policy", "x-content-type-options", "referrer-policy")


def assert_hardened(response: httpx.Response) -> None:
    for name in PAGE_HEADERS:
        assert name in response.headers, (name, response.url)
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "unsafe-eval" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"


def test_security_headers_on_pages_api_and_artifacts(server: Server, http) -> None:
    client, _ = login(server)
    try:
        page = client.get("/")
        assert_hardened(page)
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "unsafe-inline" not in page.headers["content-security-policy"]
    finally:
        client.close()
    assert_hardened(http.get("/login"))
    assert_hardened(http.get("/api/jobs", headers=BEARER))
    assert_hardened(http.get("/api/jobs"))
    job = http.post("/api/generate", json={"prompt": "<b>headers</b>"}, headers=BEARER).json()
    done = wait_until(
        lambda: (
            (j := http.get(f"/api/status/{job['id']}", headers=BEARER).json())["state"]
            == "completed"
            and j
        )
    )
    for artifact in done["artifacts"]:
        response = http.get(artifact["url"], headers=BEARER)
        assert_hardened(response)
        assert response.headers["content-type"] == artifact["content_type"]
        assert "content-disposition" in response.headers
        assert "text/html" not in response.headers["content-type"]


def test_the_token_never_shows_in_logs(server: Server, http) -> None:
    http.get("/api/jobs", headers=BEARER)
    http.get("/api/jobs", headers={"Authorization": f"Bearer {TOKEN}x"})
    http.post("/api/generate", json={"prompt": TOKEN[::-1]}, headers=BEARER)
    login(server)[0].close()
    login(server, token=TOKEN + "-wrong")[0].close()
    with server.client() as client:
        client.get(f"/api/status/{JOB}", headers=BEARER)
    assert TOKEN not in server.log()


def test_embedded_redis_socket_is_owner_only_and_has_no_tcp_port(server: Server) -> None:
    import stat

    from myspinbot.config import embedded_socket_path

    sock = embedded_socket_path(server.data_dir)
    assert stat.S_IMODE(sock.stat().st_mode) & 0o077 == 0
    import redis

    client = redis.Redis.from_url(f"unix://{sock}")
    assert client.config_get("port")["port"] == "0"


def test_images_and_voice_keep_none_of_the_client_file_names(server: Server, http) -> None:
    files = [
        ("images", ("../../evil.png", png_bytes(), "image/png")),
        ("voice", ("..\\..\\evil.wav", wav_bytes(), "audio/wav")),
    ]
    job = http.post("/api/train", files=files, headers=BEARER).json()
    stored = server.data_dir / "uploads" / job["id"]
    names = sorted(p.relative_to(stored).as_posix() for p in stored.rglob("*") if p.is_file())
    assert names == ["images/000.png", "voice.wav"]
    assert job["input"]["images"][0]["name"] == "evil.png"
    assert not list(server.data_dir.parent.rglob("evil.*"))


def test_a_huge_json_body_is_refused_while_streaming(server: Server, http) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"prompt": "'
        for _ in range(64):
            yield b"x" * 65536
        yield b'"}'

    try:
        response = http.post(
            "/api/generate", content=body(), headers={**BEARER, "Content-Type": "application/json"}
        )
    except httpx.HTTPError:
        return  # cut off while we were still sending: refused
    assert_api_error(response, 413, "too_large")


def test_websocket_refuses_floods_and_oversized_messages(server: Server) -> None:
    from websockets.exceptions import ConnectionClosed

    with connect(server.ws_url, additional_headers=BEARER, open_timeout=10) as conn:
        conn.recv(timeout=10)  # the snapshot
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(50):
                conn.send('{"type": "subscribe", "topics": []}')
            while True:
                conn.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    with connect(server.ws_url, additional_headers=BEARER, open_timeout=10, max_size=None) as conn:
        conn.recv(timeout=10)
        with pytest.raises(ConnectionClosed) as closed:
            conn.send("x" * (64 * 1024))
            while True:
                conn.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def test_listening_beyond_loopback_without_a_token_warns(tmp_path: Path) -> None:
    with running_server(
        tmp_path / "data", MYSPINBOT_HOST="0.0.0.0", MYSPINBOT_INPROCESS_WORKERS="0"
    ) as live:
        assert "NO MYSPINBOT_API_TOKEN" in live.log()
    with running_server(tmp_path / "quiet", MYSPINBOT_INPROCESS_WORKERS="0") as live:
        assert "NO MYSPINBOT_API_TOKEN" not in live.log()


def test_a_short_token_is_warned_about(tmp_path: Path) -> None:
    """The lockout never refuses the right token, so the token's length is the defence."""
    with running_server(
        tmp_path / "data", MYSPINBOT_API_TOKEN="zq7Kp0x", MYSPINBOT_INPROCESS_WORKERS="0"
    ) as live:
        assert "MYSPINBOT_API_TOKEN has only 7 characters" in live.log()
        assert "zq7Kp0x" not in live.log()
    with running_server(
        tmp_path / "long", MYSPINBOT_API_TOKEN=TOKEN, MYSPINBOT_INPROCESS_WORKERS="0"
    ) as live:
        assert "MYSPINBOT_API_TOKEN has only" not in live.log()
