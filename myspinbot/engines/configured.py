"""The engines as the settings configure them: None where an engine is not configured."""

from __future__ import annotations

from pathlib import Path

from ..config import Settings
from .comfyui_http import ComfyUIServer
from .ollama import OllamaServer
from .voice import VoiceServer
from .workflows import SHIPPED_WORKFLOWS


def comfyui_server(settings: Settings) -> ComfyUIServer | None:
    """The ComfyUI of MYSPINBOT_COMFYUI_URL; None: the mock pipelines run."""
    if not settings.comfyui_url:
        return None
    return ComfyUIServer(
        url=settings.comfyui_url,
        token=settings.comfyui_token,
        timeout=settings.comfyui_timeout,
        max_download_bytes=settings.comfyui_max_download_bytes,
        idle_seconds=settings.comfyui_idle_seconds,
        reconnect_seconds=settings.comfyui_patience,
    )


def ollama_server(settings: Settings) -> OllamaServer | None:
    """The Ollama of MYSPINBOT_OLLAMA_URL; None: the prompt goes to ComfyUI as written."""
    if not settings.ollama_url:
        return None
    return OllamaServer(
        url=settings.ollama_url,
        model=settings.ollama_model,
        timeout=settings.ollama_timeout,
        keep_alive=settings.ollama_keep_alive,
        think=settings.ollama_think,
    )


def voice_server(settings: Settings) -> VoiceServer | None:
    """The speech server of MYSPINBOT_VOICE_URL; None: clips stay silent."""
    if not settings.voice_url:
        return None
    return VoiceServer(
        url=settings.voice_url, token=settings.voice_token, timeout=settings.voice_timeout
    )


def workflows_folder(settings: Settings) -> Path:
    return settings.comfyui_workflows or SHIPPED_WORKFLOWS
