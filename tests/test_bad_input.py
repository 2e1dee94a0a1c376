"""Every bad input of API.md gets its status and the error shape, and leaves nothing behind."""

from __future__ import annotations

import json
import socket
import struct
import zlib
from collections.abc import Iterator

import httpx
import pytest
from support import Server, assert_api_error, job_files, png_bytes, running_server, wav_bytes

LIMITS = {
    "MYSPINBOT_MAX_IMAGES": "3",
    "MYSPINBOT_MAX_IMAGE_BYTES": str(64 * 1024),
    "MYSPINBOT_MAX_VOICE_BYTES": str(64 * 1024),
    "MYSPINBOT_MAX_REQUEST_BYTES": str(512 * 1024),
    "MYSPINBOT_MAX_IMAGE_PIXELS": str(1_000_000),
    # No workers: jobs stay queued, so a "lora" that never completed is easy to make.
    "MYSPINBOT_INPROCESS_WORKERS": "0",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("limits") / "data", **LIMITS) as live:
        yield live


@pytest.fixture()
def unchanged(server: Server, http: httpx.Client) -> Iterator[None]:
    """The test must leave no job and no file behind."""
    jobs_before = http.get("/api/jobs", params={"limit": 200}).json()["jobs"]
    files_before = job_files(server.data_dir)
    yield
    assert http.get("/api/jobs", params={"limit": 200}).json()["jobs"] == jobs_before
    leftovers = job_files(server.data_dir) - files_before
    assert leftovers <= {"uploads/.staging"}, leftovers


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A tiny PNG that declares a huge canvas (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


GENERATE_CASES = [
    (
        "not json",
        {"content": b"{nope", "headers": {"content-type": "application/json"}},
        400,
        "invalid_json",
    ),
    ("array", {"json": ["prompt"]}, 422, "invalid_field"),
    ("missing prompt", {"json": {}}, 422, "invalid_field"),
    ("empty prompt", {"json": {"prompt": ""}}, 422, "invalid_field"),
    ("blank prompt", {"json": {"prompt": "   "}}, 422, "invalid_field"),
    ("prompt too long", {"json": {"prompt": "x" * 2001}}, 422, "invalid_field"),
    ("prompt not text", {"json": {"prompt": 42}}, 422, "invalid_field"),
    ("lora not text", {"json": {"prompt": "a", "lora": 7}}, 422, "invalid_field"),
    (
        "unknown lora",
        {"json": {"prompt": "a", "lora": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}},
        422,
        "invalid_field",
    ),
    ("lora path", {"json": {"prompt": "a", "lora": "../../etc/passwd"}}, 422, "invalid_field"),
    ("form body", {"data": {"prompt": "a"}}, 415, "unsupported_type"),
]


@pytest.mark.parametrize(
    ("name", "request_kwargs", "status", "code"), GENERATE_CASES, ids=[c[0] for c in GENERATE_CASES]
)
def test_bad_generate_request(http, unchanged, name, request_kwargs, status, code) -> None:
    error = assert_api_error(http.post("/api/generate", **request_kwargs), status, code)
    if status == 422 and "prompt" in name:
        assert error["field"] == "prompt"


def test_generate_with_an_unfinished_lora_is_refused(http) -> None:
    queued = http.post(
        "/api/train",
        files=[
            ("images", ("a.png", png_bytes(), "image/png")),
            ("voice", ("v.wav", wav_bytes(), "audio/wav")),
        ],
    )
    assert queued.status_code == 202
    generate = http.post("/api/generate", json={"prompt": "x"}).json()
    for lora in (queued.json()["id"], generate["id"]):
        error = assert_api_error(
            http.post("/api/generate", json={"prompt": "a", "lora": lora}), 422, "invalid_field"
        )
        assert error["field"] == "lora"


def image(name: str = "a.png", data: bytes | None = None) -> tuple:
    return ("images", (name, png_bytes() if data is None else data, "image/png"))


def voice(data: bytes | None = None, name: str = "v.wav") -> tuple:
    return ("voice", (name, wav_bytes() if data is None else data, "audio/wav"))


TRAIN_CASES = [
    ("no images", [voice()], 422, "invalid_field", "images"),
    ("no voice", [image()], 422, "invalid_field", "voice"),
    ("two voices", [image(), voice(), voice()], 422, "invalid_field", "voice"),
    ("too many images", [image() for _ in range(4)] + [voice()], 422, "invalid_field", "images"),
    (
        "image too large",
        [image(data=png_bytes() + b"\0" * 70_000), voice()],
        413,
        "too_large",
        "images",
    ),
    (
        "voice too large",
        [image(), voice(data=wav_bytes() + b"\0" * 70_000)],
        413,
        "too_large",
        "voice",
    ),
    (
        "text named png",
        [image(data=b"just some text, not an image"), voice()],
        415,
        "unsupported_type",
        "images",
    ),
    (
        "gif image",
        [image("a.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"), voice()],
        415,
        "unsupported_type",
        "images",
    ),
    ("empty image", [image(data=b""), voice()], 422, "invalid_field", "images"),
    (
        "text named wav",
        [image(), voice(data=b"hello, not audio at all")],
        415,
        "unsupported_type",
        "voice",
    ),
    ("decompression bomb", [image(data=bomb_png()), voice()], 413, "image_too_large", "images"),
    (
        "unexpected file field",
        [image(), voice(), ("other", ("x", b"x", "text/plain"))],
        422,
        "invalid_field",
        "other",
    ),
    (
        "path in file name",
        [
            image("../../../../etc/passwd.png"),
            voice(name="../x.wav"),
            ("images", ("b.png", b"not png", "image/png")),
        ],
        415,
        "unsupported_type",
        "images",
    ),
]


@pytest.mark.parametrize(
    ("name", "files", "status", "code", "field"), TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES]
)
def test_bad_training_upload(http, unchanged, name, files, status, code, field) -> None:
    error = assert_api_error(http.post("/api/train", files=files), status, code)
    assert error.get("field") == field


TOO_LONG_CASES = [
    ("prompt", "/api/generate", {"json": {"prompt": "x" * 2001}}, 2000),
    ("prompt of wide characters", "/api/generate", {"json": {"prompt": "€" * 2001}}, 2000),
    ("name", "/api/train", {"files": [image(), voice()], "data": {"name": "n" * 101}}, 100),
    (
        "name of wide characters",
        "/api/train",
        {"files": [image(), voice()], "data": {"name": "€" * 101}},
        100,
    ),
    (
        "name far too long",
        "/api/train",
        {"files": [image(), voice()], "data": {"name": "n" * 5000}},
        100,
    ),
]


@pytest.mark.parametrize(
    ("name", "path", "request_kwargs", "limit"), TOO_LONG_CASES, ids=[c[0] for c in TOO_LONG_CASES]
)
def test_too_long_text_is_a_422_naming_the_field_and_its_limit(
    http, unchanged, name, path, request_kwargs, limit
) -> None:
    """One rule for every text field: nothing is cut, the answer says what the limit is."""
    error = assert_api_error(http.post(path, **request_kwargs), 422, "invalid_field")
    field = name.split()[0]
    assert error["field"] == field
    assert error["message"] == f"{field} is too long: at most {limit} characters"


def test_a_text_field_without_a_limit_of_its_own_is_bounded_too(http, unchanged) -> None:
    files = [image(), voice()]
    response = http.post("/api/train", files=files, data={"note": "n" * 5000})
    error = assert_api_error(response, 422, "invalid_field")
    assert error["field"] == "note"
    assert error["message"] == "note is too long: at most 4096 bytes"


def test_text_at_its_limit_is_kept_whole(http) -> None:
    response = http.post("/api/train", files=[image(), voice()], data={"name": "€" * 100})
    assert response.status_code == 202, response.text
    assert response.json()["input"]["name"] == "€" * 100


def test_training_upload_must_be_multipart(http, unchanged) -> None:
    assert_api_error(http.post("/api/train", json={"images": []}), 415, "unsupported_type")


def test_declared_oversized_body_is_refused_before_reading(server: Server, unchanged) -> None:
    """The server answers 413 from the headers alone: we never send the body it declares."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/train HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: multipart/form-data; boundary=abc\r\n"
            + f"Content-Length: {600 * 1024}\r\n\r\n".encode()
            + b"--abc\r\n"
        )
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert json.loads(body)["error"]["code"] == "too_large"


def test_malformed_multipart_is_a_400(http, unchanged) -> None:
    response = http.post(
        "/api/train",
        content=b"--abc\r\nnonsense",
        headers={"content-type": "multipart/form-data; boundary=abc"},
    )
    assert_api_error(response, 400)


@pytest.mark.parametrize(
    "path",
    [
        "/api/status/nope",
        "/api/status/01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "/api/status/..%2F..%2Fetc",
        "/api/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV/artifacts/clip.webp",
        "/api/nothing-here",
    ],
)
def test_unknown_things_are_json_404(http, path) -> None:
    assert_api_error(http.get(path), 404, "not_found")


def test_cancel_unknown_job_is_404(http) -> None:
    assert_api_error(http.post("/api/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV/cancel"), 404, "not_found")


def test_wrong_method_is_json_405(http) -> None:
    assert_api_error(http.delete("/api/generate"), 405, "method_not_allowed")


@pytest.mark.parametrize("query", ["kind=video", "state=done", "limit=0", "limit=201", "limit=x"])
def test_bad_list_filters_are_422(http, query) -> None:
    assert_api_error(http.get(f"/api/jobs?{query}"), 422, "invalid_field")


def test_bad_idempotency_key_is_422(http, unchanged) -> None:
    response = http.post(
        "/api/generate", json={"prompt": "a"}, headers={"Idempotency-Key": "has spaces"}
    )
    assert_api_error(response, 422, "invalid_field")


@pytest.mark.parametrize("path", ["/api/jobs?kinds=train", f"/api/status/{'0' * 26}?x=1"])
def test_unknown_query_parameters_are_422(http, path) -> None:
    assert_api_error(http.get(path), 422, "invalid_field")


def test_unexpected_error_is_a_generic_500_with_the_traceback_in_the_log(
    server: Server, http
) -> None:
    """A corrupt record makes the handler fail: the client sees the error shape, not the trace."""
    import redis

    from myspinbot.config import embedded_redis_url
    from myspinbot.jobs import keys

    job_id = "01ARZ3NDEKTSV4RRFFQ69G5FAW"
    store = redis.Redis.from_url(embedded_redis_url(server.data_dir))
    store.hset(keys.job(job_id), mapping={"doc": "{not json", "state": "queued"})
    try:
        response = http.get(f"/api/status/{job_id}", headers={"X-Request-ID": "boom-1"})
        error = assert_api_error(response, 500, "internal_error")
        assert "boom-1" in error["message"] and "JSONDecodeError" not in response.text
        assert "Traceback" in server.log() and "boom-1" in server.log()
    finally:
        store.delete(keys.job(job_id))
