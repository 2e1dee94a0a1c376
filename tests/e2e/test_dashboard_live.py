"""The dashboard loads clean under its CSP and follows jobs live over /ws."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from .e2e_support import ServerProcess, job_card, submit_prompt

pytestmark = pytest.mark.browser


def test_dashboard_loads_without_console_errors_or_csp_violations(
    live_server: ServerProcess, open_dashboard: Callable
) -> None:
    probe = open_dashboard(live_server)
    page = probe.page
    csp = probe.response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "unsafe" not in csp

    expect(page.locator("#connection-status")).to_contain_text("Live")
    expect(page.get_by_text("Connected", exact=True)).to_be_visible()
    expect(page.locator('[data-queue="generate"] [data-role="workers"]')).to_contain_text("worker")
    expect(page.get_by_role("heading", name="Generate a clip")).to_be_visible()
    expect(page.get_by_role("heading", name="Train a persona")).to_be_visible()
    expect(page.get_by_label("Prompt")).to_be_editable()

    assert probe.console_errors == []
    assert probe.csp_violations() == []
    assert page.evaluate("window.__probe.errors") == []

    icon = page.request.get(f"{live_server.url}/favicon.ico")
    assert icon.status == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")


def test_prompt_runs_to_a_clip_without_reload(
    live_server: ServerProcess, open_dashboard: Callable
) -> None:
    page = open_dashboard(live_server).page
    expect(page.locator("#connection-status")).to_contain_text("Live")
    page.evaluate("window.__sameDocument = true")

    job_id = submit_prompt(page, "A paper boat drifting down a rainy street")
    card = job_card(page, job_id)
    expect(card).to_be_visible()
    expect(card.locator('[data-role="title"]')).to_have_text(
        "A paper boat drifting down a rainy street"
    )

    bar = card.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(card.locator('[data-role="progress"]')).to_have_text("100%")
    expect(card).to_have_attribute("data-state", "completed")
    expect(card.locator('[data-role="state"]')).to_have_text("Completed")

    clip = card.locator('img[src$="/clip.webp"]')
    expect(clip).to_be_visible()
    expect(clip).to_have_js_property("complete", True)
    assert clip.evaluate("img => img.naturalWidth") > 0
    expect(card.locator('a[download][href$="/clip.webp"]')).to_be_visible()
    expect(card.locator('a[download][href$="/result.json"]')).to_be_visible()

    assert page.evaluate("window.__sameDocument") is True


def test_prompt_markup_is_shown_as_text_and_runs_nothing(
    live_server: ServerProcess, open_dashboard: Callable
) -> None:
    probe = open_dashboard(live_server)
    page = probe.page
    expect(page.locator("#connection-status")).to_contain_text("Live")
    payload = "<img src=x onerror=alert(1)>"

    job_id = submit_prompt(page, payload, keyboard=True)
    card = job_card(page, job_id)
    expect(card.locator('[data-role="title"]')).to_have_text(payload)
    expect(card.get_by_text(payload, exact=True)).to_be_visible()
    expect(card).to_have_attribute("data-state", "completed")

    expect(page.locator('img[src="x"]')).to_have_count(0)
    assert probe.dialogs == []
    assert probe.csp_violations() == []


def test_cancel_an_active_job(
    start_server: Callable[..., ServerProcess], open_dashboard: Callable
) -> None:
    slow = start_server(step_seconds=1.0, steps=30)
    page = open_dashboard(slow).page
    expect(page.locator("#connection-status")).to_contain_text("Live")

    job_id = submit_prompt(page, "A long take that nobody will wait for")
    card = job_card(page, job_id)
    expect(card).to_have_attribute("data-state", "active")
    expect(card.locator('[data-role="state"]')).to_have_text("Running")

    # A second job waits behind the first; the health strip shows the queue live.
    waiting = slow.generate("Second in line")
    waiting_card = job_card(page, waiting["id"])
    expect(waiting_card).to_have_attribute("data-state", "queued")
    depth = page.locator('[data-queue="generate"] [data-role="depth"]')
    expect(depth).to_have_text("1 waiting")
    waiting_card.get_by_role("button", name=f"Cancel generate job {waiting['id']}").click()
    expect(waiting_card).to_have_attribute("data-state", "cancelled")

    card.get_by_role("button", name=f"Cancel generate job {job_id}").click()
    expect(card).to_have_attribute("data-state", "cancelled")
    expect(card.locator('[data-role="state"]')).to_have_text("Cancelled")
    expect(card.get_by_role("button", name=f"Cancel generate job {job_id}")).to_be_hidden()
    status, job = slow.request("GET", f"/api/status/{job_id}")
    assert (status, job["state"]) == (200, "cancelled")
    expect(depth).to_have_text("nothing waiting")


def test_filters_and_find_by_id(live_server: ServerProcess, open_dashboard: Callable) -> None:
    finished = live_server.generate("Found again by its id")
    page = open_dashboard(live_server).page
    card = job_card(page, finished["id"])
    expect(card).to_have_attribute("data-state", "completed")

    page.get_by_label("Kind").select_option("train")
    expect(card).to_be_hidden()
    page.get_by_label("Kind").select_option("")
    page.get_by_label("State").select_option("failed")
    expect(card).to_be_hidden()
    page.get_by_label("State").select_option("completed")
    expect(card).to_be_visible()
    page.get_by_label("State").select_option("")

    search = page.get_by_label("Find a job by id")
    search.fill(finished["id"])
    expect(page.locator("[data-job-id]")).to_have_count(1)
    expect(card).to_be_visible()

    search.fill("01NOSUCHJOB0000000000000000")
    search.press("Enter")
    expect(page.locator("#find-message")).to_contain_text("No job has the id")
    page.get_by_role("button", name="Clear filters").click()
    expect(card).to_be_visible()
