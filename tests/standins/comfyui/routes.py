"""ComfyUI's HTTP routes (prompt, queue, history, interrupt, discovery), as its `server.py`.

Follows ComfyUI 0.3.64 (Comfy-Org/ComfyUI@a125cd84 `server.py`): every route at `/<path>` and
`/api/<path>`; bodies that are not JSON where JSON is read are a 500 (aiohttp's own), as
upstream; `POST /queue`, `/interrupt`, `/free` and `/history` answer 200 with an empty body;
`/history/{id}` is `{}` until the prompt is done. 2026 (Comfy-Org/ComfyUI@5e14d797) adds the
UUID-only `prompt_id` (400 `invalid_prompt_id`), 409 for a known id, `create_time` in
extra_data, the credential headers (403 unless they name a socket and its key), and
`sys.platform`, `comfy_package_versions`, `deploy_environment` in `/system_stats` (their
values here are placeholders; the cited sources do not show them).
"""

from __future__ import annotations

import hmac
import os
import sys
import time
import uuid

from aiohttp import web

from . import files, jobs
from .nodes import node_info
from .paths import MODEL_FOLDERS

INDEX = "<!doctype html><title>ComfyUI</title><p>ComfyUI stand-in for tests.</p>"
GIB = 1024**3


async def root(request: web.Request) -> web.Response:
    headers = {"Cache-Control": "no-cache", "Pragma": "no-cache", "Expires": "0"}
    return web.Response(text=INDEX, content_type="text/html", headers=headers)


async def system_stats(request: web.Request) -> web.Response:
    standin = request.app["standin"]
    new = standin.generation == "2026"
    system = {
        "os": sys.platform if new else os.name,
        "ram_total": 64 * GIB,
        "ram_free": 48 * GIB,
        "comfyui_version": standin.version,
        "required_frontend_version": "1.27.10",
        "installed_templates_version": "0.1.95",
        "required_templates_version": "0.1.95",
    }
    if new:
        system["comfy_package_versions"] = {}
    system |= {
        "python_version": sys.version,
        "pytorch_version": "2.9.1+cu128",
        "embedded_python": False,
    }
    if new:
        system["deploy_environment"] = "local"
    system["argv"] = ["main.py", "--listen", "127.0.0.1"]
    device = {
        "name": "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync",
        "type": "cuda",
        "index": 0,
        "vram_total": 24 * GIB,
        "vram_free": 22 * GIB,
        "torch_vram_total": 0,
        "torch_vram_free": 0,
    }
    return web.json_response({"system": system, "devices": [device]})


async def features(request: web.Request) -> web.Response:
    return web.json_response(request.app["standin"].hub.server_features())


async def get_prompt(request: web.Request) -> web.Response:
    return web.json_response(request.app["standin"].hub.queue_info())


async def object_info(request: web.Request) -> web.Response:
    standin = request.app["standin"]
    table = standin.table
    out = {name: node_info(node, standin.base, standin.generation) for name, node in table.items()}
    # ComfyUI's Load3D node creates input/3d while /object_info lists it, so a folder combo
    # shows "3d" from the second listing on.
    os.makedirs(os.path.join(standin.base.input, "3d"), exist_ok=True)
    return web.json_response(out)


async def object_info_node(request: web.Request) -> web.Response:
    standin = request.app["standin"]
    name = request.match_info["node_class"]
    if name not in standin.table:
        return web.json_response({})
    return web.json_response(
        {name: node_info(standin.table[name], standin.base, standin.generation)}
    )


async def list_model_types(request: web.Request) -> web.Response:
    return web.json_response(list(MODEL_FOLDERS))


async def get_models(request: web.Request) -> web.Response:
    folder = request.match_info["folder"]
    if folder not in MODEL_FOLDERS:
        return web.Response(status=404)
    return web.json_response(request.app["standin"].base.model_files(folder))


async def embeddings(request: web.Request) -> web.Response:
    names = request.app["standin"].base.model_files("embeddings")
    return web.json_response([os.path.splitext(name)[0] for name in names])


async def extensions(request: web.Request) -> web.Response:
    return web.json_response([])


def _invalid_prompt_id() -> web.Response:
    error = {
        "type": "invalid_prompt_id",
        "message": "prompt_id must be a valid UUID",
        "details": "prompt_id must be a UUID string in canonical lowercase hyphenated form; "
        "omit it to let the server generate one",
        "extra_info": {},
    }
    return web.json_response({"error": error, "node_errors": {}}, status=400)


def _credential_refusal(request: web.Request, json_data) -> web.Response | None:
    """2026: X-Comfy-Client-Id / X-Comfy-Credential-Key must name a socket and its key."""
    client_id = request.headers.get("X-Comfy-Client-Id")
    key = request.headers.get("X-Comfy-Credential-Key")
    if client_id is None and key is None:
        return None
    expected = request.app["standin"].hub.metadata.get(client_id or "", {}).get("credential_key")
    if not client_id or not key or not expected or not hmac.compare_digest(key, expected):
        return web.json_response({"error": "Invalid client credentials"}, status=403)
    if json_data.get("client_id") != client_id:
        message = "client_id does not match authenticated client"
        return web.json_response({"error": message}, status=403)
    return None


async def post_prompt(request: web.Request) -> web.Response:
    standin = request.app["standin"]
    new = standin.generation == "2026"
    json_data = await request.json()
    refusal = _credential_refusal(request, json_data) if new else None
    if refusal is not None:
        return refusal
    if "number" in json_data:
        number = float(json_data["number"])
    else:
        number = standin.number
        if "front" in json_data and json_data["front"]:
            number = -number
        standin.number += 1
    if "prompt" not in json_data:
        error = {
            "type": "no_prompt",
            "message": "No prompt provided",
            "details": "No prompt provided",
            "extra_info": {},
        }
        return web.json_response({"error": error, "node_errors": {}}, status=400)
    prompt = json_data["prompt"]
    if not new:
        prompt_id = str(json_data.get("prompt_id", uuid.uuid4()))
    elif json_data.get("prompt_id") is None:
        prompt_id = str(uuid.uuid4())
    else:
        try:
            prompt_id = jobs.validate_job_id(json_data["prompt_id"])
        except ValueError:
            return _invalid_prompt_id()
    targets = json_data.get("partial_execution_targets")
    valid = standin.validator.validate_prompt(prompt, targets)
    extra_data = json_data.get("extra_data", {})
    if "client_id" in json_data:
        extra_data["client_id"] = json_data["client_id"]
    if not valid[0]:
        return web.json_response({"error": valid[1], "node_errors": valid[3]}, status=400)
    if new:
        extra_data["create_time"] = int(time.time() * 1000)
    if not standin.queue.put((number, prompt_id, prompt, extra_data, valid[2])):
        return web.json_response({"error": "prompt_id already exists"}, status=409)
    return web.json_response({"prompt_id": prompt_id, "number": number, "node_errors": valid[3]})


async def get_queue(request: web.Request) -> web.Response:
    running, pending = request.app["standin"].queue.current()
    return web.json_response({"queue_running": running, "queue_pending": pending})


async def post_queue(request: web.Request) -> web.Response:
    queue = request.app["standin"].queue
    json_data = await request.json()
    if "clear" in json_data and json_data["clear"]:
        queue.wipe_queue()
    if "delete" in json_data:
        for prompt_id in json_data["delete"]:
            queue.delete_queue_item(prompt_id)
    return web.Response(status=200)


async def post_interrupt(request: web.Request) -> web.Response:
    standin = request.app["standin"]
    try:
        json_data = await request.json()
    except ValueError:
        json_data = {}
    prompt_id = json_data.get("prompt_id")
    if not prompt_id or prompt_id in standin.queue.running_ids():
        standin.executor.interrupt()
    return web.Response(status=200)


async def post_free(request: web.Request) -> web.Response:
    json_data = await request.json()
    if json_data.get("free_memory", False):
        request.app["standin"].executor.cache = {}
    return web.Response(status=200)


async def get_history(request: web.Request) -> web.Response:
    query = request.rel_url.query
    max_items = int(query["max_items"]) if "max_items" in query else None
    offset = int(query["offset"]) if "offset" in query else -1
    history = request.app["standin"].queue.get_history(max_items=max_items, offset=offset)
    return web.json_response(history)


async def get_history_item(request: web.Request) -> web.Response:
    queue = request.app["standin"].queue
    return web.json_response(queue.get_history(prompt_id=request.match_info["prompt_id"]))


async def post_history(request: web.Request) -> web.Response:
    queue = request.app["standin"].queue
    json_data = await request.json()
    if "clear" in json_data and json_data["clear"]:
        queue.wipe_history()
    if "delete" in json_data:
        for prompt_id in json_data["delete"]:
            queue.delete_history_item(prompt_id)
    return web.Response(status=200)


ROUTES = [
    ("GET", "/", root),
    ("GET", "/embeddings", embeddings),
    ("GET", "/models", list_model_types),
    ("GET", "/models/{folder}", get_models),
    ("GET", "/extensions", extensions),
    ("POST", "/upload/image", files.upload_image),
    ("GET", "/view", files.view),
    ("GET", "/view_metadata/{folder_name}", files.view_metadata),
    ("GET", "/system_stats", system_stats),
    ("GET", "/features", features),
    ("GET", "/prompt", get_prompt),
    ("GET", "/object_info", object_info),
    ("GET", "/object_info/{node_class}", object_info_node),
    ("GET", "/history", get_history),
    ("GET", "/history/{prompt_id}", get_history_item),
    ("GET", "/queue", get_queue),
    ("POST", "/prompt", post_prompt),
    ("POST", "/queue", post_queue),
    ("POST", "/interrupt", post_interrupt),
    ("POST", "/free", post_free),
    ("POST", "/history", post_history),
]
JOB_ROUTES = [  # declared with their /api prefix upstream, so they also exist under /api/api
    ("GET", "/api/jobs", jobs.list_jobs),
    ("GET", "/api/jobs/{job_id}", jobs.get_job),
    ("POST", "/api/jobs/{job_id}/cancel", jobs.cancel_job),
    ("POST", "/api/jobs/cancel", jobs.cancel_jobs),
]
