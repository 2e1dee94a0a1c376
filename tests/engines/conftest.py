"""Fixtures of the engine tests: the opt-in real ComfyUI, and an engine client for it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from skips import skip_because

from myspinbot.engines.comfyui import ComfyUI
from myspinbot.engines.comfyui_http import ComfyUIServer

from .comfyui_rig import ENABLE, START_SECONDS, ComfyUIProcess

WORKFLOWS = Path(__file__).parent.parent / "data" / "workflows"


@pytest.fixture(scope="session")
def comfyui_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComfyUIProcess]:
    """One real ComfyUI for the session (tests that restart it leave it running)."""
    checkout = os.environ.get("MYSPINBOT_TEST_COMFYUI")
    python = os.environ.get("MYSPINBOT_TEST_COMFYUI_PYTHON")
    if not checkout or not python:
        skip_because("real ComfyUI tests", "no ComfyUI checkout given", ENABLE)
    process = ComfyUIProcess(Path(checkout), Path(python), tmp_path_factory.mktemp("comfyui"))
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture()
def engine(comfyui_process: ComfyUIProcess) -> Iterator[ComfyUI]:
    # Short silences, so tests of a lost server reconcile within seconds.
    server = ComfyUIServer(comfyui_process.url, idle_seconds=2.0, reconnect_seconds=START_SECONDS)
    with ComfyUI(server) as client:
        yield client
