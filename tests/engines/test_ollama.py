"""The Ollama client against a small NDJSON server run as a process (ndjson_ollama.py)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import wait_until

from myspinbot.engines.errors import EngineUnreachable, ModelNotPulled, TransientEngineError
from myspinbot.engines.ollama import Ollama, OllamaServer

from .comfyui_rig import free_port


@pytest.fixture(scope="module")
def ollama_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port_file = tmp_path_factory.mktemp("ollama") / "port"
    script = Path(__file__).with_name("ndjson_ollama.py")
    process = subprocess.Popen([sys.executable, str(script), str(port_file)])
    try:
        port = wait_until(lambda: port_file.exists() and port_file.read_text(), message="ollama")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def test_write_streams_each_chunk_and_returns_the_whole_text(ollama_url: str) -> None:
    chunks: list[str] = []
    with Ollama(OllamaServer(ollama_url, "writer")) as ollama:
        assert ollama.version() == "0.12.3"
        text = ollama.write("You write shots.", "a fox", chunks.append)
    assert chunks == ["A fox ", "runs through ", "snow, tracking shot."]
    assert text == "A fox runs through snow, tracking shot."


def test_an_error_line_under_http_200_fails_the_write_as_transient(ollama_url: str) -> None:
    with (
        Ollama(OllamaServer(ollama_url, "broken")) as ollama,
        pytest.raises(TransientEngineError, match="while running the model"),
    ):
        ollama.write("s", "p")


def test_an_unknown_model_says_which_command_pulls_it(ollama_url: str) -> None:
    with Ollama(OllamaServer(ollama_url, "llama9")) as ollama, pytest.raises(ModelNotPulled) as e:
        ollama.write("s", "p")
    assert not e.value.transient and "ollama pull llama9" in str(e.value)


def test_no_server_is_transient_and_the_url_password_is_not_shown() -> None:
    url = f"http://me:hunter2@127.0.0.1:{free_port()}"
    with (
        Ollama(OllamaServer(url, "writer", timeout=2)) as ollama,
        pytest.raises(EngineUnreachable) as e,
    ):
        ollama.write("s", "p")
    assert e.value.transient and "hunter2" not in str(e.value) and "***@127.0.0.1" in str(e.value)
