"""Decoding Ollama request bodies the way Go's `encoding/json` (through gin) reports errors,
and writing replies that honour `format`.

Follows Ollama @ fb307609 (ollama/ollama, 2026-08-21): `server/routes.go` (`ShouldBindJSON`:
an empty body is "missing request body", anything else undecodable is the decoder's own
message), `api/types.go` (`ChatRequest`, `GenerateRequest`, `Message` field types), and
`llm/llama_server.go` (`format`: absent, null or "" is no format, "json" is any JSON, an object
is a JSON Schema, anything else is `invalid format: %q; expected "json" or a valid JSON Schema
object`).
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema

# JSON type names as Go's decoder words them, and the Go types of the fields we check.
JSON_KIND = {
    str: "string",
    bool: "bool",
    int: "number",
    float: "number",
    list: "array",
    dict: "object",
}
CHAT_FIELDS = {
    "model": (str, "string"),
    "messages": (list, "[]api.Message"),
    "stream": (bool, "bool"),
    "options": (dict, "map[string]interface {}"),
    "tools": (list, "api.Tools"),
    "top_logprobs": (int, "int"),
    "logprobs": (bool, "bool"),
}
GENERATE_FIELDS = {
    "model": (str, "string"),
    "prompt": (str, "string"),
    "suffix": (str, "string"),
    "system": (str, "string"),
    "template": (str, "string"),
    "context": (list, "[]int"),
    "stream": (bool, "bool"),
    "raw": (bool, "bool"),
    "images": (list, "[]api.ImageData"),
    "options": (dict, "map[string]interface {}"),
    "top_logprobs": (int, "int"),
    "logprobs": (bool, "bool"),
}
MESSAGE_FIELDS = {"role": str, "content": str, "thinking": str, "tool_name": str}


class RequestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _kind(value: Any) -> str:
    return "null" if value is None else JSON_KIND.get(type(value), "value")


def _syntax_error(text: str, error: json.JSONDecodeError) -> str:
    if error.pos >= len(text.rstrip()):
        return "unexpected EOF"
    char = text[error.pos]
    return f"invalid character {char!r} looking for beginning of value"


def decode(body: bytes, struct: str, fields: dict) -> dict[str, Any]:
    """The request as a dict, or RequestError(400, <gin's message>)."""
    text = body.decode("utf-8", errors="replace")
    if not text.strip():
        raise RequestError(400, "missing request body")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise RequestError(400, _syntax_error(text, error)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RequestError(
            400, f"json: cannot unmarshal {_kind(data)} into Go value of type api.{struct}"
        )
    for name, (expected, go_type) in fields.items():
        value = data.get(name)
        if value is None:
            continue
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        if expected is int and isinstance(value, float) and value.is_integer():
            ok = True
        if not ok:
            raise RequestError(
                400,
                f"json: cannot unmarshal {_kind(value)} into Go struct field "
                f"{struct}.{name} of type {go_type}",
            )
    for message in data.get("messages") or []:
        if not isinstance(message, dict):
            raise RequestError(
                400,
                f"json: cannot unmarshal {_kind(message)} into Go struct field "
                f"{struct}.messages of type api.Message",
            )
        for name, expected in MESSAGE_FIELDS.items():
            value = message.get(name)
            if value is not None and not isinstance(value, expected):
                raise RequestError(
                    400,
                    f"json: cannot unmarshal {_kind(value)} into Go struct field "
                    f"Message.messages.{name} of type string",
                )
    return data


def _go_quote(raw: str) -> str:
    return json.dumps(raw)


def format_kind(request: dict) -> tuple[str, Any]:
    """("none" | "json" | "schema", schema), or RequestError(500, llama_server's message)."""
    if "format" not in request:
        return "none", None
    value = request["format"]
    if value is None or value == "":
        return "none", None
    if value == "json":
        return "json", None
    if isinstance(value, dict):
        return "schema", value
    raw = json.dumps(value, separators=(",", ":"))
    message = f'invalid format: {_go_quote(raw)}; expected "json" or a valid JSON Schema object'
    raise RequestError(500, message)


def reply_text(reply: str, kind: str, schema: Any) -> str:
    """The model's answer: `reply` itself, or JSON that satisfies the requested format."""
    if kind == "none":
        return reply
    try:
        parsed = json.loads(reply)
    except json.JSONDecodeError:
        parsed = None
    if kind == "json":
        return reply if isinstance(parsed, dict) else json.dumps({"response": reply})
    if parsed is not None and _valid(parsed, schema):
        return reply
    return json.dumps(instance(schema, schema, reply))


def _valid(value: Any, schema: dict) -> bool:
    try:
        jsonschema.validate(value, schema)
    except (jsonschema.ValidationError, jsonschema.SchemaError):
        return False
    return True


def instance(schema: Any, root: dict, text: str) -> Any:
    """A value satisfying the common JSON Schema shapes pydantic and hand-written schemas use."""
    if not isinstance(schema, dict):
        return None
    if "$ref" in schema:
        return instance(_follow(schema["$ref"], root), root, text)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return instance(schema[key][0], root, text)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: instance(sub, root, text) for name, sub in props.items()}
    if kind == "array":
        count = max(1, schema.get("minItems", 1))
        return [instance(schema.get("items", {}), root, text) for _ in range(count)]
    if kind in ("integer", "number"):
        return _number(schema, kind)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return text[: schema.get("maxLength", len(text))].ljust(schema.get("minLength", 0), "x")


def _follow(ref: str, root: dict) -> Any:
    target: Any = root
    for part in ref.lstrip("#/").split("/"):
        target = target.get(part, {}) if part else target
    return target


def _number(schema: dict, kind: str) -> int | float:
    low = schema.get("minimum")
    if low is None and "exclusiveMinimum" in schema:
        low = schema["exclusiveMinimum"] + 1
    value = 0 if low is None else low
    if "maximum" in schema:
        value = min(value, schema["maximum"])
    return int(value) if kind == "integer" else float(value)


def chunks(text: str) -> list[str]:
    """Stream pieces: a word with its trailing space, as a tokenizer roughly would."""
    return re.findall(r"\s*\S+\s*", text) or [text]
