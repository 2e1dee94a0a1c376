"""A job handed back on a clean shutdown says so on its card: resumed, not a second attempt."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from .e2e_support import ServerProcess, job_card

pytestmark = pytest.mark.browser

RECONNECT_TIMEOUT_MS = 40_000


def test_a_job_resumed_after_a_restart_says_so_on_its_card(
    start_server: Callable[..., ServerProcess], open_dashboard: Callable
) -> None:
    server = start_server(step_seconds=0.2, steps=40)
    page = open_dashboard(server).page
    expect(page.locator("#connection-status")).to_contain_text("Live")
    job = server.generate("Interrupted by a clean stop")
    card = job_card(page, job["id"])
    expect(card).to_have_attribute("data-state", "active")

    server.stop()  # SIGINT: the running job is handed back, not failed
    server.start()
    expect(page.locator("#connection-status")).to_contain_text("Live", timeout=RECONNECT_TIMEOUT_MS)
    expect(card).to_contain_text("resumed after a restart", timeout=RECONNECT_TIMEOUT_MS)
    expect(card).to_have_attribute("data-state", "completed", timeout=RECONNECT_TIMEOUT_MS)
    expect(card).to_contain_text("resumed after a restart")
    expect(card).not_to_contain_text("attempt")
