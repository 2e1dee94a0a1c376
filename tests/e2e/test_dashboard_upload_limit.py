"""An upload the server refuses as too large shows the server's limit message, not a
network error: the server lets the browser finish sending before it closes (a lingering
close), so the browser reads the 413."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .e2e_support import ServerProcess, png_bytes, write_wav

pytestmark = pytest.mark.browser

MiB = 1024 * 1024


def test_an_upload_over_the_servers_limit_shows_the_limit_message(
    start_server: Callable[..., ServerProcess], open_dashboard: Callable, tmp_path: Path
) -> None:
    server = start_server(MYSPINBOT_MAX_IMAGE_BYTES=str(64 * MiB))
    page = open_dashboard(server).page
    expect(page.locator("#connection-status")).to_contain_text("Live")
    # The server comes back with a lower limit while the page is open: the page's own
    # check still allows the file, so the server is the one to refuse it, mid-upload.
    server.stop()
    server.extra_env["MYSPINBOT_MAX_REQUEST_BYTES"] = str(MiB)
    server.start()
    expect(page.locator("#connection-status")).to_contain_text("Live")

    big = tmp_path / "big.png"
    big.write_bytes(png_bytes((10, 20, 30)) + b"\0" * (48 * MiB))
    page.locator("#images").set_input_files(big)
    page.locator("#voice").set_input_files(write_wav(tmp_path / "voice.wav"))
    with page.expect_response(lambda r: r.url.endswith("/api/train")) as answer:
        page.get_by_role("button", name="Start training").click()
    assert answer.value.status == 413
    message = f"the upload is larger than {MiB} bytes"
    expect(page.get_by_role("alert").filter(has_text=message)).to_be_visible()
    expect(page.get_by_text("Could not reach the server")).to_have_count(0)
