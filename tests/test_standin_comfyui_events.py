"""The ComfyUI stand-in's WebSocket: the message order of ENGINES.md §2.3, routing by client id,
reconnects, previews, interrupts and execution errors, over a raw socket."""

from __future__ import annotations

import json
import struct
import uuid

import httpx
import pytest
from standins import comfyui_standin
from standins.wire import (
    SAMPLER_MODELS,
    SMOKE_PROMPT,
    Socket,
    data_of,
    of_type,
    queue_left,
    sampler_prompt,
    squeeze,
    types,
    wait_until,
)
from websockets.exceptions import ConnectionClosed


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    with comfyui_standin(
        tmp_path_factory.mktemp("events"), models=SAMPLER_MODELS, step_seconds=0.02, preview=True
    ) as server:
        yield server


def post(server, prompt: dict, **body) -> str:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        response = http.post("/prompt", json={"prompt": prompt, **body})
    assert response.status_code == 200, response.text
    return response.json()["prompt_id"]


def fresh(prompt: dict, tag: str) -> dict:
    """The same graph with one literal changed, so nothing comes from the cache."""
    copy = json.loads(json.dumps(prompt))
    node = "1" if copy.get("1", {}).get("class_type") == "EmptyImage" else "8"
    key = "color" if node == "1" else "seed"
    copy[node]["inputs"][key] = int(uuid.UUID(tag).int % 1000) + 1
    return copy


def test_a_successful_prompt_follows_the_canonical_sequence(comfy):
    client_id = uuid.uuid4().hex
    with Socket(comfy.ws_url(client_id)) as ws:
        hello = ws.next()
        assert hello == {
            "type": "status",
            "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": client_id},
        }
        prompt_id = post(comfy, fresh(SMOKE_PROMPT, uuid.uuid4().hex), client_id=client_id)
        frames = ws.until_done(prompt_id)
    per_node = ["progress_state", "executing", "progress_state"]
    saving = ["progress_state", "executing", "executed", "progress_state"]
    assert squeeze(types(frames)) == squeeze(
        ["status", "status", "execution_start", "execution_cached"]
        + per_node * 3
        + saving
        + per_node
        + saving
        + ["execution_success", "status", "executing"]
    )
    assert [d["status"]["exec_info"]["queue_remaining"] for d in data_of(frames, "status")] == [
        1,
        1,
        0,
    ]
    executing = [d["node"] for d in data_of(frames, "executing")]
    assert executing == ["1", "2", "3", "4", "5", "6", None]
    executed = data_of(frames, "executed")
    assert [e["node"] for e in executed] == ["4", "6"]
    assert executed[1]["output"]["images"][0]["filename"].endswith(".mp4")
    last_state = data_of(frames, "progress_state")[-1]["nodes"]
    assert sorted(last_state) == ["1", "2", "3", "4", "5", "6"]
    assert {n["state"] for n in last_state.values()} == {"finished"}
    assert all(
        f["data"]["prompt_id"] == prompt_id
        for f in frames
        if isinstance(f, dict) and f["type"] != "status"
    )


def test_a_rerun_of_the_same_prompt_comes_from_the_cache(comfy):
    prompt = fresh(SMOKE_PROMPT, uuid.uuid4().hex)
    client_id = uuid.uuid4().hex
    with Socket(comfy.ws_url(client_id)) as ws:
        ws.next()
        ws.until_done(post(comfy, prompt, client_id=client_id))
        prompt_id = post(comfy, prompt, client_id=client_id)
        frames = ws.until_done(prompt_id)
    cached = {"data": data_of(frames, "execution_cached")[0]}
    assert cached["data"]["nodes"] == ["1", "2", "3", "4", "5", "6"]
    assert [d["node"] for d in data_of(frames, "executing")] == [None]
    assert [d["node"] for d in data_of(frames, "executed")] == ["4", "6"]
    assert "execution_success" in types(frames)


def test_sampler_steps_send_progress_and_jpeg_previews(comfy):
    client_id = uuid.uuid4().hex
    with Socket(comfy.ws_url(client_id)) as ws:
        ws.next()
        prompt_id = post(comfy, sampler_prompt(steps=3, seed=11), client_id=client_id)
        frames = ws.until_done(prompt_id)
    progress = data_of(frames, "progress")
    assert progress == [
        {"value": v, "max": 3, "prompt_id": prompt_id, "node": "8"} for v in (1, 2, 3)
    ]
    previews = [f for f in frames if isinstance(f, bytes)]
    assert len(previews) == 3
    for frame in previews:
        kind, image_format = struct.unpack(">II", frame[:8])
        assert (kind, image_format) == (1, 1) and frame[8:10] == b"\xff\xd8"
    order = types(frames)
    first = order.index("progress")
    assert order[first - 1] == "progress_state" and order[first + 1] == "binary1"


def test_clients_that_declare_preview_metadata_get_type_4_frames_instead(comfy):
    client_id = uuid.uuid4().hex
    handshake = {"type": "feature_flags", "data": {"supports_preview_metadata": True}}
    with Socket(comfy.ws_url(client_id), first_message=handshake) as ws:
        ws.next()
        reply = ws.next()
        assert reply == {
            "type": "feature_flags",
            "data": {"supports_preview_metadata": True, "max_upload_size": 104857600},
        }
        prompt_id = post(comfy, sampler_prompt(steps=2, seed=12), client_id=client_id)
        frames = ws.until_done(prompt_id)
    previews = [f for f in frames if isinstance(f, bytes)]
    assert len(previews) == 2
    for frame in previews:
        assert struct.unpack(">I", frame[:4])[0] == 4
        (length,) = struct.unpack(">I", frame[4:8])
        meta = json.loads(frame[8 : 8 + length])
        assert meta == {
            "node_id": "8",
            "prompt_id": prompt_id,
            "display_node_id": "8",
            "parent_node_id": None,
            "real_node_id": "8",
            "image_type": "image/jpeg",
        }
        assert frame[8 + length : 10 + length] == b"\xff\xd8"


def test_events_go_only_to_the_prompts_client_id(comfy):
    owner, other = uuid.uuid4().hex, uuid.uuid4().hex
    with Socket(comfy.ws_url(owner)) as mine, Socket(comfy.ws_url(other)) as theirs:
        mine.next(), theirs.next()
        prompt_id = post(comfy, sampler_prompt(steps=2, seed=13), client_id=owner)
        mine.until_done(prompt_id)
        seen = theirs.until(queue_left(0))
    assert set(types(seen)) == {"status"}


def test_events_for_a_client_id_with_no_socket_are_dropped(comfy):
    watcher = uuid.uuid4().hex
    with Socket(comfy.ws_url(watcher)) as ws, httpx.Client(base_url=comfy.url) as http:
        ws.next()
        prompt_id = post(comfy, sampler_prompt(steps=2, seed=14), client_id="nobody-listens")
        seen = ws.until(queue_left(0))
        assert set(types(seen)) == {"status"}
        assert (
            http.get(f"/history/{prompt_id}").json()[prompt_id]["status"]["status_str"] == "success"
        )


def test_without_a_client_id_only_progress_reaches_every_socket(comfy):
    with Socket(comfy.ws_url(uuid.uuid4().hex)) as ws:
        ws.next()
        post(comfy, sampler_prompt(steps=2, seed=15))
        seen = ws.until(queue_left(0))
    kinds = set(types(seen))
    assert {"progress", "progress_state", "binary1"} <= kinds
    assert not kinds & {"executing", "execution_start", "executed", "execution_success"}


def test_a_reconnect_of_the_running_client_gets_the_current_node(comfy):
    client_id = uuid.uuid4().hex
    with Socket(comfy.ws_url(client_id)) as first:
        first.next()
        prompt_id = post(comfy, sampler_prompt(steps=30, seed=16), client_id=client_id)
        first.until(of_type("progress"))
        with Socket(comfy.ws_url(client_id)) as second:
            hello, current = second.next(), second.next()
            assert hello["type"] == "status" and hello["data"]["sid"] == client_id
            assert current == {"type": "executing", "data": {"node": "8"}}
            second.until_done(prompt_id)


def test_2025_the_replaced_sockets_close_cuts_off_its_successor(comfy):
    client_id = uuid.uuid4().hex
    old = Socket(comfy.ws_url(client_id))
    old.next()
    with Socket(comfy.ws_url(client_id)) as new:
        assert new.next()["data"]["sid"] == client_id
        assert client_id in comfy.state()["sids"]
        old.close()
        # ComfyUI 0.3.64's handler of the old socket pops the sid on close: the new socket stays
        # connected but no event can reach it any more.
        wait_until(lambda: client_id not in comfy.state()["sids"])
        assert comfy.state()["sockets"] >= 1


def test_interrupting_the_running_prompt_by_id(comfy):
    client_id = uuid.uuid4().hex
    with Socket(comfy.ws_url(client_id)) as ws, httpx.Client(base_url=comfy.url) as http:
        ws.next()
        prompt_id = post(comfy, sampler_prompt(steps=50, seed=18), client_id=client_id)
        ws.until(of_type("progress"))
        response = http.post("/interrupt", json={"prompt_id": prompt_id})
        assert response.status_code == 200 and response.content == b""
        frames = ws.until_done(prompt_id)
        entry = http.get(f"/history/{prompt_id}").json()[prompt_id]
    interrupted = data_of(frames, "execution_interrupted")[0]
    assert interrupted["node_id"] == "8" and interrupted["node_type"] == "KSampler"
    # Loaders cached from earlier prompts did not run, so they are not in `executed`.
    assert set(interrupted["executed"]) <= {"1", "2", "3", "5", "6", "7"}
    assert squeeze(types(frames))[-3:] == ["execution_interrupted", "status", "executing"]
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"


def test_an_interrupt_for_another_prompt_id_does_nothing(comfy):
    client_id = uuid.uuid4().hex
    with Socket(comfy.ws_url(client_id)) as ws, httpx.Client(base_url=comfy.url) as http:
        ws.next()
        prompt_id = post(comfy, sampler_prompt(steps=5, seed=19), client_id=client_id)
        ws.until(of_type("progress"))
        http.post("/interrupt", json={"prompt_id": "some-other-prompt"})
        frames = ws.until_done(prompt_id)
    assert "execution_success" in types(frames) and "execution_interrupted" not in types(frames)


def test_an_interrupt_without_a_body_stops_whatever_runs(comfy):
    client_id = uuid.uuid4().hex
    with Socket(comfy.ws_url(client_id)) as ws, httpx.Client(base_url=comfy.url) as http:
        ws.next()
        prompt_id = post(comfy, sampler_prompt(steps=50, seed=20), client_id=client_id)
        ws.until(of_type("progress"))
        http.post("/api/interrupt")
        assert "execution_interrupted" in types(ws.until_done(prompt_id))


def test_an_interrupt_reaches_every_socket_when_the_prompt_has_no_client_id(comfy):
    with Socket(comfy.ws_url(uuid.uuid4().hex)) as ws, httpx.Client(base_url=comfy.url) as http:
        ws.next()
        post(comfy, sampler_prompt(steps=50, seed=21))
        ws.until(of_type("progress"))
        http.post("/interrupt")
        ws.until(of_type("execution_interrupted"))


def test_a_node_error_is_an_execution_error_with_the_real_fields(comfy):
    comfy.fault("node_error", class_type="KSampler", at_step=1)
    client_id = uuid.uuid4().hex
    with Socket(comfy.ws_url(client_id)) as ws, httpx.Client(base_url=comfy.url) as http:
        ws.next()
        prompt_id = post(comfy, sampler_prompt(steps=3, seed=22), client_id=client_id)
        frames = ws.until_done(prompt_id)
        entry = http.get(f"/history/{prompt_id}").json()[prompt_id]
    error = data_of(frames, "execution_error")[0]
    assert set(error) == {
        "prompt_id",
        "node_id",
        "node_type",
        "executed",
        "exception_message",
        "exception_type",
        "traceback",
        "current_inputs",
        "current_outputs",
        "timestamp",
    }
    assert error["node_id"] == "8" and error["exception_type"] == "torch.OutOfMemoryError"
    assert error["exception_message"].startswith(
        "Allocation on device \nThis error means you ran out of memory"
    )
    assert error["traceback"] and all(line.startswith("  File ") for line in error["traceback"])
    assert error["current_inputs"]["steps"] == [3] and error["current_inputs"]["sampler_name"] == [
        "uni_pc"
    ]
    assert sorted(error["current_outputs"]) == sorted(sampler_prompt())
    assert squeeze(types([f for f in frames if isinstance(f, dict)]))[-3:] == [
        "execution_error",
        "status",
        "executing",
    ]
    assert (
        entry["status"]["status_str"] == "error"
        and entry["status"]["messages"][-1][0] == "execution_error"
    )


def test_a_save_video_format_outside_its_options_fails_only_when_it_runs_in_2025(comfy):
    prompt = fresh(SMOKE_PROMPT, uuid.uuid4().hex)
    prompt["6"]["inputs"]["format"] = "mkv"
    client_id = uuid.uuid4().hex
    with Socket(comfy.ws_url(client_id)) as ws:
        ws.next()
        frames = ws.until_done(post(comfy, prompt, client_id=client_id))
    error = data_of(frames, "execution_error")[0]
    assert error["exception_type"] == "ValueError"
    assert error["exception_message"] == "'mkv' is not a valid VideoContainer\n"


@pytest.fixture(scope="module")
def comfy26(tmp_path_factory):
    with comfyui_standin(tmp_path_factory.mktemp("events26"), generation="2026") as server:
        yield server


def test_2026_refuses_that_format_at_validation(comfy26):
    prompt = json.loads(json.dumps(SMOKE_PROMPT))
    prompt["6"]["inputs"]["format"] = "mkv"
    with httpx.Client(base_url=comfy26.url) as http:
        body = http.post("/prompt", json={"prompt": prompt}).json()
    (error,) = body["node_errors"]["6"]["errors"]
    assert (
        error["type"] == "value_not_in_list"
        and error["details"] == "format: 'mkv' not in ['auto', 'mp4']"
    )


def test_2026_reconnecting_to_an_open_sid_needs_its_credential_key(comfy26):
    server = comfy26
    client_id = uuid.uuid4().hex
    with Socket(server.ws_url(client_id)) as first:
        key = first.next()["data"]["credential_key"]
        assert isinstance(key, str) and len(key) > 20
        wrong = Socket(
            server.ws_url(client_id),
            first_message={"type": "credential_auth", "data": {"credential_key": "x"}},
        )
        with pytest.raises(ConnectionClosed) as closed:
            wrong.next()
        assert (
            closed.value.rcvd.code == 1008
            and closed.value.rcvd.reason == "Invalid client credentials"
        )
        auth = {"type": "credential_auth", "data": {"credential_key": key}}
        with Socket(server.ws_url(client_id), first_message=auth) as second:
            hello = second.next()["data"]
            assert hello["sid"] == client_id and hello["credential_key"] == key
            first.close()
            prompt_id = post(server, SMOKE_PROMPT, client_id=client_id)
            assert "execution_success" in types(second.until_done(prompt_id))
