"""REST routes for jobs: submit, status, list, cancel, artifacts, the live preview."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, file

from ..errors import BadRequest, InvalidField, NotFound, UnsupportedMediaType
from ..jobs.artifacts import artifact_folder
from ..jobs.model import KINDS, STATES, is_job_id, new_job_id
from ..jobs.service import JobService
from .text_limits import check_length
from .uploads import TrainingUploadReader

bp = Blueprint("jobs", url_prefix="/api")

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
# The shapes the OpenAPI document declares, in a syntax both Python and JSON Schema read.
JOB_ID_PATTERN = "^[0-9A-HJKMNP-TV-Z]{26}$"  # a ULID, as jobs.model.is_job_id checks
LORA_PATTERN = "^(|[0-9A-HJKMNP-TV-Z]{26})$"  # empty: no LoRA
# A character str.strip() keeps: a prompt without one is blank.
PROMPT_PATTERN = r"[^\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
VISIBLE = re.compile(PROMPT_PATTERN)
INLINE_TYPES = ("image/", "video/")


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)

    prompt: str = Field(min_length=1)
    lora: str | None = None
    say: str | None = None  # the line to speak


def accepted(job: dict[str, Any]) -> HTTPResponse:
    return HTTPResponse(
        orjson.dumps(job),
        status=202,
        content_type="application/json",
        headers={"Location": f"/api/status/{job['id']}"},
    )


def ok(payload: Any) -> HTTPResponse:
    return HTTPResponse(orjson.dumps(payload), content_type="application/json")


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.match(key):
        raise InvalidField(
            "Idempotency-Key must be 1-200 printable ASCII characters", field="Idempotency-Key"
        )
    return key


def parse_generate(body: bytes) -> GenerateRequest:
    try:
        data = orjson.loads(body or b"")
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not valid JSON", code="invalid_json") from None
    if not isinstance(data, dict):
        raise InvalidField('send a JSON object: {"prompt": "…", "lora": "…"}')
    try:
        parsed = GenerateRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else None
        raise InvalidField(f"{name}: {first['msg']}", field=name) from None
    check_length("prompt", parsed.prompt)
    if not VISIBLE.search(parsed.prompt):
        raise InvalidField("prompt: must not be blank", field="prompt")
    if parsed.say is not None:
        check_length("say", parsed.say)
    if parsed.say is not None and not VISIBLE.search(parsed.say):
        parsed.say = None  # an empty line is no line
    return parsed


QUERY_PARAMETERS = {
    "myspinbot.jobs.list_jobs": {"kind", "state", "limit"},
    "myspinbot.jobs.preview": {"frame"},  # the dashboard's cache buster, not read
}


@bp.on_request
def refuse_unknown_query_parameters(request: Request) -> None:
    """A misspelt filter (say ?kinds=train) must not silently list everything."""
    allowed = QUERY_PARAMETERS.get(request.name or "", set())
    unknown = sorted(set(request.args) - allowed)
    if unknown:
        raise InvalidField(f"unknown query parameter {unknown[0]!r}", field=unknown[0])


def service(request: Request) -> JobService:
    return request.app.ctx.jobs


@bp.post("/generate")
async def generate(request: Request) -> HTTPResponse:
    content_type = request.headers.get("content-type", "")
    if content_type and not content_type.startswith("application/json"):
        raise UnsupportedMediaType("send the request as application/json")
    body = parse_generate(request.body)
    if body.lora:
        await service(request).require_lora(body.lora)
    job, _ = await service(request).submit(
        "generate",
        {"prompt": body.prompt, "lora": body.lora} | ({"say": body.say} if body.say else {}),
        idempotency_key=idempotency_key(request),
        request_id=request.ctx.request_id,
    )
    return accepted(job)


@bp.post("/train", stream=True)
async def train(request: Request) -> HTTPResponse:
    jobs = service(request)
    key = idempotency_key(request)
    if key and (earlier := await jobs.find_idempotent("train", key)):
        return accepted(earlier)
    settings = request.app.ctx.settings
    job_id = new_job_id()
    staging = settings.uploads_dir / ".staging" / job_id
    upload = await TrainingUploadReader(settings, staging).read(request)
    final = settings.uploads_dir / job_id
    try:
        upload.folder.rename(final)
        job, created = await jobs.submit(
            "train",
            upload.job_input,
            job_id=job_id,
            idempotency_key=key,
            request_id=request.ctx.request_id,
        )
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not created:
        shutil.rmtree(final, ignore_errors=True)
    return accepted(job)


@bp.get("/status/<job_id:str>")
async def status(request: Request, job_id: str) -> HTTPResponse:
    return ok(await service(request).get(job_id))


def _choice(request: Request, name: str, options: tuple[str, ...]) -> str | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    if value not in options:
        raise InvalidField(f"{name} must be one of {', '.join(options)}", field=name)
    return value


def _limit(request: Request) -> int:
    raw = request.args.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= 200:
        raise InvalidField("limit must be an integer from 1 to 200", field="limit")
    return int(raw)


@bp.get("/jobs")
async def list_jobs(request: Request) -> HTTPResponse:
    kind, state = _choice(request, "kind", KINDS), _choice(request, "state", STATES)
    docs = await service(request).list(_limit(request), kind, state)
    body = b'{"jobs":[' + b",".join(docs) + b"]}"
    return HTTPResponse(body, content_type="application/json")


@bp.post("/jobs/<job_id:str>/cancel")
async def cancel(request: Request, job_id: str) -> HTTPResponse:
    return ok(await service(request).cancel(job_id))


async def _run_folder(request: Request, job_id: str) -> Path:
    """The folder of the job's current or last run (the job's `attempt` skips hand-backs)."""
    number = await service(request).store.run_number(job_id)
    return artifact_folder(request.app.ctx.settings.artifacts_dir, job_id, number)


@bp.get("/jobs/<job_id:str>/artifacts/<name:str>")
async def artifact(request: Request, job_id: str, name: str) -> HTTPResponse:
    job = await service(request).get(job_id) if is_job_id(job_id) else None
    if job is None:
        raise NotFound(f"no job with id {job_id!r}")
    # Only names the job record lists are served, so no path from the URL reaches the disk.
    entry = next((a for a in job["artifacts"] if a["name"] == name), None)
    if entry is None:
        raise NotFound(f"job {job_id} has no artifact {name!r}")
    folder = await _run_folder(request, job_id)
    path: Path = folder / entry["name"]
    if not path.is_file():
        raise NotFound(f"the file of artifact {name!r} is gone")
    inline = entry["content_type"].startswith(INLINE_TYPES)
    disposition = "inline" if inline else "attachment"
    return await file(
        path,
        mime_type=entry["content_type"],
        headers={
            "Content-Disposition": f'{disposition}; filename="{entry["name"]}"',
            "Cache-Control": "private, max-age=3600",
        },
    )


PREVIEW_TYPES = {".jpg": "image/jpeg", ".png": "image/png"}


@bp.get("/jobs/<job_id:str>/preview")
async def preview(request: Request, job_id: str) -> HTTPResponse:
    """The latest preview frame the engine sent while the job ran (result.preview)."""
    job = await service(request).get(job_id) if is_job_id(job_id) else None
    if job is None:
        raise NotFound(f"no job with id {job_id!r}")
    shown = (job.get("result") or {}).get("preview") or {}
    name = str(shown.get("name", ""))
    mime = PREVIEW_TYPES.get(Path(name).suffix)
    # Only the names the engine pipeline writes are served: nothing from the URL or the
    # record reaches a path beyond the attempt's own folder.
    if mime is None or name not in {f"preview{suffix}" for suffix in PREVIEW_TYPES}:
        raise NotFound(f"job {job_id} has no preview")
    folder = await _run_folder(request, job_id)
    path = folder / name
    if not path.is_file():
        raise NotFound(f"job {job_id} has no preview")
    return await file(
        path,
        mime_type=mime,
        headers={"Content-Disposition": "inline", "Cache-Control": "no-store"},
    )
