"""One rule for text fields: too long is a 422 that names the field and its limit.

Nothing is silently cut: a value over its limit is refused, whichever route it came in by.
"""

from __future__ import annotations

from ..config import MAX_PROMPT_CHARS
from ..errors import InvalidField

MAX_NAME_CHARS = 100  # a training job's name
MAX_SAY_CHARS = 300  # a spoken line fits a few seconds of clip; this is a generous cap

# Characters allowed per request text field (JSON or form), by field name.
TEXT_LIMITS: dict[str, int] = {
    "prompt": MAX_PROMPT_CHARS,
    "name": MAX_NAME_CHARS,
    "say": MAX_SAY_CHARS,
}


def too_long(field: str, limit: int, unit: str = "characters") -> InvalidField:
    return InvalidField(f"{field} is too long: at most {limit} {unit}", field=field)


def check_length(field: str, value: str, limit: int | None = None) -> str:
    """`value` unchanged, or a 422 when it has more characters than the field allows."""
    allowed = TEXT_LIMITS[field] if limit is None else limit
    if len(value) > allowed:
        raise too_long(field, allowed)
    return value
