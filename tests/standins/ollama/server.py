"""Ollama's routes: discovery, `/api/chat` and `/api/generate`, gin's error answers.

Follows Ollama @ fb307609 `server/routes.go` and `api/types.go`; see the package docstring.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import re
import time

from aiohttp import web

from .decoding import (
    CHAT_FIELDS,
    GENERATE_FIELDS,
    RequestError,
    chunks,
    decode,
    format_kind,
    reply_text,
)

DEFAULT_REPLY = "A slow tracking shot follows a red fox across a snowy field at dawn."
QUEUE_FULL = "server busy, please try again.  maximum pending requests exceeded"


def canonical(name: str) -> str:
    name = name.strip().lower()
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def go_time(moment: datetime.datetime) -> str:
    """RFC 3339 with nanosecond precision and trailing zeros trimmed, as Go marshals time."""
    text = moment.isoformat(timespec="microseconds")
    head, dot, rest = text.partition(".")
    fraction, zone = rest[:6], rest[6:]
    fraction = fraction.rstrip("0")
    zone = "Z" if zone == "+00:00" else zone
    return f"{head}{dot if fraction else ''}{fraction}{zone}"


def model_entry(name: str) -> dict:
    digest = hashlib.sha256(name.encode()).hexdigest()
    family = name.split(":")[0].split("/")[-1].rstrip("0123456789.") or "llama"
    details = {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": "3.2B",
        "quantization_level": "Q4_K_M",
    }
    return {"name": name, "model": name, "size": 2019393189, "digest": digest, "details": details}


class Ollama:
    def __init__(
        self,
        models: list[str],
        delay: float,
        reply: str,
        version: str,
        thinking: tuple[str, ...] = (),
    ) -> None:
        self.models = {canonical(m): model_entry(canonical(m)) for m in models}
        self.thinking = {canonical(m) for m in thinking}  # models with the thinking capability
        self.calls: list[dict] = []  # what each chat/generate asked: keep_alive, think, format
        self.modified = go_time(datetime.datetime.now().astimezone())
        self.delay, self.reply, self.version = delay, reply, version
        self.loaded: dict[str, datetime.datetime] = {}
        self.http_faults: list[dict] = []
        self.cli_faults: list[dict] = []  # --http-fault: left alone by `clear`
        self.stream_faults: list[dict] = []
        self.release = asyncio.Event()
        self.stalled = 0  # answers waiting for `release`

    async def stall(self) -> None:
        self.stalled += 1
        try:
            await self.release.wait()
        finally:
            self.stalled -= 1

    def take(self, faults: list[dict], match=lambda f: True) -> dict | None:
        for fault in faults:
            if match(fault):
                fault["count"] -= 1
                if fault["count"] <= 0:
                    faults.remove(fault)
                return fault
        return None


def json_response(data, status: int = 200) -> web.Response:
    """gin's c.JSON: compact JSON, `application/json; charset=utf-8`."""
    return web.json_response(
        data, status=status, dumps=lambda d: json.dumps(d, separators=(",", ":"))
    )


def error_response(status: int, message: str) -> web.Response:
    return json_response({"error": message}, status)


@web.middleware
async def gin_like(request: web.Request, handler):
    ollama: Ollama = request.app["ollama"]
    if not request.path.startswith("/_standin/"):
        hit = lambda f: f["path"] == request.path  # noqa: E731
        fault = ollama.take(ollama.cli_faults, hit) or ollama.take(ollama.http_faults, hit)
        if fault is not None:
            default = QUEUE_FULL if fault["status"] == 503 else "the stand-in was told to fail"
            return error_response(fault["status"], fault.get("message") or default)
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return web.Response(status=404, text="404 page not found")
    except web.HTTPMethodNotAllowed:
        return web.Response(status=405, text="405 method not allowed")


async def root(request: web.Request) -> web.Response:
    return web.Response(text="Ollama is running", content_type="text/plain", charset="utf-8")


async def version(request: web.Request) -> web.Response:
    return json_response({"version": request.app["ollama"].version})


async def tags(request: web.Request) -> web.Response:
    ollama: Ollama = request.app["ollama"]
    models = [{**m, "modified_at": ollama.modified} for m in ollama.models.values()]
    return json_response({"models": models})


async def ps(request: web.Request) -> web.Response:
    ollama: Ollama = request.app["ollama"]
    now = datetime.datetime.now().astimezone()
    running = []
    for name, expires in sorted(ollama.loaded.items(), key=lambda kv: kv[1], reverse=True):
        if expires > now:
            entry = {**ollama.models[name], "expires_at": go_time(expires)}
            running.append({**entry, "size_vram": entry["size"], "context_length": 4096})
    return json_response({"models": running})


def _resolve(ollama: Ollama, request: dict, chat: bool) -> str:
    raw = request.get("model") or ""
    if not raw.strip():
        raise (
            RequestError(400, "model is required")
            if chat
            else RequestError(404, "model '' not found")
        )
    if not all(c.isalnum() or c in "._-:/" for c in raw.strip()):
        raise RequestError(400, "invalid model name")
    name = canonical(raw)
    if name not in ollama.models:
        raise RequestError(404, f"model '{raw}' not found")
    top = request.get("top_logprobs") or 0
    if top < 0 or top > 20:
        raise RequestError(400, "top_logprobs must be between 0 and 20")
    return name


async def chat(request: web.Request) -> web.StreamResponse:
    return await _complete(request, chat=True)


async def generate(request: web.Request) -> web.StreamResponse:
    return await _complete(request, chat=False)


async def _complete(request: web.Request, chat: bool) -> web.StreamResponse:
    ollama: Ollama = request.app["ollama"]
    started = time.monotonic_ns()
    try:
        body = decode(
            await request.read(),
            "ChatRequest" if chat else "GenerateRequest",
            CHAT_FIELDS if chat else GENERATE_FIELDS,
        )
        name = _resolve(ollama, body, chat)
    except RequestError as error:
        return error_response(error.status, str(error))
    keep_alive = body.get("keep_alive")
    ollama.calls.append(_call(request.path, name, body))
    try:
        thinks = _thinks(ollama, name, body)
    except RequestError as error:
        return error_response(error.status, str(error))
    empty = not body.get("messages") if chat else not body.get("prompt")
    if empty:
        reason = "unload" if keep_alive in (0, "0", "0s") else "load"
        _touch(ollama, name, keep_alive if reason == "load" else 0)
        return json_response(_piece(body, chat, "", done=True) | {"done_reason": reason})
    try:
        kind, schema = format_kind(body)
    except RequestError as error:
        return error_response(error.status, str(error))
    _touch(ollama, name, keep_alive)
    prompt_text = json.dumps(body.get("messages")) if chat else body.get("prompt", "")
    pieces = chunks(reply_text(ollama.reply, kind, schema))
    thoughts = chunks(THOUGHTS) if thinks else []
    fault = ollama.take(ollama.stream_faults)
    stream = body.get("stream", True) is not False
    if not stream:
        return await _single(ollama, body, chat, pieces, fault, started, prompt_text)
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    for thought in thoughts:  # thoughts stream first, in message.thinking, content empty
        if not response.prepared:
            await response.prepare(request)
        await asyncio.sleep(ollama.delay)
        await response.write(_line(_piece(body, chat, "", thinking=thought)))
    if not response.prepared:
        response = None
    trigger = min(int(fault.get("after", 1)), len(pieces)) if fault else -1
    for index in range(len(pieces) + 1):
        if index == trigger and await _fault_action(ollama, fault, response):
            return response if response is not None else error_response(500, fault["message"])
        if index < len(pieces):
            await asyncio.sleep(ollama.delay)
            line = _piece(body, chat, pieces[index])
        else:
            metrics = _metrics(started, prompt_text, len(pieces), chat)
            line = _piece(body, chat, "", done=True) | metrics
        if response is None:
            response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
            await response.prepare(request)
        await response.write(_line(line))
    await response.write_eof()
    return response


async def _fault_action(ollama: Ollama, fault: dict, response) -> bool:
    """Apply a stream fault; True when the answer ends here."""
    if fault["kind"] == "stall":
        await ollama.stall()
        return False
    if response is not None:
        await response.write(_line({"error": fault["message"]}))
        await response.write_eof()
    return True


async def _single(ollama, body, chat, pieces, fault, started, prompt_text) -> web.Response:
    if fault is not None:
        if fault["kind"] == "stall":
            await ollama.stall()
        else:
            return error_response(500, fault["message"])
    await asyncio.sleep(ollama.delay * len(pieces))
    final = _piece(body, chat, "".join(pieces), done=True)
    return json_response(final | _metrics(started, prompt_text, len(pieces), chat))


THOUGHTS = "Okay, the user wants a shot. Let me think about the framing and the light first."
GO_DURATION = re.compile(r"-?(\d+(\.\d*)?(ns|us|µs|ms|s|m|h))+|-?0")


def _call(path: str, model: str, body: dict) -> dict:
    """What a test asserts about a call: each field as sent, "absent" when it was not."""
    return {
        "path": path,
        "model": model,
        "keep_alive": body.get("keep_alive", "absent"),
        "think": body.get("think", "absent"),
        "format": body.get("format", "absent"),
    }


def _thinks(ollama: Ollama, name: str, body: dict) -> bool:
    """Whether the answer starts with thoughts (server/routes.go, api/types.go).

    `keep_alive` is api.Duration: a number is seconds, a string goes through Go's
    time.ParseDuration ("300" has no unit: 400). `think` is true/false or a level; a model
    without the thinking capability refuses a true `think` with 400; a thinking model
    thinks unless told `think: false`.
    """
    keep_alive = body.get("keep_alive")
    if isinstance(keep_alive, str) and not GO_DURATION.fullmatch(keep_alive):
        raise RequestError(400, f'time: missing unit in duration "{keep_alive}"')
    think = body.get("think")
    if think is not None and not isinstance(think, bool) and think not in ("low", "medium", "high"):
        raise RequestError(400, f"invalid think value: {json.dumps(think)}")
    wants = think is not False and think is not None
    if wants and name not in ollama.thinking:
        raise RequestError(400, f'"{body.get("model")}" does not support thinking')
    return name in ollama.thinking and think is not False


def _touch(ollama: Ollama, name: str, keep_alive) -> None:
    if keep_alive in (0, "0", "0s"):
        ollama.loaded.pop(name, None)
        return
    ollama.loaded[name] = datetime.datetime.now().astimezone() + datetime.timedelta(minutes=5)


def _piece(body: dict, chat: bool, text: str, done: bool = False, thinking: str = "") -> dict:
    out = {
        "model": body.get("model", ""),
        "created_at": go_time(datetime.datetime.now(datetime.UTC)),
    }
    if chat:
        out["message"] = {"role": "assistant", "content": text}
        if thinking:
            out["message"]["thinking"] = thinking
    else:
        out["response"] = text
        if thinking:
            out["thinking"] = thinking
    out["done"] = done
    return out


def _metrics(started: int, prompt_text: str, count: int, chat: bool) -> dict:
    total = max(1, time.monotonic_ns() - started)
    metrics = {
        "done_reason": "stop",
        "total_duration": total,
        "load_duration": max(1, total // 10),
        "prompt_eval_count": max(1, len(prompt_text.split())),
        "prompt_eval_duration": max(1, total // 10),
        "eval_count": count,
        "eval_duration": max(1, total - 2 * (total // 10)),
    }
    if not chat:
        metrics["context"] = list(range(1, count + 2))
    return metrics


def _line(data: dict) -> bytes:
    return (json.dumps(data, separators=(",", ":")) + "\n").encode()
