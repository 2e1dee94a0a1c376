"""Ollama writes the shot and the line the person says, as JSON of a fixed schema.

The answer is parsed and checked (a non-empty shot; a line of at most `max_words` words);
an answer that fails is asked for once more, then the job fails for good. Only the checked
`shot` text ever reaches ComfyUI's prompt, never the raw answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from .errors import EngineAnswerInvalid
from .ollama import Ollama

WORDS_PER_SECOND = 2.4  # unhurried speech: 81 frames at 16 fps (5.06 s) hold 12 words
SHOT_SCHEMA = {
    "type": "object",
    "properties": {"shot": {"type": "string"}, "line": {"type": "string"}},
    "required": ["shot", "line"],
}
JSON_INSTRUCTIONS = (
    'Answer with a JSON object of two strings: "shot" is the shot as described above; '
    '"line" is one sentence the person in frame says to the camera, in the first person, '
    'at most {words} words, or "" when nobody in frame could speak.'
)


@dataclass(frozen=True)
class Written:
    shot: str
    line: str | None


def line_words(clip_seconds: float) -> int:
    """How many words fit in a clip of `clip_seconds`."""
    return max(1, int(clip_seconds * WORDS_PER_SECOND))


def parse(text: str, max_words: int, max_chars: int) -> Written:
    """The checked shot and line of one answer; EngineAnswerInvalid says what is wrong."""
    try:
        answer = json.loads(text)
    except ValueError:
        raise EngineAnswerInvalid(f"Ollama's answer is not JSON: {text[:80]!r}") from None
    if not isinstance(answer, dict):
        raise EngineAnswerInvalid("Ollama's answer is not a JSON object")
    shot, line = answer.get("shot"), answer.get("line", "")
    if not isinstance(shot, str) or not shot.strip():
        raise EngineAnswerInvalid("Ollama's answer has no shot")
    if not isinstance(line, str):
        raise EngineAnswerInvalid("Ollama's line is not text")
    line = " ".join(line.split())
    if len(line.split()) > max_words:
        raise EngineAnswerInvalid(
            f"Ollama's line has {len(line.split())} words; the clip holds {max_words}"
        )
    return Written(shot.strip()[:max_chars], line or None)


def write_shot(
    ollama: Ollama,
    system: str,
    idea: str,
    max_words: int,
    on_chunk: Callable[[str], None] | None = None,
) -> Written:
    """The shot and line for `idea`; a second try when the first answer does not pass."""
    instructions = f"{system}\n\n{JSON_INSTRUCTIONS.format(words=max_words)}"
    try:
        text = ollama.write(instructions, idea, on_chunk, schema=SHOT_SCHEMA)
        return parse(text, max_words, ollama.server.max_chars)
    except EngineAnswerInvalid:
        text = ollama.write(instructions, idea, on_chunk, schema=SHOT_SCHEMA)
        return parse(text, max_words, ollama.server.max_chars)
