"""Training uploads from the dashboard: previews, progress, checks and the server's verdict."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .e2e_support import (
    ServerProcess,
    job_card,
    throttle_uploads,
    write_noise_png,
    write_pngs,
    write_wav,
)

pytestmark = pytest.mark.browser


def test_training_upload_completes_and_offers_its_persona(
    live_server: ServerProcess, open_dashboard: Callable, tmp_path: Path
) -> None:
    images = [*write_pngs(tmp_path, 2), write_noise_png(tmp_path / "grain.png")]
    voice = write_wav(tmp_path / "voice.wav")
    page = open_dashboard(live_server).page
    expect(page.locator("#connection-status")).to_contain_text("Live")
    throttle_uploads(page, 300_000)

    page.get_by_label("Name").fill("Robin, window light")
    page.locator("#images").set_input_files(images)
    previews = page.get_by_role("list", name="Selected images").get_by_role("img")
    expect(previews).to_have_count(3)
    page.locator("#voice").set_input_files(voice)
    # the chosen file, in the form (a finished training's card links its voice.wav too)
    expect(page.get_by_role("group").get_by_text("voice.wav", exact=True)).to_be_visible()

    with page.expect_response(lambda r: r.url.endswith("/api/train")) as answer:
        page.get_by_role("button", name="Start training").click()
        upload = page.get_by_role("progressbar", name="Upload progress")
        expect(upload).to_have_attribute("aria-valuenow", re.compile(r"^[1-9][0-9]?$"))
        expect(page.get_by_role("button", name="Cancel upload")).to_be_visible()
    assert answer.value.status == 202, answer.value.text()
    job_id = answer.value.json()["id"]
    expect(upload).to_be_hidden()

    card = job_card(page, job_id)
    expect(card.locator('[data-role="title"]')).to_have_text("Robin, window light")
    expect(card.locator('[data-role="detail"]')).to_contain_text("3 images")
    expect(card).to_have_attribute("data-state", "completed")
    expect(card.locator('[data-role="progress"]')).to_have_text("100%")
    expect(card.locator('a[download][href$="/lora.safetensors"]')).to_be_visible()
    expect(card.locator('a[download][href$="/manifest.json"]')).to_be_visible()

    expect(previews).to_have_count(0)
    persona = page.get_by_role("combobox", name="Persona")
    expect(persona.locator(f'option[value="{job_id}"]')).to_have_text("Robin, window light")


def test_invalid_image_shows_the_server_message_next_to_the_field(
    live_server: ServerProcess, open_dashboard: Callable, tmp_path: Path
) -> None:
    voice = write_wav(tmp_path / "voice.wav")
    page = open_dashboard(live_server).page
    expect(page.locator("#connection-status")).to_contain_text("Live")

    # Named and typed like a PNG, so only the live_server, which reads the content, can refuse it.
    fake = {"name": "not-really.png", "mimeType": "image/png", "buffer": b"just some text\n" * 20}
    page.locator("#images").set_input_files([fake])
    page.locator("#voice").set_input_files(voice)
    expect(page.locator("#images-error")).to_be_hidden()

    with page.expect_response(lambda r: r.url.endswith("/api/train")) as answer:
        page.get_by_role("button", name="Start training").click()
    response = answer.value
    assert response.status in (415, 422), response.text()
    error = response.json()["error"]
    assert error.get("field") == "images", error

    message = page.locator("#images-error")
    expect(message).to_be_visible()
    expect(message).to_have_text(error["message"])
    expect(page.locator("#images")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#voice-error")).to_be_hidden()


def test_client_side_checks_refuse_wrong_files_before_uploading(
    live_server: ServerProcess, open_dashboard: Callable, tmp_path: Path
) -> None:
    page = open_dashboard(live_server).page
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/api/train" in r.url else None)

    page.locator("#images").set_input_files(
        [{"name": "animation.gif", "mimeType": "image/gif", "buffer": b"GIF89a" + b"\0" * 32}]
    )
    expect(page.locator("#images-error")).to_contain_text("is not a PNG, JPEG or WebP image")
    page.locator("#voice").set_input_files(
        [{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}]
    )
    expect(page.locator("#voice-error")).to_contain_text("is not a WAV, MP3, FLAC or OGG")
    expect(page.get_by_role("button", name="Start training")).to_be_disabled()
    assert requests == []


def test_images_dropped_on_the_drop_zone_are_previewed(
    live_server: ServerProcess, open_dashboard: Callable
) -> None:
    page = open_dashboard(live_server).page
    expect(page.locator("#connection-status")).to_contain_text("Live")
    dropped = page.evaluate_handle(
        """() => {
            const data = new DataTransfer();
            for (const name of ["one.png", "two.jpg"]) {
                const type = name.endsWith(".png") ? "image/png" : "image/jpeg";
                data.items.add(new File([new Uint8Array([1, 2, 3])], name, { type }));
            }
            return data;
        }"""
    )
    zone = page.locator('label[for="images"]')
    zone.dispatch_event("dragenter", {"dataTransfer": dropped})
    expect(zone).to_have_class(re.compile(r"\bdropzone-active\b"))
    zone.dispatch_event("drop", {"dataTransfer": dropped})
    previews = page.get_by_role("list", name="Selected images").get_by_role("img")
    expect(previews).to_have_count(2)
    expect(page.get_by_text("2 of 50 images", exact=False)).to_be_visible()
    page.get_by_role("button", name="Remove one.png").click()
    expect(previews).to_have_count(1)
    expect(page.get_by_role("img", name="two.jpg")).to_be_visible()
