"""Which pipelines a worker runs: ComfyUI's (and Ollama's) when configured, else the mocks."""

from __future__ import annotations

from ...config import Settings
from .base import Pipeline
from .mock import MockGenerate, MockTrain


def build_pipelines(settings: Settings) -> dict[str, Pipeline]:
    if not settings.comfyui_url:
        return {
            "train": MockTrain(
                settings.mock_steps, settings.mock_step_seconds, settings.mock_faults
            ),
            "generate": MockGenerate(
                settings.mock_steps,
                settings.mock_step_seconds,
                settings.mock_faults,
                settings.artifacts_dir,
            ),
        }
    # Imported here: LangGraph and the engine clients are only loaded when they are used.
    from ...engines.configured import (
        comfyui_server,
        ollama_server,
        voice_server,
        workflows_folder,
    )
    from .render import EngineGenerate
    from .speech import Clip, Speaker
    from .train import EngineTrain

    comfyui = comfyui_server(settings)
    assert comfyui is not None
    workflows = workflows_folder(settings)
    return {
        "train": EngineTrain(comfyui, workflows),
        "generate": EngineGenerate(
            comfyui,
            ollama_server(settings),
            workflows,
            settings.artifacts_dir,
            Speaker(voice_server(settings), settings.artifacts_dir),
            Clip(settings.clip_fps, settings.clip_frames),
            "generate_talking" if settings.lip_sync else "generate",
        ),
    }
