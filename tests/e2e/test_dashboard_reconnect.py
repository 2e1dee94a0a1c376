"""A server that dies and comes back: the page says so, reconnects and resyncs."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from .e2e_support import ServerProcess, job_card

pytestmark = pytest.mark.browser

RECONNECT_TIMEOUT_MS = 40_000


def test_page_reconnects_and_resyncs_after_a_server_crash(
    start_server: Callable[..., ServerProcess], open_dashboard: Callable
) -> None:
    server = start_server()
    before = server.generate("Made before the crash")
    page = open_dashboard(server).page
    status = page.locator("#connection-status")
    expect(status).to_contain_text("Live")
    expect(job_card(page, before["id"])).to_have_attribute("data-state", "completed")

    server.kill_hard()
    expect(status).to_contain_text("reconnecting…", ignore_case=True)
    expect(page.get_by_role("alert").filter(has_text="reconnecting…")).to_be_visible()

    server.start()
    during = server.generate("Made while the page reconnects")
    expect(status).to_contain_text("Live", timeout=RECONNECT_TIMEOUT_MS)
    expect(page.get_by_role("alert").filter(has_text="reconnecting…")).to_be_hidden()

    expect(job_card(page, before["id"])).to_have_attribute("data-state", "completed")
    expect(job_card(page, during["id"])).to_have_attribute("data-state", "completed")

    # The list is the server's list again: nothing missing, nothing stale.
    code, body = server.request("GET", "/api/jobs?limit=50")
    assert code == 200
    expected = [job["id"] for job in body["jobs"]]
    expect(page.locator("[data-job-id]")).to_have_count(len(expected))
    shown = page.locator("[data-job-id]").evaluate_all(
        "cards => cards.map((card) => card.dataset.jobId)"
    )
    assert shown == expected
