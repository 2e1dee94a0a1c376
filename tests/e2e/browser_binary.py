"""Which Chromium the browser tests drive: MYSPINBOT_CHROMIUM, the system's, or npm's.

The npm one is `@sparticuz/chromium` (in the test tooling's package, tests/tooling/, which
`make test` installs): a headless Chromium shipped inside the package as brotli files. It is
unpacked once per package version into `tests/tooling/node_modules/.cache/`, with the
package's own NSS libraries and fonts for machines that have none, so a bare machine needs
nothing from outside the registries.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_CHROMIUM = Path("/usr/bin/chromium")
TOOLING = ROOT / "tests" / "tooling" / "node_modules"  # installed by `make install-test`
NPM_PACKAGE = TOOLING / "@sparticuz" / "chromium"
CACHE = TOOLING / ".cache" / "myspinbot-chromium"
ENABLE = "make install-test"

# Streams stdin through brotli to stdout: Node has brotli built in, Python does not.
UNBROTLI_JS = "process.stdin.pipe(require('zlib').createBrotliDecompress()).pipe(process.stdout)"


class ChromiumUnavailable(Exception):
    """No Chromium can be had; `reason` says why and `enable` what would bring one."""

    def __init__(self, reason: str, enable: str = ENABLE) -> None:
        super().__init__(reason)
        self.reason = reason
        self.enable = enable


@dataclass(frozen=True)
class Chromium:
    path: str
    source: str
    # Variables the browser process needs on top of the caller's environment.
    env: dict[str, str] = field(default_factory=dict)

    def launch_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}


def find_chromium() -> Chromium:
    """MYSPINBOT_CHROMIUM when set, else /usr/bin/chromium, else the npm package's."""
    configured = os.environ.get("MYSPINBOT_CHROMIUM")
    if configured:
        if not is_executable(Path(configured)):
            # Named on purpose, so a typo must not quietly become a skip or another browser.
            raise ValueError(f"MYSPINBOT_CHROMIUM={configured} is not an executable file")
        return Chromium(configured, "MYSPINBOT_CHROMIUM")
    if is_executable(SYSTEM_CHROMIUM):
        return Chromium(str(SYSTEM_CHROMIUM), "system")
    return npm_chromium()


def is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def npm_chromium() -> Chromium:
    manifest = NPM_PACKAGE / "package.json"
    if not manifest.is_file():
        raise ChromiumUnavailable(f"no Chromium at {SYSTEM_CHROMIUM} nor in {NPM_PACKAGE}")
    version = json.loads(manifest.read_text())["version"]
    unpacked = CACHE / version
    if not (unpacked / ".complete").is_file():
        unpack(NPM_PACKAGE / "bin", unpacked)
    binary = unpacked / "chromium"
    env = {"FONTCONFIG_FILE": str(unpacked / "fonts.conf")}
    missing = missing_libraries(binary, env)
    if missing:
        # The package's own NSS build, for machines without libnss3 and friends.
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (str(unpacked / "lib"), os.environ.get("LD_LIBRARY_PATH")) if p
        )
        still = missing_libraries(binary, env)
        if still:
            raise ChromiumUnavailable(
                f"the npm Chromium needs {', '.join(still)}",
                "apt-get install libnss3 libexpat1",
            )
    return Chromium(str(binary), f"@sparticuz/chromium {version}", env)


def unpack(bin_dir: Path, target: Path) -> None:
    """Unpack the package's brotli files into `target`, once, even with two test runs."""
    if shutil.which("node") is None:
        raise ChromiumUnavailable("no node on PATH to unpack the npm Chromium", "install Node 20+")
    CACHE.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(CACHE / f"{target.name}.lock"):
        if (target / ".complete").is_file():
            return
        staging = target.with_name(f"{target.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        with (staging / "chromium").open("wb") as out:
            unbrotli(bin_dir / "chromium.br", out)
        (staging / "chromium").chmod(0o755)
        # SwiftShader's GL libraries land beside the binary, where Chromium looks for them;
        # fonts in fonts/, the NSS libraries in lib/.
        for archive in ("swiftshader", "fonts", "al2023"):
            untar(bin_dir / f"{archive}.tar.br", staging)
        write_fonts_conf(staging, target)
        (staging / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)


def unbrotli(source: Path, out: BinaryIO) -> None:
    with source.open("rb") as stdin:
        done = subprocess.run(
            ["node", "-e", UNBROTLI_JS], stdin=stdin, stdout=out, stderr=subprocess.PIPE
        )
    if done.returncode != 0:
        raise ChromiumUnavailable(
            f"could not unpack {source.name}: {done.stderr.decode(errors='replace').strip()}"
        )


def untar(source: Path, into: Path) -> None:
    tar_path = into / f"{source.stem}.tmp"
    with tar_path.open("wb") as out:
        unbrotli(source, out)
    with tarfile.open(tar_path) as archive:
        # The "data" filter (no absolute paths, links out, devices) exists from 3.11.4 on.
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        archive.extractall(into, **safe)
    tar_path.unlink()


def write_fonts_conf(staging: Path, unpacked: Path) -> None:
    """The system's fonts when it has any, plus the package's Open Sans so text always renders."""
    (staging / "fonts.conf").write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        '  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n'
        f"  <dir>{unpacked / 'fonts'}</dir>\n"
        f"  <cachedir>{unpacked / 'fontconfig-cache'}</cachedir>\n"
        "</fontconfig>\n"
    )


def missing_libraries(binary: Path, env: dict[str, str]) -> list[str]:
    """Shared libraries the dynamic loader cannot find for `binary` (ldd's "not found")."""
    if shutil.which("ldd") is None:
        return []
    done = subprocess.run(
        ["ldd", str(binary)], env={**os.environ, **env}, capture_output=True, text=True
    )
    if done.returncode != 0:  # a library that is there but unloadable ("file too short")
        return [done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "ldd failed"]
    return [line.split("=>")[0].strip() for line in done.stdout.splitlines() if "not found" in line]


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
