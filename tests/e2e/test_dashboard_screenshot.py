"""A screenshot of the dashboard with finished jobs, for the test artifacts and the README."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .e2e_support import ROOT, ServerProcess, job_card, submit_prompt, write_pngs, write_wav

pytestmark = pytest.mark.browser


def test_screenshot_of_a_dashboard_with_finished_jobs(
    start_server: Callable[..., ServerProcess],
    open_dashboard: Callable,
    artifacts_dir: Path,
    tmp_path: Path,
) -> None:
    server = start_server()
    server.generate("Neon koi circling a glass bowl, macro lens")
    page = open_dashboard(server, color_scheme="light").page
    expect(page.locator("#connection-status")).to_contain_text("Live")

    page.get_by_label("Name").fill("Alex, studio light")
    page.locator("#images").set_input_files(write_pngs(tmp_path, 5))
    page.locator("#voice").set_input_files(write_wav(tmp_path / "alex-voice.wav"))
    with page.expect_response(lambda r: r.url.endswith("/api/train")) as answer:
        page.get_by_role("button", name="Start training").click()
    train_id = answer.value.json()["id"]
    expect(job_card(page, train_id)).to_have_attribute("data-state", "completed")

    page.get_by_role("combobox", name="Persona").select_option(label="Alex, studio light")
    clip_id = submit_prompt(page, "Me playing guitar on a rooftop at sunset, slow dolly shot")
    card = job_card(page, clip_id)
    expect(card).to_have_attribute("data-state", "completed")
    expect(card.locator('[data-role="detail"]')).to_have_text("Persona: Alex, studio light")
    expect(card.locator("img")).to_have_js_property("complete", True)
    expect(page.locator('[data-job-id][data-state="completed"]')).to_have_count(3)

    for queue in ("train", "generate"):
        workers = page.locator(f'[data-queue="{queue}"] [data-role="workers"]')
        expect(workers).to_have_text("1 worker")
    page.mouse.move(0, 0)
    target = artifacts_dir / "dashboard.png"
    page.screenshot(path=str(target), full_page=True, animations="disabled")
    assert target.stat().st_size > 10_000
    if os.environ.get("UPDATE_README_SCREENSHOT") == "1":  # a test run leaves the tree alone
        shutil.copyfile(target, ROOT / "docs" / "dashboard.png")
