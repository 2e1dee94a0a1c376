"""The engines a persona speaks through, as stand-ins on loopback, started the same way by the
engine tests and the browser tests:

    with speaking_engines(tmp_path, shot=SHOT, line=LINE) as engines:
        settings = {"MYSPINBOT_COMFYUI_URL": engines.comfy.url, **engines.settings()}

- ComfyUI runs the shipped workflows unchanged: the models they load exist, its generation
  is 0.3's (the shipped train.json is ComfyUI 0.3's) and its LoRA loaders list `output/loras`
  as the real-engines set-up asks, so a LoRA it trained is one it can render with;
- Ollama (a thinking model, as qwen3 is) answers the writer's schema with `shot` and `line`;
- the speech server clones the persona's voice and speaks the line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from standins import (
    ComfyUIStandIn,
    OllamaStandIn,
    VoiceStandIn,
    comfyui_standin,
    ollama_standin,
    voice_standin,
)

# What the shipped workflows load (myspinbot/engines/workflows).
SHIPPED_MODELS = {
    "diffusion_models": ["wan2.1_t2v_1.3B_bf16.safetensors"],
    "text_encoders": ["umt5_xxl_fp8_e4m3fn_scaled.safetensors"],
    "vae": ["wan_2.1_vae.safetensors"],
}
WRITER_MODEL = "qwen3"


def persona_comfyui(tmp_path: Path):
    """A ComfyUI stand-in that trains and renders with the shipped workflows (context manager)."""
    return comfyui_standin(
        tmp_path, generation="2025", steps=2, models=SHIPPED_MODELS, loras_from_output=True
    )


@dataclass(frozen=True)
class SpeakingEngines:
    comfy: ComfyUIStandIn
    ollama: OllamaStandIn
    voice: VoiceStandIn

    def settings(self) -> dict[str, str]:
        """MySpinBot's settings for the writer and the voice (its ComfyUI URL is the caller's)."""
        return {
            "MYSPINBOT_OLLAMA_URL": self.ollama.url,
            "MYSPINBOT_OLLAMA_MODEL": WRITER_MODEL,
            "MYSPINBOT_VOICE_URL": self.voice.url,
        }


@contextmanager
def speaking_engines(tmp_path: Path, *, shot: str, line: str) -> Iterator[SpeakingEngines]:
    """ComfyUI, an Ollama that writes `shot` and `line`, and a speech server, all running."""
    reply = json.dumps({"shot": shot, "line": line})
    with (
        persona_comfyui(tmp_path) as comfy,
        ollama_standin(
            tmp_path / "ollama", models=[WRITER_MODEL], thinking=(WRITER_MODEL,), reply=reply
        ) as ollama,
        voice_standin(tmp_path / "voice") as voice,
    ):
        yield SpeakingEngines(comfy, ollama, voice)
