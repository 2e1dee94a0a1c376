"""The Ollama stand-in over raw HTTP: discovery routes, streaming and single answers, `format`,
request errors and the fault knobs."""

from __future__ import annotations

import json
import threading

import httpx
import jsonschema
import pytest
from standins import ollama_standin
from standins.wire import wait_until

METRICS = {
    "total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration",
    "eval_count", "eval_duration",
}  # fmt: skip
REPLY = "A fox crosses the snow."


@pytest.fixture(scope="module")
def ollama(tmp_path_factory):
    options = {"models": ["llama3.2", "qwen3:8b"], "reply": REPLY}
    options["http_faults"] = (("/api/version", 500, 1),)
    options["thinking"] = ("qwen3:8b",)
    with ollama_standin(tmp_path_factory.mktemp("ollama"), **options) as server:
        yield server


@pytest.fixture(autouse=True)
def no_faults_left(ollama):
    yield
    ollama.fault("clear")


def chat_body(**extra) -> dict:
    return {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "Write the shot."}],
        **extra,
    }


def lines(response: httpx.Response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines() if line]


def test_root_says_ollama_is_running_for_get_and_head(ollama):
    get, head = httpx.get(ollama.url + "/"), httpx.head(ollama.url + "/")
    assert get.status_code == head.status_code == 200
    assert get.text == "Ollama is running"
    assert get.headers["content-type"] == "text/plain; charset=utf-8"


def test_version_tags_and_ps(ollama):
    assert httpx.get(ollama.url + "/api/version").status_code == 500  # the command-line fault
    assert httpx.get(ollama.url + "/api/version").json() == {"version": "0.0.0"}
    models = httpx.get(ollama.url + "/api/tags").json()["models"]
    assert [m["name"] for m in models] == ["llama3.2:latest", "qwen3:8b"]
    assert set(models[0]) == {"name", "model", "modified_at", "size", "digest", "details"}
    assert set(models[0]["details"]) == {
        "parent_model", "format", "family", "families", "parameter_size", "quantization_level",
    }  # fmt: skip
    httpx.post(ollama.url + "/api/chat", json=chat_body(stream=False))
    running = httpx.get(ollama.url + "/api/ps").json()["models"]
    assert [m["name"] for m in running] == ["llama3.2:latest"]
    assert {"expires_at", "size_vram", "context_length"} <= running[0].keys()


def test_chat_streams_ndjson_by_default_and_ends_with_metrics(ollama):
    response = httpx.post(ollama.url + "/api/chat", json=chat_body())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    pieces = lines(response)
    assert all(p["done"] is False for p in pieces[:-1])
    assert "".join(p["message"]["content"] for p in pieces) == REPLY
    final = pieces[-1]
    assert final["done"] is True and final["done_reason"] == "stop"
    assert final["message"] == {"role": "assistant", "content": ""}
    assert final.keys() >= METRICS
    assert all(isinstance(final[k], int) and final[k] > 0 for k in METRICS)
    assert final["model"] == "llama3.2" and final["created_at"].endswith("Z")


def test_chat_without_streaming_is_one_object(ollama):
    response = httpx.post(ollama.url + "/api/chat", json=chat_body(stream=False))
    body = response.json()
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert body["message"] == {"role": "assistant", "content": REPLY}
    assert body["done"] is True and body.keys() >= METRICS


def test_generate_streams_response_pieces_and_a_context(ollama):
    body = {"model": "qwen3:8b", "prompt": "Write the shot."}
    pieces = lines(httpx.post(ollama.url + "/api/generate", json=body))
    assert "".join(p["response"] for p in pieces) == REPLY
    assert pieces[-1]["done"] is True and isinstance(pieces[-1]["context"], list)
    single = httpx.post(ollama.url + "/api/generate", json={**body, "stream": False}).json()
    assert single["response"] == REPLY and single.keys() >= METRICS


def test_an_empty_prompt_or_message_list_is_the_load_answer(ollama):
    loaded = httpx.post(ollama.url + "/api/chat", json={"model": "llama3.2", "messages": []}).json()
    assert loaded["done"] is True and loaded["done_reason"] == "load"
    unloaded = httpx.post(
        ollama.url + "/api/generate", json={"model": "llama3.2", "keep_alive": 0}
    ).json()
    assert unloaded["done_reason"] == "unload"


def test_format_json_returns_json_text(ollama):
    body = httpx.post(ollama.url + "/api/chat", json=chat_body(stream=False, format="json")).json()
    assert json.loads(body["message"]["content"]) == {"response": REPLY}


def test_a_schema_format_returns_text_that_validates(ollama):
    schema = {
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "minLength": 3},
            "shots": {"type": "integer", "minimum": 2},
            "mood": {"enum": ["calm", "tense"]},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "camera": {"$ref": "#/$defs/Camera"},
        },
        "required": ["prompt", "shots", "mood", "tags", "camera"],
        "$defs": {"Camera": {"type": "object", "properties": {"dolly": {"type": "boolean"}}}},
    }
    pieces = lines(httpx.post(ollama.url + "/api/chat", json=chat_body(format=schema)))
    text = "".join(p["message"]["content"] for p in pieces)
    jsonschema.validate(json.loads(text), schema)


def test_a_reply_that_already_fits_the_schema_is_kept(tmp_path):
    reply = json.dumps({"age": 22, "available": False})
    schema = {
        "type": "object",
        "properties": {"age": {"type": "integer"}, "available": {"type": "boolean"}},
    }
    with ollama_standin(tmp_path, reply=reply) as server:
        body = httpx.post(
            server.url + "/api/chat", json=chat_body(stream=False, format=schema)
        ).json()
    assert json.loads(body["message"]["content"]) == {"age": 22, "available": False}


def test_an_invalid_format_is_a_500_with_llama_servers_message(ollama):
    response = httpx.post(ollama.url + "/api/chat", json=chat_body(format="yaml"))
    assert response.status_code == 500
    assert response.json() == {
        "error": 'invalid format: "\\"yaml\\""; expected "json" or a valid JSON Schema object'
    }


@pytest.mark.parametrize(
    ("path", "content", "status", "message"),
    [
        ("/api/chat", b"", 400, "missing request body"),
        ("/api/chat", b"{", 400, "unexpected EOF"),
        ("/api/chat", b"[1]", 400,
         "json: cannot unmarshal array into Go value of type api.ChatRequest"),
        ("/api/chat", b'{"model": 5}', 400,
         "json: cannot unmarshal number into Go struct field ChatRequest.model of type string"),
        ("/api/chat", b'{"messages": []}', 400, "model is required"),
        ("/api/generate", b'{"prompt": "x"}', 404, "model '' not found"),
        ("/api/chat", b'{"model": "mistral", "messages": [{"role": "user", "content": "x"}]}', 404,
         "model 'mistral' not found"),
        ("/api/generate", b'{"model": "llama3.2", "prompt": "x", "top_logprobs": 21}', 400,
         "top_logprobs must be between 0 and 20"),
    ],
)  # fmt: skip
def test_bad_requests_get_ollamas_status_and_message(ollama, path, content, status, message):
    response = httpx.post(ollama.url + path, content=content)
    assert response.status_code == status
    assert response.json() == {"error": message}


def test_unknown_paths_and_methods_get_gins_plain_answers(ollama):
    response = httpx.get(ollama.url + "/api/nothing")
    assert response.status_code == 404 and response.text == "404 page not found"
    response = httpx.get(ollama.url + "/api/chat")
    assert response.status_code == 405 and response.text == "405 method not allowed"


def test_a_mid_stream_error_keeps_http_200(ollama):
    ollama.fault(
        "stream_error", after=2, message="an error was encountered while running the model"
    )
    response = httpx.post(ollama.url + "/api/chat", json=chat_body())
    assert response.status_code == 200
    pieces = lines(response)
    assert len(pieces) == 3 and all("message" in p for p in pieces[:2])
    assert pieces[-1] == {"error": "an error was encountered while running the model"}


def test_an_error_before_the_first_piece_is_a_500(ollama):
    ollama.fault("stream_error", after=0, message="model failed to load")
    response = httpx.post(ollama.url + "/api/chat", json=chat_body())
    assert response.status_code == 500 and response.json() == {"error": "model failed to load"}
    ollama.fault("stream_error", message="boom")
    single = httpx.post(ollama.url + "/api/chat", json=chat_body(stream=False))
    assert single.status_code == 500 and single.json() == {"error": "boom"}


def test_http_faults_answer_with_ollamas_error_shape(ollama):
    ollama.fault("http", path="/api/chat", status=503, count=2)
    statuses = [
        httpx.post(ollama.url + "/api/chat", json=chat_body(stream=False)) for _ in range(3)
    ]
    assert [r.status_code for r in statuses] == [503, 503, 200]
    assert statuses[0].json() == {
        "error": "server busy, please try again.  maximum pending requests exceeded"
    }


def test_a_stalled_stream_sends_nothing_more_until_released(ollama):
    ollama.fault("stall", after=1)
    received: list[dict] = []

    def read() -> None:
        with httpx.stream(
            "POST", ollama.url + "/api/chat", json=chat_body(), timeout=30
        ) as response:
            received.extend(json.loads(line) for line in response.iter_lines())

    reader = threading.Thread(target=read)
    reader.start()
    wait_until(lambda: ollama.state()["stalled"] == 1)
    wait_until(lambda: len(received) == 1)  # the one piece sent before the stall, no more
    assert reader.is_alive()
    ollama.fault("release")
    reader.join(10)
    assert received[-1]["done"] is True and len(received) == len(REPLY.split()) + 1


def test_a_thinking_model_streams_thoughts_first_unless_think_is_false(ollama):
    body = {**chat_body(), "model": "qwen3:8b"}
    thinking = lines(httpx.post(ollama.url + "/api/chat", json=body))
    quiet = lines(httpx.post(ollama.url + "/api/chat", json={**body, "think": False}))
    assert thinking[0]["message"]["thinking"] and thinking[0]["message"]["content"] == ""
    assert "".join(p["message"]["content"] for p in thinking) == REPLY
    assert not any(p["message"].get("thinking") for p in quiet)
    assert "".join(p["message"]["content"] for p in quiet) == REPLY


def test_think_true_to_a_model_without_thinking_is_refused(ollama):
    response = httpx.post(ollama.url + "/api/chat", json=chat_body(think=True))
    assert response.status_code == 400
    assert response.json() == {"error": '"llama3.2" does not support thinking'}


def test_keep_alive_is_a_number_of_seconds_or_a_go_duration(ollama):
    for good in (0, 300, "0", "5m", "1h30m"):
        assert httpx.post(ollama.url + "/api/chat", json=chat_body(keep_alive=good)).is_success
    response = httpx.post(ollama.url + "/api/chat", json=chat_body(keep_alive="300"))
    assert response.status_code == 400
    assert response.json() == {"error": 'time: missing unit in duration "300"'}


def test_each_call_is_recorded_with_its_keep_alive_think_and_format(ollama):
    httpx.post(ollama.url + "/api/chat", json=chat_body(keep_alive=0, think=False, format="json"))
    httpx.post(ollama.url + "/api/chat", json=chat_body())
    first, second = ollama.state()["calls"][-2:]
    assert first | {"path": "", "model": ""} == {
        "path": "",
        "model": "",
        "keep_alive": 0,
        "think": False,
        "format": "json",
    }
    assert (second["keep_alive"], second["think"], second["format"]) == ("absent",) * 3
    assert "llama3.2:latest" in ollama.state()["loaded"]  # no keep_alive: stays 5 minutes
