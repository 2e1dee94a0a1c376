"""The 2026 jobs API: `GET /api/jobs`, `GET /api/jobs/{id}`, `POST /api/jobs/{id}/cancel` and
`POST /api/jobs/cancel`.

Follows Comfy-Org/ComfyUI@5e14d797 `server.py` (routes, parameter checks, cancel semantics) and
comfyanonymous/ComfyUI@70408503 `comfy_execution/jobs.py` (job shapes, status mapping, preview
choice). A prompt id must be a canonical lowercase hyphenated UUID (the `validate_job_id` those
routes import is not in the cited copies; the rule is the one its error message states).
"""

from __future__ import annotations

import uuid

from aiohttp import web

STATUSES = ["pending", "in_progress", "completed", "failed", "cancelled"]
PREVIEWABLE = {"images", "video", "audio", "3d"}
THREE_D = (".obj", ".fbx", ".gltf", ".glb", ".usdz")


def validate_job_id(value) -> str:
    if not isinstance(value, str) or str(uuid.UUID(value)) != value:
        raise ValueError("prompt_id must be a valid UUID")
    return value


def _pruned(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def _metadata(extra_data: dict):
    workflow = (extra_data.get("extra_pnginfo") or {}).get("workflow") or {}
    return extra_data.get("create_time"), workflow.get("id")


def queue_job(item, status: str) -> dict:
    create_time, workflow_id = _metadata(item[3])
    job = {"id": item[1], "status": status, "priority": item[0], "create_time": create_time}
    return _pruned({**job, "outputs_count": 0, "workflow_id": workflow_id})


def _summary(outputs: dict):
    count, preview, fallback = 0, None, None
    for node_id, node_outputs in outputs.items():
        if not isinstance(node_outputs, dict):
            continue
        for media_type, items in node_outputs.items():
            if media_type == "animated" or not isinstance(items, list):
                continue
            for item in items:
                if not isinstance(item, dict):
                    continue
                count += 1
                if preview is not None:
                    continue
                fmt = item.get("format", "")
                if (
                    media_type in PREVIEWABLE
                    or fmt.startswith(("video/", "audio/"))
                    or item.get("filename", "").lower().endswith(THREE_D)
                ):
                    enriched = {**item, "nodeId": node_id, "mediaType": media_type}
                    if item.get("type") == "output":
                        preview = enriched
                    elif fallback is None:
                        fallback = enriched
    return count, preview or fallback


def history_job(prompt_id: str, entry: dict, detail: bool = False) -> dict:
    priority, _, prompt, extra_data, _ = entry["prompt"]
    create_time, workflow_id = _metadata(extra_data)
    status_info = entry.get("status") or {}
    start = end = error = None
    interrupted = False
    for name, data in status_info.get("messages", []):
        if name == "execution_start":
            start = data.get("timestamp")
        elif name in ("execution_success", "execution_error", "execution_interrupted"):
            end = data.get("timestamp")
            error = data if name == "execution_error" else error
            interrupted = interrupted or name == "execution_interrupted"
    status = "completed"
    if status_info.get("status_str") == "error":
        status = "cancelled" if interrupted else "failed"
    count, preview = _summary(entry.get("outputs", {}))
    job = _pruned(
        {
            "id": prompt_id,
            "status": status,
            "priority": priority,
            "create_time": create_time,
            "execution_start_time": start,
            "execution_end_time": end,
            "execution_error": error,
            "outputs_count": count,
            "preview_output": preview,
            "workflow_id": workflow_id,
        }
    )
    if detail:
        job["outputs"] = entry.get("outputs", {})
        job["execution_status"] = status_info
        job["workflow"] = {"prompt": prompt, "extra_data": extra_data}
    return job


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


async def list_jobs(request: web.Request) -> web.Response:
    queue, query = request.app["standin"].queue, request.rel_url.query
    wanted = STATUSES
    if query.get("status"):
        wanted = [s.strip().lower() for s in query["status"].split(",") if s.strip()]
        invalid = [s for s in wanted if s not in STATUSES]
        if invalid:
            return _bad(
                f"Invalid status value(s): {', '.join(invalid)}. "
                f"Valid values: {', '.join(STATUSES)}"
            )
    sort_by = query.get("sort_by", "created_at").lower()
    sort_order = query.get("sort_order", "desc").lower()
    if sort_by not in ("created_at", "execution_duration"):
        return _bad("sort_by must be 'created_at' or 'execution_duration'")
    if sort_order not in ("asc", "desc"):
        return _bad("sort_order must be 'asc' or 'desc'")
    limit = offset = None
    try:
        limit = int(query["limit"]) if "limit" in query else None
    except ValueError:
        return _bad("limit must be an integer")
    if limit is not None and limit <= 0:
        return _bad("limit must be a positive integer")
    try:
        offset = max(0, int(query.get("offset", 0)))
    except ValueError:
        return _bad("offset must be an integer")
    running, pending = queue.current()
    jobs = []
    if "in_progress" in wanted:
        jobs += [queue_job(item, "in_progress") for item in running]
    if "pending" in wanted:
        jobs += [queue_job(item, "pending") for item in pending]
    for prompt_id, entry in queue.get_history().items():
        job = history_job(prompt_id, entry)
        if job["status"] in wanted:
            jobs.append(job)
    if query.get("workflow_id"):
        jobs = [j for j in jobs if j.get("workflow_id") == query["workflow_id"]]
    jobs.sort(key=lambda j: _sort_key(j, sort_by), reverse=sort_order == "desc")
    total = len(jobs)
    page = jobs[offset:][:limit] if limit is not None else jobs[offset:]
    pagination = {
        "offset": offset,
        "limit": limit,
        "total": total,
        "has_more": offset + len(page) < total,
    }
    return web.json_response({"jobs": page, "pagination": pagination})


def _sort_key(job: dict, sort_by: str):
    if sort_by == "execution_duration":
        start, end = job.get("execution_start_time", 0), job.get("execution_end_time", 0)
        return end - start if end and start else 0
    return job.get("create_time", 0)


async def get_job(request: web.Request) -> web.Response:
    queue = request.app["standin"].queue
    job_id = request.match_info["job_id"]
    history = queue.get_history(prompt_id=job_id)
    running, pending = queue.current()
    if job_id in history:
        return web.json_response(history_job(job_id, history[job_id], detail=True))
    for items, status in ((running, "in_progress"), (pending, "pending")):
        for item in items:
            if item[1] == job_id:
                return web.json_response(queue_job(item, status))
    return web.json_response({"error": "Job not found"}, status=404)


def cancel(standin, job_id: str) -> bool:
    """Interrupt it when running, dequeue it when pending; a finished or unknown id is a no-op."""
    if job_id in standin.queue.running_ids():
        standin.executor.interrupt()
        return True
    return standin.queue.delete_queue_item(job_id)


async def cancel_job(request: web.Request) -> web.Response:
    standin = request.app["standin"]
    return web.json_response({"cancelled": cancel(standin, request.match_info["job_id"])})


async def cancel_jobs(request: web.Request) -> web.Response:
    standin = request.app["standin"]
    try:
        body = await request.json()
    except ValueError:
        return _bad("Request body must be valid JSON")
    job_ids = body.get("job_ids") if isinstance(body, dict) else None
    if not isinstance(job_ids, list):
        return _bad("job_ids must be a list")
    invalid = []
    for job_id in job_ids:
        try:
            validate_job_id(job_id)
        except (ValueError, AttributeError, TypeError):
            invalid.append(job_id if isinstance(job_id, str) else repr(job_id))
    if invalid:
        body = {"error": "job_ids contains invalid id(s)", "invalid_ids": invalid}
        return web.json_response(body, status=400)
    cancelled = [cancel(standin, job_id) for job_id in job_ids]
    return web.json_response({"cancelled": any(cancelled)})
