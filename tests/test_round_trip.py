"""POST → WebSocket sees queued, progress, done → status → artifacts, for both kinds."""

from __future__ import annotations

import io
import json
import struct

from PIL import Image
from support import Events, Server, train_files


def follow(events: Events, job_id: str) -> list[dict]:
    events.until(
        lambda f: (
            f.get("job", {}).get("id") == job_id and f["type"] in ("done", "error", "cancelled")
        )
    )
    return events.for_job(job_id)


def assert_lifecycle(frames: list[dict]) -> None:
    types = [f["type"] for f in frames]
    assert types[0] == "queued", types
    assert types[-1] == "done", types
    progress = [f["job"]["progress"] for f in frames if f["type"] == "progress"]
    assert progress == sorted(progress), progress
    assert len(set(progress)) >= 3, progress
    assert frames[-1]["job"]["state"] == "completed"
    assert frames[-1]["job"]["progress"] == 100


def test_generate_round_trip(server: Server, http) -> None:
    events = Events(server.ws_url)
    try:
        snapshot = events.next()
        assert snapshot["type"] == "snapshot" and isinstance(snapshot["jobs"], list)
        response = http.post("/api/generate", json={"prompt": "a fox in the snow"})
        assert response.status_code == 202
        job = response.json()
        assert response.headers["location"] == f"/api/status/{job['id']}"
        assert job["state"] == "queued" and job["kind"] == "generate" and job["attempt"] == 0
        assert_lifecycle(follow(events, job["id"]))
    finally:
        events.close()

    status = http.get(f"/api/status/{job['id']}").json()
    assert status["state"] == "completed" and status["attempt"] == 1
    assert status["started_at"] and status["finished_at"] and status["error"] is None
    names = {a["name"]: a for a in status["artifacts"]}
    assert set(names) == {"clip.webp", "result.json"}

    clip = http.get(names["clip.webp"]["url"])
    assert clip.status_code == 200 and clip.headers["content-type"] == "image/webp"
    assert len(clip.content) == names["clip.webp"]["size"]
    with Image.open(io.BytesIO(clip.content)) as image:
        assert image.format == "WEBP" and getattr(image, "n_frames", 1) > 1
    result = http.get(names["result.json"]["url"]).json()
    assert result["prompt"] == "a fox in the snow" and result["lora"] is None


def train(server: Server, http, events: Events) -> dict:
    response = http.post("/api/train", files=train_files(3), data={"name": "me"})
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["input"]["name"] == "me"
    assert [i["name"] for i in job["input"]["images"]] == ["face-0.png", "face-1.png", "face-2.png"]
    assert job["input"]["voice"]["content_type"] == "audio/wav"
    assert_lifecycle(follow(events, job["id"]))
    return http.get(f"/api/status/{job['id']}").json()


def test_train_round_trip_writes_a_lora_and_manifest(server: Server, http) -> None:
    events = Events(server.ws_url)
    try:
        events.next()
        job = train(server, http, events)
    finally:
        events.close()
    names = {a["name"]: a for a in job["artifacts"]}
    weights = http.get(names["lora.safetensors"]["url"])
    assert weights.status_code == 200
    assert "attachment" in weights.headers["content-disposition"]
    (length,) = struct.unpack("<Q", weights.content[:8])
    header = json.loads(weights.content[8 : 8 + length])
    assert header["lora_up.weight"]["dtype"] == "F32"
    assert header["__metadata__"]["job"] == job["id"]
    manifest = http.get(names["manifest.json"]["url"]).json()
    assert len(manifest["stored_files"]) == 4  # three images and the voice
    stored = server.data_dir / "uploads" / job["id"]
    assert sorted(p.name for p in (stored / "images").iterdir()) == [
        "000.png",
        "001.png",
        "002.png",
    ]
    assert (stored / "voice.wav").exists()


def test_generate_with_a_trained_lora_records_it(server: Server, http) -> None:
    events = Events(server.ws_url)
    try:
        events.next()
        lora = train(server, http, events)
        response = http.post("/api/generate", json={"prompt": "me, waving", "lora": lora["id"]})
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["input"]["lora"] == lora["id"]
        assert_lifecycle(follow(events, job["id"]))
    finally:
        events.close()
    done = http.get(f"/api/status/{job['id']}").json()
    result_url = next(a["url"] for a in done["artifacts"] if a["name"] == "result.json")
    used = http.get(result_url).json()["lora"]
    assert used["job"] == lora["id"] and len(used["sha256"]) == 64


def test_list_is_newest_first_with_filters(server: Server, http) -> None:
    ids = [http.post("/api/generate", json={"prompt": f"p{i}"}).json()["id"] for i in range(3)]
    listed = [j["id"] for j in http.get("/api/jobs", params={"kind": "generate"}).json()["jobs"]]
    assert listed[:3] == ids[::-1]
    assert all(j["kind"] == "train" for j in http.get("/api/jobs?kind=train").json()["jobs"])
    limited = http.get("/api/jobs", params={"limit": 2}).json()["jobs"]
    assert len(limited) == 2


def test_idempotency_key_returns_the_first_job(server: Server, http) -> None:
    headers = {"Idempotency-Key": "retry-me-123"}
    first = http.post("/api/generate", json={"prompt": "once"}, headers=headers)
    second = http.post("/api/generate", json={"prompt": "once"}, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    train_headers = {"Idempotency-Key": "train-once"}
    a = http.post("/api/train", files=train_files(1), headers=train_headers)
    b = http.post("/api/train", files=train_files(1), headers=train_headers)
    assert a.json()["id"] == b.json()["id"]
    uploads = [p.name for p in (server.data_dir / "uploads").iterdir() if p.name != ".staging"]
    assert uploads.count(a.json()["id"]) == 1


def test_request_id_is_echoed_and_recorded(server: Server, http) -> None:
    response = http.post(
        "/api/generate", json={"prompt": "traced"}, headers={"X-Request-ID": "trace-42"}
    )
    assert response.headers["x-request-id"] == "trace-42"
    assert response.json()["request_id"] == "trace-42"
