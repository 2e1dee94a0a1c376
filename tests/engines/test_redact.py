"""Credentials in engine URLs never reach messages: user:pass@, ?token=, the bearer token."""

from __future__ import annotations

import pytest

from myspinbot.engines.comfyui import ComfyUI
from myspinbot.engines.comfyui_http import ComfyUIServer
from myspinbot.engines.errors import EngineUnreachable
from myspinbot.engines.redact import safe_url, scrub, url_secrets

from .comfyui_rig import free_port


def test_safe_url_hides_user_info_and_secret_query_values() -> None:
    url = "https://ann:s3cret@gpu.example:8443/comfy?token=abc123&mode=fast"
    assert safe_url(url) == "https://***@gpu.example:8443/comfy?token=***&mode=fast"
    assert set(url_secrets(url)) == {"ann", "s3cret", "abc123"}
    assert scrub("failed at abc123 for s3cret", url_secrets(url)) == "failed at *** for ***"


@pytest.mark.parametrize("way", ["health", "run"])
def test_an_unreachable_comfyui_is_transient_and_shows_no_credentials(way: str) -> None:
    url = f"http://ann:s3cret@127.0.0.1:{free_port()}/?token=abc123"
    server = ComfyUIServer(url, token="bearer-xyz", timeout=2)
    with ComfyUI(server) as engine:
        if way == "health":
            health = engine.health()
            assert not health.reachable
            message = health.error or ""
        else:
            with pytest.raises(EngineUnreachable) as caught:
                engine.run({"1": {"class_type": "X", "inputs": {}}}, engine.new_submission())
            assert caught.value.transient
            message = str(caught.value)
    assert "127.0.0.1" in message
    for secret in ("s3cret", "abc123", "bearer-xyz", "ann:"):
        assert secret not in message


def test_settings_configure_the_engines_and_refuse_a_bad_url_without_echoing_it() -> None:
    from myspinbot.config import Settings, SettingsError
    from myspinbot.engines.configured import comfyui_server, ollama_server, workflows_folder
    from myspinbot.engines.workflows import SHIPPED_WORKFLOWS

    settings = Settings.from_env({})
    assert comfyui_server(settings) is None and ollama_server(settings) is None
    assert workflows_folder(settings) == SHIPPED_WORKFLOWS
    env = {
        "MYSPINBOT_COMFYUI_URL": "http://gpu:8188",
        "MYSPINBOT_COMFYUI_TOKEN": "t",
        "MYSPINBOT_OLLAMA_URL": "http://gpu:11434",
    }
    configured = Settings.from_env(env)
    server = comfyui_server(configured)
    assert server is not None and server.token == "t" and server.max_download_bytes == 4 * 1024**3
    assert ollama_server(configured).model == "llama3.2"  # type: ignore[union-attr]
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"MYSPINBOT_COMFYUI_URL": "ftp://me:pw@gpu"})
    assert "pw" not in str(caught.value) and "MYSPINBOT_COMFYUI_URL" in str(caught.value)
