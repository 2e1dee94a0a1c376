"""ComfyUI's HTTP routes, one method each: health, queue, node info, uploads, prompts, files.

Every failure becomes an engine error: no connection, a timeout or a 5xx is transient; a
refused workflow is WorkflowRejected with ComfyUI's own words per node. The URL may carry
credentials for a reverse proxy (user:pass@ or ?token=); they and the bearer token are
sent, never shown.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

import httpx

from .comfyui_outputs import OutputFile
from .errors import (
    EngineAnswerInvalid,
    EngineError,
    EngineUnreachable,
    OutputTooLarge,
    PermanentEngineError,
    WorkflowRejected,
)
from .redact import safe_url, scrub, url_secrets
from .workflows import node_ref

GiB = 1024**3
BODY_EXCERPT = 300


@dataclass(frozen=True)
class ComfyUIServer:
    """Where a ComfyUI is and how to talk to it."""

    url: str
    token: str | None = None  # sent as Authorization: Bearer (HTTP and the /ws handshake)
    timeout: float = 30.0  # seconds per HTTP request (connect, read)
    max_download_bytes: int = 4 * GiB  # per output file
    idle_seconds: float = 20.0  # socket silence after which /queue and /history are asked
    reconnect_seconds: float = 60.0  # how long a lost server is waited for mid-prompt

    @property
    def shown(self) -> str:
        """The URL as a log line or message may show it."""
        return safe_url(self.url)

    @property
    def secrets(self) -> list[str]:
        return [*url_secrets(self.url), *([self.token] if self.token else [])]


@dataclass(frozen=True)
class QueueState:
    running: list[str]  # prompt ids being executed now
    pending: list[str]  # prompt ids waiting, in the order they will run

    def ahead_of(self, prompt_id: str) -> int | None:
        """How many prompts run before `prompt_id`; None when it is not waiting."""
        if prompt_id not in self.pending:
            return None
        return len(self.running) + self.pending.index(prompt_id)

    def __len__(self) -> int:
        return len(self.running) + len(self.pending)


def split_url(url: str) -> tuple[str, dict[str, str], tuple[str, str] | None]:
    """(base URL without user info or query, query parameters, basic-auth pair or None)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL, got {safe_url(url)!r}")
    host = parts.netloc.rsplit("@", 1)[-1]
    base = urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    auth = (parts.username or "", parts.password or "") if parts.username else None
    return base, params, auth


class ComfyUIHTTP:
    """A synchronous client of one ComfyUI server's HTTP API."""

    def __init__(self, server: ComfyUIServer, transport: httpx.BaseTransport | None = None):
        self.server = server
        self.base, self.params, basic = split_url(server.url)
        headers = {"Authorization": f"Bearer {server.token}"} if server.token else {}
        self.http = httpx.Client(
            base_url=self.base,
            params=self.params,
            headers=headers,
            auth=None if server.token else basic,
            timeout=httpx.Timeout(server.timeout),
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ComfyUIHTTP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------

    def clean(self, text: str) -> str:
        return scrub(text, self.server.secrets)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; transport failures and 5xx raise EngineUnreachable."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise EngineUnreachable(
                f"ComfyUI at {self.server.shown} did not answer {method} {path} within "
                f"{self.server.timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise EngineUnreachable(
                f"ComfyUI at {self.server.shown} is unreachable ({type(exc).__name__}: "
                f"{self.clean(str(exc)) or 'no answer'})"
            ) from None
        self.check_status(response, method, path)
        return response

    def check_status(self, response: httpx.Response, method: str, path: str) -> None:
        status = response.status_code
        if status >= 500:
            raise EngineUnreachable(
                f"ComfyUI at {self.server.shown} answered {method} {path} with HTTP {status}: "
                f"{self.excerpt(response)}"
            )
        if status in (401, 403, 407):
            raise PermanentEngineError(
                f"ComfyUI at {self.server.shown} refused {method} {path} with HTTP {status}: "
                "check the ComfyUI token and the credentials in the ComfyUI URL",
            )

    def excerpt(self, response: httpx.Response) -> str:
        try:
            text = response.text
        except (httpx.ResponseNotRead, UnicodeDecodeError):
            return "(no readable body)"
        text = " ".join(text.split())
        return self.clean(text[:BODY_EXCERPT]) or "(empty body)"

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise EngineAnswerInvalid(
                f"ComfyUI at {self.server.shown} answered {method} {path} with HTTP "
                f"{response.status_code}: {self.excerpt(response)}"
            )
        try:
            return response.json()
        except ValueError:
            raise EngineAnswerInvalid(
                f"{self.server.shown} answered {method} {path} with something that is not "
                f"JSON ({self.excerpt(response)}): is it a ComfyUI server?"
            ) from None

    # -- health and discovery ------------------------------------------------------------

    def system_stats(self) -> dict[str, Any]:
        stats = self.json("GET", "/system_stats")
        if not isinstance(stats, Mapping) or not isinstance(stats.get("system"), Mapping):
            raise EngineAnswerInvalid(f"{self.server.shown} is not a ComfyUI server")
        return dict(stats)

    def version(self) -> str:
        return str(self.system_stats()["system"].get("comfyui_version", "unknown"))

    def queue(self) -> QueueState:
        body = self.json("GET", "/queue")
        running = [str(item[1]) for item in body.get("queue_running", [])]
        pending = sorted(body.get("queue_pending", []), key=lambda item: item[0])
        return QueueState(running=running, pending=[str(item[1]) for item in pending])

    def object_info(self, class_type: str) -> dict[str, Any] | None:
        """The node's /object_info entry, or None when the server has no such node."""
        body = self.json("GET", f"/object_info/{quote(class_type, safe='')}")
        entry = body.get(class_type) if isinstance(body, Mapping) else None
        return dict(entry) if isinstance(entry, Mapping) else None

    def object_info_for(self, class_types: Iterable[str]) -> dict[str, dict[str, Any] | None]:
        return {name: self.object_info(name) for name in sorted(set(class_types))}

    def models(self, folder: str) -> list[str] | None:
        """The files ComfyUI lists in a model folder (loras, vae ...); None: no such folder."""
        response = self.request("GET", f"/models/{folder}")
        if response.status_code == 404:
            return None
        return [str(name) for name in response.json()]

    # -- inputs and prompts --------------------------------------------------------------

    def upload(
        self, path: Path, subfolder: str, filename: str | None = None, folder: str = "input"
    ) -> str:
        """Put a file into ComfyUI's <folder>/<subfolder>/ (folder: input, output or temp, as
        server.py's upload handler takes `type`); returns its name relative to that folder."""
        name = filename or path.name
        with path.open("rb") as handle:
            response = self.request(
                "POST",
                "/upload/image",
                files={"image": (name, handle, "application/octet-stream")},
                data={"type": folder, "subfolder": subfolder, "overwrite": "true"},
            )
        if response.status_code != 200:
            raise EngineAnswerInvalid(
                f"ComfyUI refused the upload of {name} (HTTP {response.status_code}: "
                f"{self.excerpt(response)})"
            )
        stored = str(response.json()["name"])
        return f"{subfolder}/{stored}" if subfolder else stored

    def submit(self, graph: Mapping[str, Any], prompt_id: str, client_id: str) -> dict[str, Any]:
        """POST /prompt with our own prompt_id; a refusal raises WorkflowRejected."""
        body = {"prompt": graph, "prompt_id": prompt_id, "client_id": client_id}
        response = self.request("POST", "/prompt", json=body)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code == 200 and isinstance(answer, Mapping):
            if answer.get("node_errors"):
                raise rejection(graph, answer, accepted=True)
            return dict(answer)
        if isinstance(answer, Mapping) and response.status_code in (400, 409):
            raise rejection(graph, answer, accepted=False)
        if response.status_code == 413:
            raise PermanentEngineError(
                "ComfyUI refused the workflow as too large (HTTP 413; see its --max-upload-size)"
            )
        raise EngineAnswerInvalid(
            f"ComfyUI answered POST /prompt with HTTP {response.status_code}: "
            f"{self.excerpt(response)}"
        )

    def history(self, prompt_id: str) -> dict[str, Any] | None:
        """The finished prompt's history entry; None while it is queued, running or unknown."""
        body = self.json("GET", f"/history/{prompt_id}")
        entry = body.get(prompt_id) if isinstance(body, Mapping) else None
        return dict(entry) if isinstance(entry, Mapping) else None

    def cancel(self, prompt_id: str) -> None:
        """Take exactly this prompt out of the queue, or interrupt it if it is the one running."""
        self.request("POST", "/queue", json={"delete": [prompt_id]})
        # With a prompt_id ComfyUI interrupts only when that prompt is the running one.
        self.request("POST", "/interrupt", json={"prompt_id": prompt_id})

    # -- outputs -------------------------------------------------------------------------

    def download(self, output: OutputFile, destination: Path, max_bytes: int | None = None) -> int:
        """Stream one output file through /view into `destination` (a name we chose)."""
        limit = self.server.max_download_bytes if max_bytes is None else max_bytes
        params = {**self.params, "filename": output.filename, "type": output.type}
        if output.subfolder:
            params["subfolder"] = output.subfolder
        partial = destination.with_name(f".{destination.name}.{uuid.uuid4().hex}.part")
        try:
            written = self._stream(output, params, partial, limit)
            os.replace(partial, destination)
            return written
        finally:
            partial.unlink(missing_ok=True)

    def _stream(self, output: OutputFile, params: dict[str, str], to: Path, limit: int) -> int:
        shown = f"{output.subfolder + '/' if output.subfolder else ''}{output.filename}"
        try:
            with self.http.stream("GET", "/view", params=params) as response:
                self.check_status(response, "GET", "/view")
                if response.status_code == 404:
                    raise FileNotFoundError(shown)
                if response.status_code != 200:
                    raise EngineAnswerInvalid(
                        f"ComfyUI would not serve {shown} (HTTP {response.status_code})"
                    )
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise too_large(shown, limit)
                written = 0
                with to.open("wb") as sink:
                    for chunk in response.iter_bytes(1024 * 1024):
                        written += len(chunk)
                        if written > limit:
                            raise too_large(shown, limit)
                        sink.write(chunk)
                return written
        except httpx.TimeoutException:
            raise EngineUnreachable(f"ComfyUI stopped sending {shown} (timed out)") from None
        except httpx.HTTPError as exc:
            raise EngineUnreachable(
                f"ComfyUI at {self.server.shown} broke off sending {shown} ({type(exc).__name__})"
            ) from None


def too_large(shown: str, limit: int) -> OutputTooLarge:
    return OutputTooLarge(f"ComfyUI's output {shown} is larger than the {limit} byte limit")


def rejection(graph: Mapping[str, Any], answer: Mapping[str, Any], accepted: bool) -> EngineError:
    """WorkflowRejected naming each refused node with ComfyUI's own words."""
    parts: list[str] = []
    error = answer.get("error")
    node_errors = answer.get("node_errors") or {}
    if isinstance(error, Mapping) and not node_errors:
        words = " ".join(str(error.get(k) or "") for k in ("message", "details")).strip()
        parts.append(words or str(error.get("type", "refused")))
    elif isinstance(error, str):
        parts.append(error)
    if isinstance(node_errors, Mapping):
        for node_id, found in node_errors.items():
            ref = node_ref(graph, str(node_id))
            errors = found.get("errors", []) if isinstance(found, Mapping) else []
            said = "; ".join(
                f"{e.get('message', '')}: {e.get('details', '')}".strip(": ")
                for e in errors
                if isinstance(e, Mapping)
            )
            parts.append(f"{ref}: {said or 'refused'}")
    lead = "ComfyUI skipped part of the workflow" if accepted else "ComfyUI rejected the workflow"
    return WorkflowRejected(
        f"{lead}: " + " | ".join(parts),
        details={"error": error, "node_errors": dict(node_errors)},
    )
