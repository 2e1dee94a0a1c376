"""The ComfyUI stand-in against a real ComfyUI: the same requests to both, the same answers.

Opt-in: set MYSPINBOT_TEST_COMFYUI to a ComfyUI checkout (its `main.py`) and, when its Python
is not `<checkout>/venv/bin/python` or `.venv/bin/python`, MYSPINBOT_TEST_COMFYUI_PYTHON to
an interpreter that can run it (torch, the checkout's requirements). The real server runs on
the CPU with `--base-directory` in a temporary folder, so only weightless graphs are compared:
ENGINES.md §5's smoke prompt, its cached rerun, a validation error, uploads and `/view`. What is
compared is the sequence of event types with the shape of each event's data, the shape of the
`/history` entry (and the submitted graph, value for value), and the `/upload/image` and
`/view` answers.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from PIL import Image
from skips import skip_because, skip_reason
from standins import comfyui_standin
from standins.wire import SMOKE_PROMPT, Socket, wait_until

CHECKOUT = os.environ.get("MYSPINBOT_TEST_COMFYUI")
pytestmark = [
    pytest.mark.comfyui,
    pytest.mark.skipif(
        not CHECKOUT,
        reason=skip_reason(
            "real ComfyUI tests",
            "no ComfyUI checkout given",
            "make test-comfyui COMFYUI=/path/to/ComfyUI",
        ),
    ),
]


def _python(checkout: Path) -> str:
    if os.environ.get("MYSPINBOT_TEST_COMFYUI_PYTHON"):
        return os.environ["MYSPINBOT_TEST_COMFYUI_PYTHON"]
    for candidate in ("venv/bin/python", ".venv/bin/python"):
        if (checkout / candidate).exists():
            return str(checkout / candidate)
    skip_because(
        "real ComfyUI tests",
        "no Python for the ComfyUI checkout",
        "set MYSPINBOT_TEST_COMFYUI_PYTHON (make test-comfyui does)",
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RealComfyUI:
    def __init__(self, url: str, base_dir: Path) -> None:
        self.url, self.base_dir = url, base_dir

    def ws_url(self, client_id: str) -> str:
        return self.url.replace("http", "ws") + f"/ws?clientId={client_id}"


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/system_stats", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    checkout = Path(CHECKOUT).resolve()
    base = tmp_path_factory.mktemp("real-comfyui")
    (base / "custom_nodes").mkdir()
    port = _free_port()
    command = [_python(checkout), str(checkout / "main.py"), "--cpu", "--listen", "127.0.0.1"]
    command += ["--port", str(port), "--base-directory", str(base)]
    command += ["--database-url", "sqlite:///:memory:"]
    log = open(base / "comfyui.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, cwd=checkout, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: process.poll() is not None or _ready(url), timeout=180)
        if process.poll() is not None:
            pytest.fail(f"ComfyUI exited: {(base / 'comfyui.log').read_text()[-2000:]}")
        yield RealComfyUI(url, base)
    finally:
        process.terminate()
        process.wait(30)
        log.close()


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    with comfyui_standin(tmp_path_factory.mktemp("standin-comfyui")) as server:
        yield server


def shape(value):
    """Types and keys, not values: what a client's parser depends on."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def run(server, prompt: dict) -> tuple[str, list[dict]]:
    client_id = uuid.uuid4().hex
    with Socket(server.ws_url(client_id)) as ws:
        ws.next()
        response = httpx.post(
            f"{server.url}/prompt", json={"prompt": prompt, "client_id": client_id}
        )
        assert response.status_code == 200, response.text
        prompt_id = response.json()["prompt_id"]
        frames = ws.until_done(prompt_id, timeout=120)
    return prompt_id, [f for f in frames if isinstance(f, dict)]


def events(frames: list[dict]) -> list[tuple[str, object]]:
    return [(f["type"], shape(f["data"])) for f in frames]


def both(real, standin, prompt: dict):
    return run(real, prompt), run(standin, prompt)


def test_the_smoke_prompt_sends_the_same_events_and_history(real, standin):
    (real_id, real_frames), (our_id, our_frames) = both(real, standin, SMOKE_PROMPT)
    assert [t for t, _ in events(our_frames)] == [t for t, _ in events(real_frames)]
    assert events(our_frames) == events(real_frames)
    executed = [f["data"]["output"] for f in real_frames if f["type"] == "executed"]
    assert [f["data"]["output"] for f in our_frames if f["type"] == "executed"] == executed
    real_entry = httpx.get(f"{real.url}/history/{real_id}").json()[real_id]
    our_entry = httpx.get(f"{standin.url}/history/{our_id}").json()[our_id]
    assert shape(our_entry) == shape(real_entry) or _same_but_order(our_entry, real_entry)
    assert our_entry["prompt"][2] == real_entry["prompt"][2]
    assert sorted(our_entry["prompt"][4]) == sorted(real_entry["prompt"][4])
    assert our_entry["outputs"] == real_entry["outputs"]
    assert our_entry["meta"] == real_entry["meta"]
    assert [m[0] for m in our_entry["status"]["messages"]] == [
        m[0] for m in real_entry["status"]["messages"]
    ]


def _same_but_order(ours: dict, theirs: dict) -> bool:
    # outputs_to_execute comes from a set upstream, so its order is arbitrary.
    ours, theirs = json.loads(json.dumps(ours)), json.loads(json.dumps(theirs))
    ours["prompt"][4].sort(), theirs["prompt"][4].sort()
    return shape(ours) == shape(theirs)


def test_a_rerun_comes_from_the_cache_on_both(real, standin):
    prompt = json.loads(json.dumps(SMOKE_PROMPT))
    prompt["1"]["inputs"]["color"] = 255
    both(real, standin, prompt)
    (_, real_frames), (_, our_frames) = both(real, standin, prompt)
    # Which cached output comes first follows a set's order upstream (it varies by process),
    # so node ids are left out of this comparison.
    assert anonymous(our_frames) == anonymous(real_frames)


def anonymous(frames: list[dict]) -> list:
    out = []
    for kind, data in events(frames):
        if kind == "progress_state":
            data = {**data, "nodes": sorted(map(json.dumps, data["nodes"].values()))}
        out.append((kind, data))
    return out


def test_a_validation_error_has_the_same_body(real, standin):
    prompt = json.loads(json.dumps(SMOKE_PROMPT))
    prompt["3"]["inputs"]["upscale_method"] = "foo"
    answers = [httpx.post(f"{s.url}/prompt", json={"prompt": prompt}) for s in (real, standin)]
    assert answers[0].status_code == answers[1].status_code == 400
    theirs, ours = answers[0].json(), answers[1].json()
    for body in (theirs, ours):
        body["node_errors"]["3"]["dependent_outputs"].sort()
    assert ours == theirs


def _png(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploads_answer_the_same(real, standin):
    def answers(server) -> list:
        out = []
        with httpx.Client(base_url=server.url) as http:
            for colour, fields in (
                ((1, 1, 1), {"subfolder": "conform"}),
                ((1, 1, 1), {"subfolder": "conform"}),
                ((2, 2, 2), {"subfolder": "conform"}),
                ((3, 3, 3), {"subfolder": "conform", "overwrite": "true"}),
                ((4, 4, 4), {"subfolder": "../escape"}),
                ((5, 5, 5), {"type": "temp"}),
            ):
                r = http.post(
                    "/upload/image", files={"image": ("a.png", _png(colour))}, data=fields
                )
                out.append((r.status_code, r.json() if r.status_code == 200 else r.content))
            r = http.post("/upload/image", data={"subfolder": "conform"})
            out.append((r.status_code, r.content))
        return out

    assert answers(standin) == answers(real)


def test_view_answers_the_same(real, standin):
    (real_id, _), (our_id, _) = both(real, standin, SMOKE_PROMPT)
    outputs = httpx.get(f"{real.url}/history/{real_id}").json()[real_id]["outputs"]
    files = [outputs["4"]["images"][0], outputs["6"]["images"][0]]
    probes = files + [
        {"filename": "../x.png"},
        {"filename": "/etc/passwd"},
        {"filename": "a.png", "subfolder": "../.."},
        {"filename": "missing.png"},
        {"filename": "a.png", "type": "nowhere"},
    ]

    def answers(server) -> list:
        out = []
        for params in probes:
            r = httpx.get(f"{server.url}/view", params=params)
            headers = {k: r.headers.get(k) for k in ("content-type", "content-disposition")}
            out.append((r.status_code, headers if r.status_code == 200 else None))
        return out

    assert answers(standin) == answers(real)


def test_an_execution_error_has_the_same_fields(real, standin):
    prompt = json.loads(json.dumps(SMOKE_PROMPT))
    prompt["1"]["inputs"]["color"] = 4242
    prompt["6"]["inputs"]["format"] = "mkv"  # a V3 combo: not checked until SaveVideo runs
    (real_id, real_frames), (our_id, our_frames) = both(real, standin, prompt)
    assert [t for t, _ in events(our_frames)] == [t for t, _ in events(real_frames)]
    (theirs,) = [f["data"] for f in real_frames if f["type"] == "execution_error"]
    (ours,) = [f["data"] for f in our_frames if f["type"] == "execution_error"]
    assert shape(ours) == shape(theirs) or set(ours) == set(theirs)
    for key in ("node_id", "node_type", "exception_message", "exception_type"):
        assert ours[key] == theirs[key], key
    for key in ("executed", "current_outputs"):  # sets upstream: compared as sets
        assert sorted(ours[key]) == sorted(theirs[key]), key
    assert set(ours["current_inputs"]) == set(theirs["current_inputs"])
    real_entry = httpx.get(f"{real.url}/history/{real_id}").json()[real_id]
    our_entry = httpx.get(f"{standin.url}/history/{our_id}").json()[our_id]
    assert our_entry["outputs"] == real_entry["outputs"]
    assert our_entry["status"]["status_str"] == real_entry["status"]["status_str"] == "error"


def test_loaded_saved_and_previewed_images_match(real, standin):
    def go(server):
        with httpx.Client(base_url=server.url) as http:
            http.post(
                "/upload/image",
                files={"image": ("pic.png", _png((9, 8, 7)))},
                data={"subfolder": "sub"},
            )
        prompt = {
            "1": {"class_type": "LoadImage", "inputs": {"image": "sub/pic.png"}},
            "2": {
                "class_type": "SaveImage",
                "inputs": {"images": ["1", 0], "filename_prefix": "imgs/pic"},
            },
            "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
        }
        first = run(server, prompt)
        prompt["4"] = {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}}
        prompt["2"]["inputs"]["images"] = ["4", 0]
        second = run(server, prompt)
        out = []
        for prompt_id, frames in (first, second):
            entry = httpx.get(f"{server.url}/history/{prompt_id}").json()[prompt_id]
            temp = entry["outputs"]["3"]["images"][0]["filename"]
            # Which of the two outputs runs first follows a set's order upstream.
            out.append((anonymous(frames), entry["outputs"]["2"], temp.startswith("ComfyUI_temp_")))
        return out

    assert go(standin) == go(real)


def test_the_socket_handshakes_match(real, standin):
    def hello(server) -> tuple:
        handshake = {"type": "feature_flags", "data": {"supports_preview_metadata": True}}
        with Socket(server.ws_url("conformance"), first_message=handshake) as ws:
            status, flags = ws.next(), ws.next()
        return shape(status), flags

    assert hello(standin) == hello(real)


def test_the_per_photo_training_nodes_are_declared_alike(real, standin):
    # The nodes of the shipped 0.3 training workflow's per-photo chain (issue: every photo
    # one sample), as GET /object_info/<class> shows them.
    names = ("LoadImageTextSetFromFolderNode", "RebatchImages", "VAEEncode", "RebatchLatents")
    for name in (*names, "TrainLoraNode", "SaveLoRANode"):
        real_info, standin_info = (
            httpx.get(f"{server.url}/object_info/{name}", timeout=30).json()[name]
            for server in (real, standin)
        )
        assert standin_info == real_info, name
