"""The OpenAPI document of API.md, built from pydantic models of the contract.

The document is assembled here rather than inferred from the handlers: the training
upload is a streamed multipart body and every route shares one error shape, which a
generated spec cannot express; tests check that it lists exactly the routes we serve.
The page that shows it is web/docs.py's.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, Field
from sanic import Request, Sanic
from sanic.response import HTTPResponse, json

from .. import __version__
from ..config import MAX_PROMPT_CHARS


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
    attempt: int = Field(ge=0)
    error: JobError | None
    input: dict[str, Any]
    artifacts: list[Artifact]
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
    redis: str
    workers: dict[str, int]
    queues: dict[str, int | None]


class GenerateBody(BaseModel):
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    lora: str | None = Field(None, description="id of a completed train job")


MODELS = (Artifact, JobError, Job, JobList, ErrorDetail, Error, Health, GenerateBody)
REF = "#/components/schemas/{model}"


def _json(model: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": REF.format(model=model)}}}


def _errors(*statuses: int) -> dict[str, Any]:
    reasons = {
        400: "malformed request",
        401: "missing or wrong token",
        403: "cross-site or CSRF",
        404: "not found",
        409: "already finished",
        413: "too large",
        415: "wrong type",
        422: "invalid field",
        429: "too many failed sign-ins",
        503: "queue full or Redis unreachable (Retry-After)",
        507: "not enough disk space",
    }
    return {str(s): {"description": reasons[s], "content": _json("Error")} for s in statuses}


AUTH = (401, 429, 503)
ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
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


def _paths() -> dict[str, Any]:
    return {
        "/health": {
            "get": {
                "summary": "Redis, live workers per queue, queue depths",
                "security": [],
                "responses": {
                    "200": {"description": "healthy", "content": _json("Health")},
                    "503": {"description": "Redis unreachable", "content": _json("Health")},
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
                "responses": {"202": ACCEPTED, **_errors(400, 403, 415, 422, *AUTH)},
            }
        },
        "/api/train": {
            "post": {
                "summary": "Queue a training run from 1-50 images and one voice file",
                "parameters": [IDEMPOTENCY],
                "requestBody": {
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
                                        "maxItems": 50,
                                        "items": {"type": "string", "format": "binary"},
                                        "description": "PNG, JPEG or WebP, judged by content",
                                    },
                                    "voice": {
                                        "type": "string",
                                        "format": "binary",
                                        "description": "WAV, MP3, FLAC or OGG",
                                    },
                                    "name": {"type": "string", "maxLength": 100},
                                },
                            }
                        }
                    },
                },
                "responses": {"202": ACCEPTED, **_errors(400, 403, 413, 415, 422, 507, *AUTH)},
            }
        },
        "/api/status/{job_id}": {
            "get": {
                "summary": "One job",
                "parameters": [ID],
                "responses": {"200": JOB, **_errors(404, *AUTH)},
            }
        },
        "/api/jobs": {
            "get": {
                "summary": "Jobs, newest first",
                "parameters": [
                    {"name": "kind", "in": "query", "schema": {"enum": ["train", "generate"]}},
                    {
                        "name": "state",
                        "in": "query",
                        "schema": {
                            "enum": ["queued", "active", "completed", "failed", "cancelled"]
                        },
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                    },
                ],
                "responses": {
                    "200": {"description": "jobs", "content": _json("JobList")},
                    **_errors(422, *AUTH),
                },
            }
        },
        "/api/jobs/{job_id}/cancel": {
            "post": {
                "summary": "Cancel a queued (at once) or active (at its next step) job",
                "parameters": [ID],
                "responses": {"200": JOB, **_errors(403, 404, 409, *AUTH)},
            }
        },
        "/api/jobs/{job_id}/artifacts/{name}": {
            "get": {
                "summary": "Download an artifact, served with its real content type",
                "parameters": [
                    ID,
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {
                        "description": "the file",
                        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                    },
                    **_errors(404, *AUTH),
                },
            }
        },
    }


@cache
def openapi_document() -> dict[str, Any]:
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
        "paths": _paths(),
    }


def setup_openapi(app: Sanic) -> None:
    app.add_route(openapi_json, "/docs/openapi.json", methods=["GET"], name="openapi_json")


async def openapi_json(request: Request) -> HTTPResponse:
    return json(openapi_document())
