"""The dashboard while real engines work (stand-in ComfyUI and Ollama): the written shot, the
queue and the live preview on the card, the engine in the health strip, a clip that plays."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect
from standins import comfyui_standin, ollama_standin

from .e2e_support import ServerProcess, job_card, submit_prompt

pytestmark = pytest.mark.browser

MODELS = {
    "diffusion_models": ["wan2.1_t2v_1.3B_bf16.safetensors"],
    "text_encoders": ["umt5_xxl_fp8_e4m3fn_scaled.safetensors"],
    "vae": ["wan_2.1_vae.safetensors"],
}
WRITTEN = "A slow dolly shot of a paper boat on a rainy street, neon reflections"
REPLY = json.dumps({"shot": WRITTEN, "line": ""})  # the writer asks for JSON of a schema


def test_an_engine_job_shows_its_shot_its_live_preview_and_a_clip_that_plays(
    start_server: Callable[..., ServerProcess], open_dashboard: Callable, tmp_path: Path
) -> None:
    slow = {"steps": 40, "step_seconds": 0.1, "preview": True, "models": MODELS}
    with (
        comfyui_standin(tmp_path / "comfyui", **slow) as comfy,
        ollama_standin(tmp_path / "ollama", models=["llama3.2"], reply=REPLY) as ollama,
    ):
        server = start_server(MYSPINBOT_COMFYUI_URL=comfy.url, MYSPINBOT_OLLAMA_URL=ollama.url)
        probe = open_dashboard(server)
        page = probe.page
        expect(page.locator("#connection-status")).to_contain_text("Live")
        engines = page.locator('[data-role="engine"]')
        expect(engines).to_have_count(2)
        expect(engines.filter(has_text="ComfyUI")).to_contain_text("Up · 0.3.64")
        expect(engines.filter(has_text="Ollama")).to_contain_text("Up")

        job_id = submit_prompt(page, "a paper boat")
        card = job_card(page, job_id)
        expect(card.locator('[data-role="written"]')).to_contain_text(WRITTEN)
        expect(card.locator('[data-role="written"]')).to_contain_text("Written by llama3.2")
        preview = card.locator('[data-role="preview"] img')
        expect(preview).to_be_visible()
        expect(preview).to_have_attribute(
            "src", re.compile(rf"^/api/jobs/{job_id}/preview\?frame=\d+$")
        )
        loaded = preview.evaluate("img => img.decode().then(() => img.naturalWidth)")
        assert loaded > 0
        expect(card.locator('[data-role="message"]')).to_contain_text("Sampler")

        expect(card).to_have_attribute("data-state", "completed", timeout=60_000)
        expect(card.locator('[data-role="preview"]')).to_have_count(0)  # gone once it is done
        video = card.locator("video")
        expect(video).to_have_attribute("src", f"/api/jobs/{job_id}/artifacts/clip-1.mp4")
        assert video.evaluate("v => v.canPlayType('video/mp4')") != ""
        assert probe.console_errors == []
        assert probe.csp_violations() == []
