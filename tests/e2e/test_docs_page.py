"""The API docs page renders from local assets under its Content-Security-Policy."""

from __future__ import annotations

from typing import Any

import pytest

from .e2e_support import PROBE_SCRIPT

pytestmark = pytest.mark.browser


def test_docs_page_renders_every_operation_offline(browser: Any, live_server: Any) -> None:
    from playwright.sync_api import expect

    context = browser.new_context()
    try:
        context.add_init_script(PROBE_SCRIPT)
        page = context.new_page()
        outside: list[str] = []
        page.on(
            "request",
            lambda r: outside.append(r.url) if not r.url.startswith(live_server.url) else None,
        )
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{live_server.url}/docs")
        expect(page.locator(".opblock")).to_have_count(9)
        assert page.evaluate("window.__probe.csp") == []
        assert errors == [] and outside == []
    finally:
        context.close()
