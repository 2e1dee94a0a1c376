"""One logging configuration for every process: text or JSON lines, with request ids."""

from __future__ import annotations

import contextvars
import logging
import logging.config
import sys
import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import orjson

from .config import Settings

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# Keys of LogRecord itself; anything else on a record is an `extra` worth keeping in JSON.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    """Stamp each record with the current request id, and give Sanic's access lines a text."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        if record.name == "sanic.access" and hasattr(record, "request"):
            access_text(record)
        return True


def access_text(record: logging.LogRecord) -> None:
    """Sanic passes an access line's fields as extras and leaves the text to its formatter.

    HTTP: `GET http://host/path 200 97 2.1ms`; WebSocket: `WS OPEN http://host/ws`, and
    `WS CLOSE http://host/ws 1000 NORMAL from client` when it ends.
    """
    fields = vars(record)
    if fields.get("_access_text"):  # done already (a second handler)
        return
    fields["request"] = str(fields["request"]).replace("\N{ELECTRIC PLUG}", "").strip()
    fields["duration"] = str(fields.get("duration", "")).strip()  # " 2.1ms"
    event = f"WS {record.msg}" if record.msg else ""
    parts = (event, fields["request"], fields.get("status"), fields.get("byte"), fields["duration"])
    record.msg = " ".join(str(part) for part in parts if part not in ("", None))
    record.args = ()
    fields["_access_text"] = True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, (str, int, float, bool)) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry).decode()


TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s"


def logging_config(settings: Settings) -> dict[str, Any]:
    """The dictConfig for every process; also handed to Sanic so it adds no handlers of its own."""
    level = settings.log_level.upper()
    formatter = {"()": JsonFormatter} if settings.log_format == "json" else {"format": TEXT_FORMAT}
    quiet = "WARNING" if level in ("DEBUG", "INFO") else level
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"default": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": sys.stderr,
                "formatter": "default",
                "filters": ["request_id"],
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            # Everything propagates to the root's one handler: no line is printed twice.
            "sanic.root": {"level": level, "handlers": [], "propagate": True},
            "sanic.error": {"level": level, "handlers": [], "propagate": True},
            "sanic.access": {"level": level, "handlers": [], "propagate": True},
            "sanic.server": {"level": quiet, "handlers": [], "propagate": True},
            "sanic.websockets": {"level": quiet, "handlers": [], "propagate": True},
            "huey": {"level": quiet, "handlers": [], "propagate": True},
        },
    }


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("myspinbot").critical("uncaught exception", exc_info=(kind, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread else "?"
    logging.getLogger("myspinbot").critical(
        "uncaught exception in thread %s",
        name,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def configure_logging(settings: Settings) -> None:
    """Apply the configuration; warnings and uncaught exceptions become log records too."""
    logging.config.dictConfig(logging_config(settings))
    logging.captureWarnings(True)
    # Only replace the interpreter's own hooks, never a test runner's or a debugger's.
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = _log_uncaught
    if threading.excepthook is threading.__excepthook__:
        threading.excepthook = _log_uncaught_in_thread
