"""A run that skipped something ends with one line naming each group and what enables it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

SKIPPING_TESTS = """
import pytest
from skips import skip_because, skip_reason

def test_needs_a_browser():
    skip_because("browser tests", "no Chromium", "npm ci")

def test_needs_a_browser_too():
    skip_because("browser tests", "no Chromium", "npm ci")

@pytest.mark.skipif(True, reason=skip_reason("ComfyUI tests", "no ComfyUI", "make test-comfyui"))
def test_needs_comfyui():
    pass

def test_skips_without_the_convention():
    pytest.skip("for no stated reason")

def test_runs():
    pass
"""


def run_pytest(directory: Path, source: str) -> list[str]:
    """Run pytest on one test file with the suite's own conftest.py as a plugin."""
    (directory / "test_sample.py").write_text(source)
    (directory / "pytest.ini").write_text("[pytest]\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-rs"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def test_a_run_with_skips_ends_with_one_line_naming_each_group_and_its_command(tmp_path):
    lines = run_pytest(tmp_path, SKIPPING_TESTS)
    assert lines[-2] == (
        "skipped: browser tests ×2 (no Chromium: npm ci)"
        " · ComfyUI tests ×1 (no ComfyUI: make test-comfyui)"
        " · other skips ×1 (see the SKIPPED lines above)"
    )
    assert "1 passed, 4 skipped" in lines[-1]
    # The SKIPPED lines point at the test that skipped, not at the helper.
    assert "SKIPPED [1] test_sample.py:6: browser tests: no Chromium; enable: npm ci" in lines


def test_a_run_without_skips_has_no_summary_line(tmp_path):
    lines = run_pytest(tmp_path, "def test_runs():\n    pass\n")
    assert not any(line.startswith("skipped:") for line in lines)
    assert "1 passed" in lines[-1]
