"""Settings: the one place that reads the environment."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

MiB = 1024 * 1024
MAX_PROMPT_CHARS = 2000
QUEUES = ("train", "generate")
_MAX_SOCKET_PATH = 100  # AF_UNIX allows ~107 bytes; longer fails as "Address already in use"


class SettingsError(ValueError):
    """A variable of the environment has a value we cannot use."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


def _parse_redis_url(name: str, raw: str) -> str:
    scheme = urlsplit(raw).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise SettingsError(name, f"expected redis://, rediss:// or unix://, got {raw!r}")
    return raw


def _parse_http_url(name: str, raw: str) -> str | None:
    raw = raw.strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    # The value is not echoed: it may carry a password or a token.
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(name, "expected an http:// or https:// URL")
    return raw


def _optional_path(name: str, raw: str) -> Path | None:
    return Path(raw).expanduser().resolve() if raw.strip() else None


def _parse_bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(name, f"expected true/false, got {raw!r}")


def _choice(*options: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise SettingsError(name, f"expected one of {', '.join(options)}, got {raw!r}")
        return value

    return parse


def _number(kind: type, minimum: float, maximum: float | None = None) -> Callable[[str, str], Any]:
    def parse(name: str, raw: str) -> Any:
        try:
            value = kind(raw)
        except ValueError:
            raise SettingsError(name, f"expected {kind.__name__}, got {raw!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise SettingsError(name, f"must be {bounds}, got {raw!r}")
        return value

    return parse


def _text(name: str, raw: str) -> str:
    return raw


def _optional_text(name: str, raw: str) -> str | None:
    return raw or None


def _keep_alive(name: str, raw: str) -> str:
    """Ollama's keep_alive: seconds (a number, -1 = forever) or a Go duration ("5m")."""
    text = raw.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?|-?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+", text):
        return text
    raise SettingsError(name, f"expected seconds or a duration such as 5m, got {raw!r}")


def _path(name: str, raw: str) -> Path:
    if not raw.strip():
        raise SettingsError(name, "must not be empty")
    return Path(raw).expanduser().resolve()


def _setting(env: str, default: Any, parse: Callable[[str, str], Any], doc: str) -> Any:
    return field(default=default, metadata={"env": env, "parse": parse, "doc": doc})


@dataclass(frozen=True)
class Settings:
    """Everything the server, the workers and the CLI can be configured with."""

    redis_url: str | None = _setting(
        "REDIS_URL", None, _parse_redis_url, "Redis to use; unset starts an embedded server"
    )
    redis_server: str | None = _setting(
        "MYSPINBOT_REDIS_SERVER",
        None,
        _optional_text,
        "the redis-server/valkey-server binary the embedded Redis runs (default: found)",
    )
    host: str = _setting("MYSPINBOT_HOST", "127.0.0.1", _text, "address to listen on")
    port: int = _setting("MYSPINBOT_PORT", 8000, _number(int, 0, 65535), "port to listen on")
    data_dir: Path = _setting(
        "MYSPINBOT_DATA_DIR", Path("var"), _path, "uploads, artifacts, embedded Redis files"
    )
    proxies_count: int = _setting(
        "MYSPINBOT_PROXIES_COUNT", 0, _number(int, 0, 10), "reverse proxies in front (Traefik: 1)"
    )
    http_workers: int = _setting(
        "MYSPINBOT_HTTP_WORKERS", 1, _number(int, 1, 64), "HTTP worker processes"
    )
    inprocess_workers: int = _setting(
        "MYSPINBOT_INPROCESS_WORKERS", 1, _number(int, 0, 32), "worker processes per queue"
    )
    worker_threads: int = _setting(
        "MYSPINBOT_WORKER_THREADS", 1, _number(int, 1, 64), "jobs each worker process runs at once"
    )
    api_token: str | None = _setting(
        "MYSPINBOT_API_TOKEN", None, _optional_text, "token required by /api and /ws"
    )
    auth_max_failures: int = _setting(
        "MYSPINBOT_AUTH_MAX_FAILURES",
        10,
        _number(int, 1),
        "failed token attempts per client / 5 min",
    )
    mock_steps: int = _setting(
        "MYSPINBOT_MOCK_STEPS", 20, _number(int, 1, 100_000), "steps of the mock pipelines"
    )
    mock_step_seconds: float = _setting(
        "MYSPINBOT_MOCK_STEP_SECONDS", 0.25, _number(float, 0, 3600), "seconds per mock step"
    )
    mock_faults: bool = _setting(
        "MYSPINBOT_MOCK_FAULTS",
        False,
        _parse_bool,
        "let #fault: markers in inputs break jobs (tests)",
    )
    max_images: int = _setting(
        "MYSPINBOT_MAX_IMAGES", 50, _number(int, 1, 1000), "images per training upload"
    )
    max_image_bytes: int = _setting(
        "MYSPINBOT_MAX_IMAGE_BYTES", 20 * MiB, _number(int, 1024), "bytes per image"
    )
    max_image_pixels: int = _setting(
        "MYSPINBOT_MAX_IMAGE_PIXELS", 40_000_000, _number(int, 1), "pixels per image"
    )
    max_voice_bytes: int = _setting(
        "MYSPINBOT_MAX_VOICE_BYTES", 50 * MiB, _number(int, 1024), "bytes of the voice file"
    )
    max_request_bytes: int = _setting(
        "MYSPINBOT_MAX_REQUEST_BYTES", 256 * MiB, _number(int, 64 * 1024), "bytes per request"
    )
    linger_bytes: int = _setting(
        "MYSPINBOT_LINGER_BYTES",
        4096 * MiB,
        _number(int, 0),
        "bytes of a refused body read and dropped after the answer, so the client reads it",
    )
    disk_reserve_bytes: int = _setting(
        "MYSPINBOT_DISK_RESERVE_BYTES", 512 * MiB, _number(int, 0), "free disk kept in reserve"
    )
    queue_cap: int = _setting(
        "MYSPINBOT_QUEUE_CAP", 20_000, _number(int, 1), "queued jobs per queue before 503"
    )
    lease_seconds: float = _setting(
        "MYSPINBOT_LEASE_SECONDS", 30.0, _number(float, 0.5, 86_400), "lease of an active job"
    )
    max_attempts: int = _setting(
        "MYSPINBOT_MAX_ATTEMPTS", 3, _number(int, 1, 100), "attempts before a job fails"
    )
    retry_base_seconds: float = _setting(
        "MYSPINBOT_RETRY_BASE_SECONDS", 2.0, _number(float, 0, 3600), "first retry backoff"
    )
    maintenance_interval: float = _setting(
        "MYSPINBOT_MAINTENANCE_INTERVAL", 2.0, _number(float, 0.05, 3600), "reaper period (s)"
    )
    retention_days: float = _setting(
        "MYSPINBOT_RETENTION_DAYS", 30.0, _number(float, 0), "days finished jobs are kept (0: ever)"
    )
    retention_max_jobs: int = _setting(
        "MYSPINBOT_RETENTION_MAX_JOBS", 5000, _number(int, 0), "finished jobs kept (0: no cap)"
    )
    log_level: str = _setting(
        "MYSPINBOT_LOG_LEVEL", "info", _choice("debug", "info", "warning", "error"), "log level"
    )
    log_format: str = _setting(
        "MYSPINBOT_LOG_FORMAT", "text", _choice("text", "json"), "log line format"
    )
    access_log: bool = _setting(
        "MYSPINBOT_ACCESS_LOG", True, _parse_bool, "log one line per HTTP request"
    )
    comfyui_url: str | None = _setting(
        "MYSPINBOT_COMFYUI_URL", None, _parse_http_url, "ComfyUI to render and train with"
    )
    comfyui_token: str | None = _setting(
        "MYSPINBOT_COMFYUI_TOKEN", None, _optional_text, "bearer token for a proxy before ComfyUI"
    )
    comfyui_workflows: Path | None = _setting(
        "MYSPINBOT_COMFYUI_WORKFLOWS",
        None,
        _optional_path,
        "folder with generate.json and train.json (default: shipped)",
    )
    comfyui_timeout: float = _setting(
        "MYSPINBOT_COMFYUI_TIMEOUT", 30.0, _number(float, 1, 3600), "seconds per ComfyUI request"
    )
    comfyui_idle_seconds: float = _setting(
        "MYSPINBOT_COMFYUI_IDLE_SECONDS",
        20.0,
        _number(float, 1, 3600),
        "ComfyUI socket silence before asking /queue and /history",
    )
    comfyui_patience: float = _setting(
        "MYSPINBOT_COMFYUI_PATIENCE",
        180.0,
        _number(float, 0, 86_400),
        "seconds a job waits for an unreachable ComfyUI before a retry counts",
    )
    comfyui_max_download_bytes: int = _setting(
        "MYSPINBOT_COMFYUI_MAX_DOWNLOAD_BYTES",
        4096 * MiB,
        _number(int, 1024),
        "bytes per ComfyUI output file",
    )
    ollama_url: str | None = _setting(
        "MYSPINBOT_OLLAMA_URL", None, _parse_http_url, "Ollama that writes the shot"
    )
    ollama_model: str = _setting(
        "MYSPINBOT_OLLAMA_MODEL", "llama3.2", _text, "Ollama model that writes the shot"
    )
    ollama_timeout: float = _setting(
        "MYSPINBOT_OLLAMA_TIMEOUT", 300.0, _number(float, 1, 3600), "seconds Ollama may be silent"
    )
    ollama_keep_alive: str = _setting(
        "MYSPINBOT_OLLAMA_KEEP_ALIVE",
        "0",
        _keep_alive,
        "how long Ollama keeps the model loaded after a call (0: unload at once)",
    )
    ollama_think: bool = _setting(
        "MYSPINBOT_OLLAMA_THINK", False, _parse_bool, "let a thinking model think first"
    )
    voice_url: str | None = _setting(
        "MYSPINBOT_VOICE_URL", None, _parse_http_url, "speech server that speaks the line"
    )
    voice_token: str | None = _setting(
        "MYSPINBOT_VOICE_TOKEN", None, _optional_text, "bearer token for the speech server"
    )
    voice_timeout: float = _setting(
        "MYSPINBOT_VOICE_TIMEOUT", 120.0, _number(float, 1, 3600), "seconds per speech request"
    )
    clip_fps: float = _setting(
        "MYSPINBOT_CLIP_FPS", 16.0, _number(float, 1, 120), "frames per second of a clip"
    )
    clip_frames: int = _setting(
        "MYSPINBOT_CLIP_FRAMES", 81, _number(int, 1, 4096), "frames in a clip"
    )
    lip_sync: bool = _setting(
        "MYSPINBOT_LIP_SYNC",
        False,
        _parse_bool,
        "render with generate_talking.json (lips follow the spoken line)",
    )
    bench_routes: bool = _setting(
        "MYSPINBOT_BENCH_ROUTES", False, _parse_bool, "expose /bench/noop for make bench"
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from the environment; a bad value raises SettingsError."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):
            name = spec.metadata["env"]
            if name in environ:
                values[spec.name] = spec.metadata["parse"](name, environ[name])
        values.update(overrides)
        settings = cls(**values)
        return settings.resolved()

    def resolved(self) -> Settings:
        """The same settings with the data dir made absolute."""
        return dataclasses.replace(self, data_dir=Path(self.data_dir).expanduser().resolve())

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def max_prompt_chars(self) -> int:
        return MAX_PROMPT_CHARS

    @property
    def store_url(self) -> str:
        """REDIS_URL, or the socket of the embedded server that owns the data dir."""
        return self.redis_url or embedded_redis_url(self.data_dir)

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"


def embedded_socket_path(data_dir: Path) -> Path:
    """The embedded server's socket: under the data dir, or a short path when that is too long."""
    base = Path(data_dir).expanduser().resolve()
    preferred = base / "redis" / "redis.sock"
    if len(os.fsencode(preferred)) < _MAX_SOCKET_PATH:
        return preferred
    digest = hashlib.sha256(os.fsencode(base)).hexdigest()[:12]
    return Path("/tmp") / f"myspinbot-{digest}" / "redis.sock"


def embedded_redis_url(data_dir: Path) -> str:
    """The URL clients on this host use to reach the embedded server of `data_dir`."""
    return f"unix://{quote(str(embedded_socket_path(data_dir)))}"


def documented_variables() -> dict[str, str]:
    """Each environment variable with its one-line meaning (docs/configuration.md has them all)."""
    return {spec.metadata["env"]: spec.metadata["doc"] for spec in dataclasses.fields(Settings)}
