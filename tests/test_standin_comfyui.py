"""The ComfyUI stand-in's HTTP surface, over raw HTTP: routes, discovery, validation, prompt ids,
queue and history shapes."""

from __future__ import annotations

import uuid

import httpx
import pytest
from standins import comfyui_standin
from standins.wire import SAMPLER_MODELS, SMOKE_PROMPT, Socket, sampler_prompt


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    models = {**SAMPLER_MODELS, "loras": ["a.safetensors", "sub/b.safetensors"]}
    with comfyui_standin(tmp_path_factory.mktemp("c25"), models=models, step_seconds=0.02) as s:
        yield s


@pytest.fixture(scope="module")
def comfy26(tmp_path_factory):
    with comfyui_standin(
        tmp_path_factory.mktemp("c26"), generation="2026", models=SAMPLER_MODELS
    ) as s:
        yield s


def client(server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=10)


def submit_and_wait(server, prompt: dict, **body) -> tuple[str, list]:
    client_id = uuid.uuid4().hex
    with Socket(server.ws_url(client_id)) as ws, client(server) as http:
        ws.next()
        response = http.post("/prompt", json={"prompt": prompt, "client_id": client_id, **body})
        assert response.status_code == 200, response.text
        prompt_id = response.json()["prompt_id"]
        return prompt_id, ws.until_done(prompt_id)


def test_every_route_is_served_at_its_path_and_under_api(comfy):
    with client(comfy) as http:
        for path in ("/system_stats", "/prompt", "/queue", "/history", "/features", "/models"):
            plain, prefixed = http.get(path), http.get("/api" + path)
            assert plain.status_code == prefixed.status_code == 200, path
            assert (
                plain.json().keys() == prefixed.json().keys()
                if isinstance(plain.json(), dict)
                else True
            )
        with Socket(comfy.url.replace("http", "ws") + "/api/ws") as ws:
            assert ws.next()["type"] == "status"


def test_system_stats_reports_the_comfyui_version_and_a_device(comfy, comfy26):
    with client(comfy) as http:
        stats = http.get("/system_stats").json()
    assert stats["system"]["comfyui_version"] == "0.3.64"
    assert stats["system"]["os"] == "posix"
    assert {"name", "type", "index", "vram_total", "vram_free"} <= stats["devices"][0].keys()
    with client(comfy26) as http:
        system = http.get("/system_stats").json()["system"]
    assert system["os"] == "linux" and "deploy_environment" in system


def test_get_routes_answer_no_head_as_upstream(comfy):
    with client(comfy) as http:
        assert http.head("/system_stats").status_code == 405


def test_object_info_lists_model_files_in_v1_combos(comfy):
    with client(comfy) as http:
        lora = http.get("/object_info/LoraLoaderModelOnly").json()["LoraLoaderModelOnly"]
        train = http.get("/object_info/TrainLoraNode").json()["TrainLoraNode"]
        everything = http.get("/object_info").json()
        unknown = http.get("/object_info/NoSuchNode").json()
    assert lora["input"]["required"]["lora_name"] == [["a.safetensors", "sub/b.safetensors"]]
    assert lora["input_order"] == {"required": ["model", "lora_name", "strength_model"]}
    assert lora["output"] == ["MODEL"] and lora["python_module"] == "nodes"
    assert train["input"]["required"]["existing_lora"][0][-1] == "[None]"
    assert train["output_name"] == ["model_with_lora", "lora", "loss", "steps"]
    assert train["experimental"] is True
    assert {
        "SaveLoRANode",
        "LoadImageSetFromFolderNode",
        "SaveVideo",
        "KSampler",
    } <= everything.keys()
    save_video = everything["SaveVideo"]["input"]["required"]["format"]
    assert save_video[0] == "COMBO" and save_video[1]["options"] == ["auto", "mp4"]
    assert unknown == {}


def test_the_2026_table_has_the_v3_training_nodes(comfy26):
    with client(comfy26) as http:
        info = http.get("/object_info").json()
    assert "SaveLoRA" in info and "SaveLoRANode" not in info
    assert info["TrainLoraNode"]["output"] == ["LORA_MODEL", "LOSS_MAP", "INT"]
    assert info["TrainLoraNode"]["input"]["required"]["existing_lora"][1]["options"] == ["[None]"]
    assert info["KSampler"]["is_input_list"] is False and info["KSampler"]["search_aliases"] == []


def test_models_routes_list_folders_and_files(comfy):
    with client(comfy) as http:
        folders = http.get("/models").json()
        loras = http.get("/models/loras").json()
        missing = http.get("/models/no_such_folder")
    assert folders[:4] == ["checkpoints", "configs", "loras", "vae"]
    assert loras == ["a.safetensors", "sub/b.safetensors"]
    assert missing.status_code == 404


def test_features_and_the_empty_queue(comfy):
    with client(comfy) as http:
        assert http.get("/features").json() == {
            "supports_preview_metadata": True,
            "max_upload_size": 104857600,
        }
        assert http.get("/prompt").json() == {"exec_info": {"queue_remaining": 0}}


def test_a_bad_combo_value_is_a_400_with_node_errors_shaped_like_comfyui(comfy):
    prompt = {
        **SMOKE_PROMPT,
        "3": {
            **SMOKE_PROMPT["3"],
            "inputs": {**SMOKE_PROMPT["3"]["inputs"], "upscale_method": "foo"},
        },
    }
    with client(comfy) as http:
        response = http.post("/prompt", json={"prompt": prompt})
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert body["error"]["message"] == "Prompt outputs failed validation"
    assert body["error"]["extra_info"] == {}
    entry = body["node_errors"]["3"]
    assert entry["class_type"] == "ImageScale"
    assert sorted(entry["dependent_outputs"]) == ["4", "6"]
    (error,) = entry["errors"]
    assert error["type"] == "value_not_in_list"
    methods = "['nearest-exact', 'bilinear', 'area', 'bicubic', 'lanczos']"
    assert error["details"] == f"upscale_method: 'foo' not in {methods}"
    assert error["extra_info"]["input_config"][0][0] == "nearest-exact"
    assert error["extra_info"]["received_value"] == "foo"


def test_long_combos_are_summarised_and_their_config_left_out(comfy):
    prompt = sampler_prompt()
    prompt["8"]["inputs"]["sampler_name"] = "nope"
    with client(comfy) as http:
        body = http.post("/prompt", json={"prompt": prompt}).json()
    (error,) = body["node_errors"]["8"]["errors"]
    assert error["details"] == "sampler_name: 'nope' not in (list of length 42)"
    assert error["extra_info"]["input_config"] is None


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        (lambda p: p["3"]["inputs"].pop("width"), "required_input_missing"),
        (lambda p: p["3"]["inputs"].update(image=["2", 0, 1]), "bad_linked_input"),
        (lambda p: p["3"]["inputs"].update(image=["5", 0]), "return_type_mismatch"),
        (lambda p: p["3"]["inputs"].update(width="wide"), "invalid_input_type"),
        (lambda p: p["3"]["inputs"].update(width=99999), "value_bigger_than_max"),
    ],
)
def test_each_kind_of_input_error_has_comfyuis_type(comfy, change, kind):
    prompt = {k: {**v, "inputs": dict(v["inputs"])} for k, v in SMOKE_PROMPT.items()}
    change(prompt)
    with client(comfy) as http:
        body = http.post("/prompt", json={"prompt": prompt}).json()
    errors = body["node_errors"]["3"]["errors"]
    assert [e["type"] for e in errors] == [kind]
    assert set(errors[0]) == {"type", "message", "details", "extra_info"}


def test_a_dangling_link_fails_the_output_as_an_exception_during_validation(comfy):
    prompt = {
        "9": {"class_type": "SaveImage", "inputs": {"images": ["404", 0], "filename_prefix": "x"}}
    }
    with client(comfy) as http:
        body = http.post("/prompt", json={"prompt": prompt}).json()
    (error,) = body["node_errors"]["9"]["errors"]
    assert error["type"] == "exception_during_validation"
    assert error["details"] == "'404'"


def test_one_valid_output_is_enough_for_a_200_with_node_errors(comfy):
    prompt = {k: {**v, "inputs": dict(v["inputs"])} for k, v in SMOKE_PROMPT.items()}
    prompt["4"]["inputs"]["quality"] = 101
    with client(comfy) as http:
        response = http.post("/prompt", json={"prompt": prompt})
    assert response.status_code == 200
    assert response.json()["node_errors"]["4"]["errors"][0]["type"] == "value_bigger_than_max"


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"client_id": "x"}, "no_prompt"),
        ({"prompt": {"1": {"class_type": "EmptyImage", "inputs": {}}}}, "prompt_no_outputs"),
        ({"prompt": {"1": {"class_type": "Nope", "inputs": {}}}}, "invalid_prompt"),
        ({"prompt": {"1": {"inputs": {}}}}, "invalid_prompt"),
    ],
)
def test_top_level_errors_have_empty_node_errors(comfy, body, kind):
    with client(comfy) as http:
        response = http.post("/prompt", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == kind
    assert response.json()["node_errors"] == {}


def test_2026_names_an_unknown_class_missing_node_type(comfy26):
    prompt = {"1": {"class_type": "Nope", "inputs": {}, "_meta": {"title": "My node"}}}
    with client(comfy26) as http:
        error = http.post("/prompt", json={"prompt": prompt}).json()["error"]
    assert error["type"] == "missing_node_type"
    assert error["message"] == "Node 'My node' not found. The custom node may not be installed."
    assert error["extra_info"] == {"node_id": "1", "class_type": "Nope", "node_title": "My node"}


def test_a_body_that_is_not_json_is_a_500_as_upstream(comfy):
    with client(comfy) as http:
        assert http.post("/prompt", content=b"{not json").status_code == 500


def test_2025_takes_any_prompt_id_and_does_not_reject_duplicates(comfy):
    with client(comfy) as http:
        first = http.post("/prompt", json={"prompt": SMOKE_PROMPT, "prompt_id": "job 42"})
        again = http.post("/prompt", json={"prompt": SMOKE_PROMPT, "prompt_id": "job 42"})
    assert first.status_code == again.status_code == 200
    assert first.json()["prompt_id"] == "job 42"


def test_2026_wants_canonical_uuids_and_refuses_known_ones(comfy26):
    with client(comfy26) as http:
        upper = http.post(
            "/prompt", json={"prompt": SMOKE_PROMPT, "prompt_id": str(uuid.uuid4()).upper()}
        )
        loose = http.post("/prompt", json={"prompt": SMOKE_PROMPT, "prompt_id": "job 42"})
        minted = http.post("/prompt", json={"prompt": SMOKE_PROMPT, "prompt_id": None})
        chosen = str(uuid.uuid4())
        first = http.post("/prompt", json={"prompt": SMOKE_PROMPT, "prompt_id": chosen})
        duplicate = http.post("/prompt", json={"prompt": SMOKE_PROMPT, "prompt_id": chosen})
    for response in (upper, loose):
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "invalid_prompt_id"
        assert response.json()["node_errors"] == {}
    assert uuid.UUID(minted.json()["prompt_id"])
    assert first.json()["prompt_id"] == chosen
    assert duplicate.status_code == 409
    assert duplicate.json() == {"error": "prompt_id already exists"}


def test_number_is_echoed_float_when_given_and_a_counter_otherwise(comfy):
    with client(comfy) as http:
        given = http.post("/prompt", json={"prompt": SMOKE_PROMPT, "number": 7}).json()
        counted = http.post("/prompt", json={"prompt": SMOKE_PROMPT}).json()
    assert given["number"] == 7.0 and isinstance(given["number"], float)
    assert isinstance(counted["number"], int)


def test_history_is_empty_until_the_prompt_is_done_and_then_shaped_like_comfyuis(comfy):
    prompt = sampler_prompt(steps=3, prefix="hist/clip")
    client_id = uuid.uuid4().hex
    with Socket(comfy.ws_url(client_id)) as ws, client(comfy) as http:
        ws.next()
        prompt_id = http.post("/prompt", json={"prompt": prompt, "client_id": client_id}).json()[
            "prompt_id"
        ]
        ws.until(lambda f: isinstance(f, dict) and f["type"] == "progress")
        assert http.get(f"/history/{prompt_id}").json() == {}
        running = http.get("/queue").json()["queue_running"]
        assert [item[1] for item in running] == [prompt_id] and len(running[0]) == 5
        ws.until_done(prompt_id)
        entry = http.get(f"/history/{prompt_id}").json()[prompt_id]
        listed = http.get("/history", params={"max_items": 1}).json()
    number, pid, graph, extra, outputs = entry["prompt"]
    assert pid == prompt_id and graph["8"]["class_type"] == "KSampler"
    assert extra == {"client_id": client_id} and outputs == ["11"]
    assert entry["outputs"] == {
        "11": {
            "images": [{"filename": "clip_00001_.mp4", "subfolder": "hist", "type": "output"}],
            "animated": [True],
        }
    }
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"] is True
    assert [m[0] for m in entry["status"]["messages"]] == [
        "execution_start",
        "execution_cached",
        "execution_success",
    ]
    assert entry["meta"]["11"] == {
        "node_id": "11",
        "display_node": "11",
        "parent_node": None,
        "real_node_id": "11",
    }
    assert list(listed) == [prompt_id]


def test_history_can_be_deleted_and_cleared_with_empty_200s(comfy):
    prompt_id, _ = submit_and_wait(comfy, SMOKE_PROMPT)
    with client(comfy) as http:
        deleted = http.post("/history", json={"delete": [prompt_id]})
        assert deleted.status_code == 200 and deleted.content == b""
        assert http.get(f"/history/{prompt_id}").json() == {}
        cleared = http.post("/api/history", json={"clear": True})
        assert cleared.status_code == 200 and http.get("/history").json() == {}


def test_queue_items_can_be_deleted_and_the_queue_cleared(comfy):
    slow = sampler_prompt(steps=40, prefix="queue/slow")
    with client(comfy) as http:
        running = http.post("/prompt", json={"prompt": slow}).json()["prompt_id"]
        waiting = [
            http.post("/prompt", json={"prompt": sampler_prompt(2, f"queue/{i}")}).json()[
                "prompt_id"
            ]
            for i in range(3)
        ]
        pending = http.get("/queue").json()["queue_pending"]
        assert sorted(item[1] for item in pending) == sorted(waiting)
        assert http.post("/queue", json={"delete": [waiting[0], "unknown"]}).content == b""
        assert sorted(i[1] for i in http.get("/queue").json()["queue_pending"]) == sorted(
            waiting[1:]
        )
        http.post("/queue", json={"clear": True})
        assert http.get("/queue").json()["queue_pending"] == []
        assert [i[1] for i in http.get("/queue").json()["queue_running"]] == [running]
        http.post("/interrupt", json={"prompt_id": running})


def test_pending_prompts_run_in_heap_order_of_their_number(comfy):
    client_id = uuid.uuid4().hex
    with Socket(comfy.ws_url(client_id)) as ws, client(comfy) as http:
        ws.next()
        blocker = http.post(
            "/prompt", json={"prompt": sampler_prompt(60, "heap/blocker"), "client_id": client_id}
        ).json()["prompt_id"]
        ws.until(lambda f: isinstance(f, dict) and f["type"] == "progress")
        numbers = {}
        for index, extra in enumerate(({"number": 5}, {"number": 1.5}, {"front": True}, {})):
            body = {"prompt": sampler_prompt(1, f"heap/{index}"), "client_id": client_id, **extra}
            answer = http.post("/prompt", json=body).json()
            numbers[answer["prompt_id"]] = answer["number"]
        assert numbers[list(numbers)[2]] < 0  # front: the counter, negated
        http.post("/interrupt", json={"prompt_id": blocker})
        starts = []
        while len(starts) < len(numbers):
            frame = ws.until(lambda f: isinstance(f, dict) and f["type"] == "execution_start")[-1]
            starts.append(frame["data"]["prompt_id"])
    assert starts == sorted(numbers, key=numbers.get)


def test_2026_reports_a_dependency_cycle_on_every_node_in_it(comfy26):
    prompt = {
        "1": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}},
    }
    with client(comfy26) as http:
        body = http.post("/prompt", json={"prompt": prompt}).json()
    assert sorted(body["node_errors"]) == ["1", "2"]
    (error,) = body["node_errors"]["1"]["errors"]
    assert error["type"] == "dependency_cycle"
    assert error["details"] == "2 (ImageInvert) -> 1 (ImageInvert) -> 2 (ImageInvert)"
    assert error["extra_info"]["cycle_nodes"] == ["2", "1"]


def test_2026_credential_headers_must_name_a_socket_and_its_key(comfy26):
    with Socket(comfy26.ws_url("holder")) as ws, client(comfy26) as http:
        key = ws.next()["data"]["credential_key"]
        body = {"prompt": SMOKE_PROMPT, "client_id": "holder"}
        wrong = http.post(
            "/prompt",
            json=body,
            headers={"X-Comfy-Client-Id": "holder", "X-Comfy-Credential-Key": "x"},
        )
        other = http.post(
            "/prompt",
            json={**body, "client_id": "someone-else"},
            headers={"X-Comfy-Client-Id": "holder", "X-Comfy-Credential-Key": key},
        )
        right = http.post(
            "/prompt",
            json=body,
            headers={"X-Comfy-Client-Id": "holder", "X-Comfy-Credential-Key": key},
        )
    assert (wrong.status_code, wrong.json()) == (403, {"error": "Invalid client credentials"})
    assert other.json() == {"error": "client_id does not match authenticated client"}
    assert right.status_code == 200
