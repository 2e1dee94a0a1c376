"""Ollama writes the shot: POST /api/chat streamed as NDJSON, one callback per chunk.

Every call sends `keep_alive` (default 0: the model leaves the GPU as soon as it has
answered, for ComfyUI to use) and `think` (default false: a thinking model would otherwise
stream hidden thoughts first, which looks like a stall). `format` (a JSON Schema) asks for
structured output; the caller parses and checks the text it gets (engines/writer.py).

A line `{"error": ...}` can arrive mid-stream with HTTP 200 still standing; it fails the
call like an HTTP error does. 404 means the model is not pulled (permanent, with the
command that fixes it); no connection, a timeout or a 5xx is transient.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from .errors import (
    EngineAnswerInvalid,
    EngineError,
    EngineUnreachable,
    ModelNotPulled,
    PermanentEngineError,
    TransientEngineError,
)
from .redact import safe_url, scrub, url_secrets


@dataclass(frozen=True)
class OllamaServer:
    url: str
    model: str
    timeout: float = 300.0  # seconds of silence allowed while the model loads or writes
    max_chars: int = 4000  # a written prompt longer than this is cut
    keep_alive: str = "0"  # seconds (a number) or a Go duration such as "5m"
    think: bool = False

    @property
    def shown(self) -> str:
        return safe_url(self.url)


class Ollama:
    """A synchronous client of one Ollama server and model."""

    def __init__(self, server: OllamaServer, transport: httpx.BaseTransport | None = None):
        self.server = server
        self.secrets = url_secrets(server.url)
        self.http = httpx.Client(
            base_url=server.url.rstrip("/"),
            timeout=httpx.Timeout(server.timeout, connect=10.0),
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Ollama:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def unreachable(self, exc: Exception) -> EngineUnreachable:
        said = scrub(str(exc), self.secrets) or type(exc).__name__
        return EngineUnreachable(f"Ollama at {self.server.shown} is unreachable ({said})")

    def version(self) -> str:
        try:
            response = self.http.get("/api/version")
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from None
        if response.status_code >= 500:
            raise EngineUnreachable(f"Ollama answered HTTP {response.status_code}")
        try:
            return str(response.json()["version"])
        except (ValueError, KeyError, TypeError):
            raise EngineAnswerInvalid(f"{self.server.shown} is not an Ollama server") from None

    def write(
        self,
        system: str,
        prompt: str,
        on_chunk: Callable[[str], None] | None = None,
        schema: dict[str, Any] | None = None,
    ) -> str:
        """The model's answer to `prompt` under the `system` prompt, stripped; chunks streamed.

        With `schema`, Ollama constrains the answer to JSON of that schema (its `format`).
        """
        body: dict[str, Any] = {
            "model": self.server.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": prompt},
            ],
            "stream": True,
            "keep_alive": keep_alive_value(self.server.keep_alive),
            "think": self.server.think,
        }
        if schema is not None:
            body["format"] = schema
        parts: list[str] = []
        try:
            with self.http.stream("POST", "/api/chat", json=body) as response:
                if response.status_code != 200:
                    response.read()
                    raise self.http_error(response)
                for line in response.iter_lines():
                    if line.strip() and self.take(line, parts, on_chunk):
                        break
                else:
                    raise EngineUnreachable("Ollama's answer ended before it said it was done")
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from None
        text = "".join(parts).strip()
        if not text:
            raise PermanentEngineError(f"Ollama's model {self.server.model} wrote nothing")
        return text if schema is not None else text[: self.server.max_chars]

    def take(self, line: str, parts: list[str], on_chunk: Callable[[str], None] | None) -> bool:
        """Add one NDJSON line to `parts`; True when it is the last one."""
        try:
            chunk: Any = json.loads(line)
        except ValueError:
            raise EngineAnswerInvalid(
                f"Ollama sent a line that is not JSON: {line[:80]!r}"
            ) from None
        if not isinstance(chunk, dict):
            raise EngineAnswerInvalid("Ollama sent a line that is not a JSON object")
        if "error" in chunk:
            # A runner that crashed or ran out of memory mid-answer: worth another try.
            raise TransientEngineError(f"Ollama failed while writing: {chunk['error']}")
        content = (chunk.get("message") or {}).get("content") or ""
        if content:
            parts.append(content)
            if on_chunk is not None:
                on_chunk(content)
        return bool(chunk.get("done"))

    def http_error(self, response: httpx.Response) -> EngineError:
        try:
            said = str(response.json().get("error") or "")
        except (ValueError, AttributeError):
            said = response.text[:200]
        said = scrub(said, self.secrets)
        if response.status_code == 404:
            model = self.server.model
            return ModelNotPulled(
                f"Ollama at {self.server.shown} has no model {model!r} ({said}): "
                f"run `ollama pull {model}` on that machine"
            )
        if response.status_code >= 500 or response.status_code == 429:
            return EngineUnreachable(f"Ollama answered HTTP {response.status_code}: {said}")
        return PermanentEngineError(
            f"Ollama refused the request (HTTP {response.status_code}: {said})"
        )


def keep_alive_value(setting: str) -> int | float | str:
    """Ollama's `keep_alive` as JSON: a number is seconds, a string a Go duration ("5m").

    Ollama parses a string with Go's time.ParseDuration, which refuses "300" (no unit), so
    plain numbers go out as numbers.
    """
    try:
        number = float(setting)
    except ValueError:
        return setting
    return int(number) if number.is_integer() else number
