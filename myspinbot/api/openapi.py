"""The OpenAPI document of the HTTP API, built from pydantic models of the contract.

The document is assembled here rather than inferred from the handlers: the training
upload is a streamed multipart body and every route shares one error shape, which a
generated spec cannot express. It says what the server really answers, refusals of
schema-valid requests included (files judged by their content, ids that name no job);
tests check it against the running server. The page that shows it is web/docs.py's.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from sanic import Request, Sanic
from sanic.response import HTTPResponse, json

from .. import __version__
from ..config import MAX_PROMPT_CHARS, Settings
from ..jobs.artifacts import CONTENT_TYPES
from .jobs import JOB_ID_PATTERN, LORA_PATTERN, PROMPT_PATTERN
from .text_limits import MAX_NAME_CHARS, MAX_SAY_CHARS
from .uploads import AUDIO_TYPES, IMAGE_TYPES


class Artifact(BaseModel):
    name: str
    url: str
    size: int = Field(ge=0)
    content_type: str


class JobError(BaseModel):
    code: str
    message: str


class Job(BaseModel):
    id: str = Field(description="opaque, URL-safe, unique (a ULID)")
    kind: Literal["train", "generate"]
    state: Literal["queued", "active", "completed", "failed", "cancelled"]
    progress: int = Field(ge=0, le=100)
    message: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    attempt: int = Field(
        ge=0,
        description=(
            "runs that failed or lost their worker, plus the current one; a run handed back "
            "when its worker stopped (a clean shutdown) is not counted"
        ),
    )
    resumed: int = Field(
        0,
        ge=0,
        description=(
            "times the job was handed back when its worker stopped and taken up again (its "
            "message then says 'resumed after a restart'); absent on jobs made before it existed"
        ),
    )
    error: JobError | None
    input: dict[str, Any]
    artifacts: list[Artifact]
    result: dict[str, Any] | None = Field(
        None,
        description=(
            "what the engines made of the job, kept across attempts (with ComfyUI "
            "configured): prompt (as rendered), writer (the Ollama model that wrote it), "
            "comfyui (prompt_id, client_id, server, prefix, lora_prefix, ahead), preview "
            "(name, frame: the latest frame, at /api/jobs/{job_id}/preview), lora (train: "
            "the file ComfyUI's LoRA loaders know the weights by); train jobs, mock ones "
            "too: trigger (the token its captions start with, e.g. msb_alex_3f9k2q), "
            "samples (photos trained, one sample each), steps (training steps); generate "
            "jobs: line (the spoken line, or null), voice (spoken, none when there is no "
            "line, no_engine when no voice engine is configured, silent_workflow when the "
            "generate workflow has no {{voice_audio}})"
        ),
    )
    request_id: str | None = Field(None, description="X-Request-ID of the request that made it")


class JobList(BaseModel):
    jobs: list[Job]


class ErrorDetail(BaseModel):
    code: str = Field(description="a stable slug, e.g. invalid_field, queue_full")
    message: str = Field(description="a sentence for a human")
    field: str | None = Field(None, description="the request field at fault, when there is one")


class Error(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    redis: Literal["ok", "unreachable", "error"] = Field(
        description="error: Redis answered the health check's commands with an error"
    )
    workers: dict[str, int]
    queues: dict[str, int | None]
    engines: list[dict[str, Any]] | None = Field(
        None,
        description=(
            "with engines configured: each engine server the workers use "
            "(engine: comfyui, ollama or voice; url, up, version, queue, status (voice), error, "
            "workers)"
        ),
    )


class GenerateBody(BaseModel):
    prompt: str = Field(
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        pattern=PROMPT_PATTERN,
        description="what to show; not only white space",
    )
    lora: str | None = Field(
        None,
        pattern=LORA_PATTERN,
        description=(
            "the id of a completed train job, whose LoRA the clip uses; empty or null: the "
            "base model. An id that names no completed train job is refused with 422."
        ),
    )
    say: str | None = Field(
        None,
        max_length=MAX_SAY_CHARS,
        description=(
            "the line the persona speaks, in the voice of the train job named by lora "
            "(needs MYSPINBOT_VOICE_URL); null or blank: Ollama writes the line when it is "
            "configured, else the clip has no line"
        ),
    )


MODELS = (Artifact, JobError, Job, JobList, ErrorDetail, Error, Health, GenerateBody)
REF = "#/components/schemas/{model}"


def _json(model: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": REF.format(model=model)}}}


def _errors(*statuses: int, **why: str) -> dict[str, Any]:
    """Error responses by status; `why` (keys like s415) says when this operation gives one."""
    reasons = {
        400: "malformed request",
        401: "missing or wrong token (WWW-Authenticate: Bearer)",
        403: "cross-site or CSRF",
        404: "not found",
        409: "already finished",
        413: "too large",
        415: "wrong type",
        422: "invalid field",
        429: "a wrong token during this address's lockout (Retry-After); the right one works",
        503: "queue full or Redis unreachable (Retry-After)",
        507: "not enough disk space",
    }
    return {
        str(s): {"description": why.get(f"s{s}", reasons[s]), "content": _json("Error")}
        for s in statuses
    }


AUTH = (401, 429, 503)
ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "description": "a job's id (a ULID); any other value is a 404",
    "schema": {"type": "string", "pattern": JOB_ID_PATTERN},
}
JOB = {"description": "the job", "content": _json("Job")}
ACCEPTED = {
    "description": "queued (or, for a repeated Idempotency-Key, the first job)",
    "headers": {"Location": {"schema": {"type": "string"}}},
    "content": _json("Job"),
}
IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,200}$"},
}


def _artifact_content() -> dict[str, Any]:
    """Each type an artifact is served as: JSON ones are objects, the others raw bytes."""
    content: dict[str, Any] = {}
    for media_type in sorted({*CONTENT_TYPES.values(), "application/octet-stream"}):
        if media_type == "application/json":
            content[media_type] = {"schema": {"type": "object"}}
        else:
            content[media_type] = {"schema": {"type": "string", "format": "binary"}}
    return content


def _train_body(settings: Settings) -> dict[str, Any]:
    image_types = ", ".join(media_type for media_type, _ in IMAGE_TYPES.values())
    audio_types = ", ".join(media_type for media_type, _ in AUDIO_TYPES.values())
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["images", "voice"],
                    "properties": {
                        "images": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": settings.max_images,
                            "items": {"type": "string", "format": "binary", "minLength": 1},
                            "description": (
                                "PNG, JPEG or WebP images, judged by their content (not by "
                                f"their name or part type), each at most "
                                f"{settings.max_image_bytes} bytes and "
                                f"{settings.max_image_pixels} pixels"
                            ),
                        },
                        "voice": {
                            "type": "string",
                            "format": "binary",
                            "minLength": 1,
                            "description": (
                                "one WAV, MP3, FLAC or OGG file, judged by its content, at "
                                f"most {settings.max_voice_bytes} bytes"
                            ),
                        },
                        "name": {
                            "type": "string",
                            "maxLength": MAX_NAME_CHARS,
                            "description": (
                                "a name to show; control characters are dropped; a longer "
                                f"name than {MAX_NAME_CHARS} characters is refused (422)"
                            ),
                        },
                    },
                },
                "encoding": {
                    "images": {"contentType": image_types},
                    "voice": {"contentType": audio_types},
                },
            }
        },
    }


TRAIN_REFUSALS = {
    "s413": "too large: the whole upload, a file, or an image's pixel count",
    "s415": (
        "not multipart/form-data, or a file whose content is not an accepted type (an "
        "image that is not PNG, JPEG or WebP, a voice that is not WAV, MP3, FLAC or OGG), "
        "whatever its name or declared type"
    ),
    "s422": (
        "a missing or extra file field, too many images, an empty image, or more than one "
        "voice file"
    ),
}
GENERATE_REFUSALS = {
    "s415": "the body is not sent as application/json",
    "s422": (
        "an invalid field: the prompt's length or blankness, or a lora that names no "
        "completed train job (unknown, not a train job, or not completed yet)"
    ),
}


def _paths(settings: Settings) -> dict[str, Any]:
    return {
        "/health": {
            "get": {
                "summary": "Redis, live workers per queue, queue depths",
                "security": [],
                "responses": {
                    "200": {"description": "healthy", "content": _json("Health")},
                    "503": {
                        "description": "Redis unreachable, or failing (Retry-After)",
                        "headers": {"Retry-After": {"schema": {"type": "string"}}},
                        "content": _json("Health"),
                    },
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus text exposition",
                "security": [],
                "responses": {
                    "200": {
                        "description": "metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/api/generate": {
            "post": {
                "summary": "Queue a video generation",
                "parameters": [IDEMPOTENCY],
                "requestBody": {"required": True, "content": _json("GenerateBody")},
                "responses": {
                    "202": ACCEPTED,
                    **_errors(400, 403, 415, 422, *AUTH, **GENERATE_REFUSALS),
                },
            }
        },
        "/api/train": {
            "post": {
                "summary": "Queue a training run from images and one voice file",
                "parameters": [IDEMPOTENCY],
                "requestBody": _train_body(settings),
                "responses": {
                    "202": ACCEPTED,
                    **_errors(400, 403, 413, 415, 422, 507, *AUTH, **TRAIN_REFUSALS),
                },
            }
        },
        "/api/status/{job_id}": {
            "get": {
                "summary": "One job",
                "parameters": [ID],
                "responses": {"200": JOB, **_errors(404, 422, *AUTH, s422=UNKNOWN_QUERY)},
            }
        },
        "/api/jobs": {
            "get": {
                "summary": "Jobs, newest first",
                "parameters": [
                    {
                        "name": "kind",
                        "in": "query",
                        "description": "only jobs of this kind; empty: every kind",
                        "schema": {"enum": ["train", "generate", ""]},
                    },
                    {
                        "name": "state",
                        "in": "query",
                        "description": "only jobs in this state; empty: every state",
                        "schema": {
                            "enum": ["queued", "active", "completed", "failed", "cancelled", ""]
                        },
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "description": "how many jobs at most; empty: the default",
                        "schema": {
                            "anyOf": [
                                {"type": "integer", "minimum": 1, "maximum": 200},
                                {"const": ""},
                            ],
                            "default": 50,
                        },
                    },
                ],
                "responses": {
                    "200": {"description": "jobs", "content": _json("JobList")},
                    **_errors(422, *AUTH, s422=f"a bad kind, state or limit; {UNKNOWN_QUERY}"),
                },
            }
        },
        "/api/jobs/{job_id}/cancel": {
            "post": {
                "summary": "Cancel a queued (at once) or active (at its next step) job",
                "parameters": [ID],
                "responses": {
                    "200": JOB,
                    **_errors(403, 404, 409, 422, *AUTH, s422=UNKNOWN_QUERY),
                },
            }
        },
        "/api/jobs/{job_id}/artifacts/{name}": {
            "get": {
                "summary": "Download an artifact, served with its real content type",
                "parameters": [
                    ID,
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "description": "one of the names the job's artifacts list",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": (
                            "the file: JSON artifacts (result.json, manifest.json) as "
                            "application/json, the others as their own type"
                        ),
                        "headers": {
                            "Content-Disposition": {
                                "description": "inline for images and video, else attachment",
                                "schema": {"type": "string"},
                            }
                        },
                        "content": _artifact_content(),
                    },
                    **_errors(
                        404,
                        422,
                        *AUTH,
                        s404="no such job, no such artifact, or its file is gone",
                        s422=UNKNOWN_QUERY,
                    ),
                },
            }
        },
        "/api/jobs/{job_id}/preview": {
            "get": {
                "summary": "The latest preview frame the engine sent while the job ran",
                "parameters": [ID],
                "responses": {
                    "200": {
                        "description": "the frame (result.preview says which one it is)",
                        "content": {
                            media_type: {"schema": {"type": "string", "format": "binary"}}
                            for media_type in ("image/jpeg", "image/png")
                        },
                    },
                    **_errors(
                        404,
                        422,
                        *AUTH,
                        s404="no such job, or it has no preview (mocks, or no frame yet)",
                        s422=UNKNOWN_QUERY,
                    ),
                },
            }
        },
    }


UNKNOWN_QUERY = "a query parameter this route does not take"


def openapi_document(settings: Settings | None = None) -> dict[str, Any]:
    """The document for a server with these settings (the defaults when None)."""
    settings = settings or Settings()
    schemas = {m.__name__: m.model_json_schema(ref_template=REF) for m in MODELS}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "MySpinBot",
            "version": __version__,
            "description": (
                "Train a personal model, then generate clips with it. Job events stream "
                "over the WebSocket `/ws`: a `snapshot` frame, then `queued`, `progress`, "
                "`done`, `error` and `cancelled` frames that each carry the whole job."
            ),
        },
        "servers": [{"url": "/"}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": _paths(settings),
    }


def setup_openapi(app: Sanic) -> None:
    app.ctx.openapi = openapi_document(app.ctx.settings)
    app.add_route(openapi_json, "/docs/openapi.json", methods=["GET"], name="openapi_json")


async def openapi_json(request: Request) -> HTTPResponse:
    return json(request.app.ctx.openapi)
