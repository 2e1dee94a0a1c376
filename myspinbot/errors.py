"""The error tree and its one JSON renderer (API.md's error shape)."""

from __future__ import annotations

from typing import Any

import orjson
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sanic.response import HTTPResponse

# Redis could not be reached or did not answer in time: an outage, worth a retry (503 with
# Retry-After). BusyLoadingError, a restarted Redis still reading its data, is a
# ConnectionError. A reply error (a wrong command, a script bug, WRONGTYPE) is not an outage:
# retrying cannot help, so it is an unexpected error, a 500 with its traceback in the log.
REDIS_OUTAGE = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError)


class MySpinBotError(Exception):
    """An error a client can act on; `status` and `code` go into the response."""

    status = 400
    code = "bad_request"
    headers: dict[str, str] = {}

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code
        if headers:
            self.headers = headers


class BadRequest(MySpinBotError):
    status, code = 400, "bad_request"


class Unauthorized(MySpinBotError):
    """Every 401 says how to authenticate (RFC 9110): a Bearer token."""

    status, code = 401, "unauthorized"
    headers = {"WWW-Authenticate": 'Bearer realm="myspinbot"'}


class Forbidden(MySpinBotError):
    status, code = 403, "forbidden"


class NotFound(MySpinBotError):
    status, code = 404, "not_found"


class Conflict(MySpinBotError):
    status, code = 409, "conflict"


class PayloadTooLarge(MySpinBotError):
    status, code = 413, "too_large"


class UnsupportedMediaType(MySpinBotError):
    status, code = 415, "unsupported_type"


class InvalidField(MySpinBotError):
    status, code = 422, "invalid_field"


class TooManyRequests(MySpinBotError):
    status, code = 429, "too_many_requests"


class InsufficientStorage(MySpinBotError):
    status, code = 507, "insufficient_storage"


class ServiceUnavailable(MySpinBotError):
    status, code = 503, "unavailable"

    def __init__(self, message: str, *, retry_after: int = 5, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"Retry-After": str(retry_after)})


def error_payload(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return {"error": body}


def json_error(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> HTTPResponse:
    return HTTPResponse(
        orjson.dumps(error_payload(code, message, field)),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def render(error: MySpinBotError) -> HTTPResponse:
    return json_error(
        error.status, error.code, error.message, field=error.field, headers=error.headers
    )
