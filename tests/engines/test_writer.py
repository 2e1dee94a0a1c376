"""Ollama writes the shot and the spoken line as checked JSON (the Ollama stand-in)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from standins import ollama_standin

from myspinbot.engines.errors import EngineAnswerInvalid
from myspinbot.engines.ollama import Ollama, OllamaServer
from myspinbot.engines.writer import SHOT_SCHEMA, line_words, write_shot

SHOT = "A woman waves at the camera on a sunny beach, slow dolly in."
LINE = "Hi everyone, welcome to my beach day"


def test_the_shot_and_line_come_back_checked_and_every_call_gives_the_gpu_back(
    tmp_path: Path,
) -> None:
    reply = json.dumps({"shot": SHOT, "line": LINE})
    with ollama_standin(tmp_path, models=["qwen3"], thinking=("qwen3",), reply=reply) as server:
        with Ollama(OllamaServer(server.url, "qwen3")) as ollama:
            written = write_shot(ollama, "Write a shot.", "me at the beach", line_words(81 / 16))
        state = server.state()
    assert (written.shot, written.line) == (SHOT, LINE)
    assert [(c["keep_alive"], c["think"], c["format"]) for c in state["calls"]] == [
        (0, False, SHOT_SCHEMA)
    ]
    assert state["loaded"] == []  # keep_alive 0: unloaded once it answered


def test_a_line_too_long_for_the_clip_is_asked_for_once_more_then_fails(tmp_path: Path) -> None:
    # A plain-text reply: the stand-in fills both schema strings with it (14 words).
    reply = "A very long sentence that goes on and on well past what the clip can hold"
    with ollama_standin(tmp_path, reply=reply) as server:
        with (
            Ollama(OllamaServer(server.url, "llama3.2")) as ollama,
            pytest.raises(EngineAnswerInvalid, match="the clip holds 12"),
        ):
            write_shot(ollama, "Write a shot.", "an idea", line_words(81 / 16))
        assert len(server.state()["calls"]) == 2


def test_keep_alive_and_think_follow_the_settings(tmp_path: Path) -> None:
    reply = json.dumps({"shot": SHOT, "line": ""})
    with ollama_standin(tmp_path, models=["qwen3"], thinking=("qwen3",), reply=reply) as server:
        server_config = OllamaServer(server.url, "qwen3", keep_alive="5m", think=True)
        with Ollama(server_config) as ollama:
            written = write_shot(ollama, "Write a shot.", "an idea", 12)
        call = server.state()["calls"][0]
    assert written.line is None  # "" means nobody speaks
    assert (call["keep_alive"], call["think"]) == ("5m", True)
