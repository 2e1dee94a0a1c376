"""Fixtures for the browser tests: headless Chromium driving a real server process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from skips import skip_because

from .browser_binary import Chromium, ChromiumUnavailable, find_chromium
from .e2e_support import CHROMIUM_ARGS, DIST, PROBE_SCRIPT, ServerProcess, free_port

EXPECT_TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
def chromium() -> Chromium:
    """MYSPINBOT_CHROMIUM, else /usr/bin/chromium, else the one @sparticuz/chromium ships."""
    try:
        found = find_chromium()
    except ChromiumUnavailable as missing:
        skip_because("browser tests", missing.reason, missing.enable)
    except ValueError as bad:
        pytest.fail(str(bad))
    assets = ("app.js", "app.css")
    absent = [name for name in assets if not (DIST / name).is_file()]
    if absent:
        pytest.fail(
            f"front-end assets missing in {DIST} ({', '.join(absent)}): "
            "run `npm ci && npm run build` (make install)"
        )
    return found


# Package scope: Playwright's sync API keeps an event loop running in this thread, and tests
# after the browser tests (asyncio.run) need it gone.
@pytest.fixture(scope="package")
def browser(chromium: Chromium) -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as pw:
        launched = pw.chromium.launch(
            executable_path=chromium.path,
            headless=True,
            args=CHROMIUM_ARGS,
            env=chromium.launch_env(),
        )
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def start_server(
    chromium: Chromium, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., ServerProcess]]:
    """Start `python app.py` processes; every one is stopped at the end of the session."""
    started: list[ServerProcess] = []

    def start(step_seconds: float = 0.1, steps: int = 10, **env: str) -> ServerProcess:
        """A server; `env` adds settings (MYSPINBOT_COMFYUI_URL=… for engine jobs)."""
        data_dir = tmp_path_factory.mktemp("server") / "data"
        server = ServerProcess(
            data_dir, free_port(), step_seconds=step_seconds, steps=steps, extra_env=env
        )
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def live_server(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    """One server shared by the tests that do not stop it or need slow jobs."""
    return start_server()


@dataclass
class Probe:
    """What a page said on its console and through its probe script."""

    page: Any
    response: Any = None
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def csp_violations(self) -> list[str]:
        return list(self.page.evaluate("window.__probe ? window.__probe.csp : []"))


@pytest.fixture
def open_dashboard(browser: Any) -> Iterator[Callable[..., Probe]]:
    """Open the dashboard of a server in a fresh context; no CSP violation or uncaught
    error may happen in any test."""
    contexts: list[Any] = []
    probes: list[Probe] = []

    def open_page(server: ServerProcess, init_script: str = "", **context_options: Any) -> Probe:
        options = {"viewport": {"width": 1360, "height": 900}, **context_options}
        context = browser.new_context(**options)
        contexts.append(context)
        context.add_init_script(PROBE_SCRIPT + init_script)
        page = context.new_page()
        probe = Probe(page)
        probes.append(probe)
        page.on(
            "console",
            lambda msg: probe.console_errors.append(msg.text) if msg.type == "error" else None,
        )
        page.on("pageerror", lambda err: probe.page_errors.append(str(err)))

        def on_dialog(dialog: Any) -> None:
            probe.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        probe.response = page.goto(f"{server.url}/")
        # Alpine starts after the load event (once its globals snapshot is in) and sets the
        # page up over a few tasks (static/src/js/progressive.js): every test acts on the
        # page once it is all set up.
        page.wait_for_function("() => window.__probe.started === true", timeout=EXPECT_TIMEOUT_MS)
        return probe

    yield open_page
    try:
        for probe in probes:
            if not probe.page.is_closed():
                assert probe.csp_violations() == []
            assert probe.page_errors == []
    finally:
        for context in contexts:
            context.close()


@pytest.fixture
def artifacts_dir() -> Path:
    path = Path(__file__).resolve().parents[2] / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
