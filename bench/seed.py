"""Prepare the seed-node reference in bench/.cache: copy it and `npm ci` once."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from bench.procs import BenchError
from bench.systems import CACHE, REPO

# Not part of this repository: the original Node design, kept beside the clone
# (`--seed-node PATH`, or `make bench SEED_NODE=PATH`, names another copy).
SOURCE = REPO.parent / "shared" / "reference" / "seed-node"
TARGET = CACHE / "seed-node"
STAMP = ".bench-lock-sha256"


def missing_reason(source: Path = SOURCE) -> str | None:
    """Why seed-node cannot run here, or None when it can."""
    if not (source / "package.json").is_file():
        return (
            f"seed-node reference not found at {source}: name it with --seed-node PATH "
            "(make bench SEED_NODE=PATH), or measure MySpinBot alone with --systems ours"
        )
    for tool in ("node", "npm"):
        if not shutil.which(tool):
            return f"`{tool}` is not installed (seed-node needs Node 20+ and npm)"
    return None


def _sync_tree(src: Path, dst: Path) -> None:
    """Copy files (not modes: the source is read-only) and drop files gone from the source."""
    dst.mkdir(parents=True, exist_ok=True)
    wanted = set()
    for entry in src.iterdir():
        if entry.name == "node_modules":
            continue
        wanted.add(entry.name)
        target = dst / entry.name
        if entry.is_dir():
            _sync_tree(entry, target)
        else:
            shutil.copyfile(entry, target)
            os.chmod(target, 0o644)
    for entry in dst.iterdir():
        if entry.name not in wanted and entry.name not in ("node_modules", STAMP):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def prepare(log: Path, source: Path = SOURCE) -> Path:
    """Return the ready seed-node directory; `npm ci` only when package-lock.json changed."""
    reason = missing_reason(source)
    if reason:
        raise BenchError(reason)
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "seed-node.lock", "w") as lock:  # two runs at once share the copy
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _prepare(log, source)


def _prepare(log: Path, source: Path) -> Path:
    _sync_tree(source, TARGET)
    lock = hashlib.sha256((TARGET / "package-lock.json").read_bytes()).hexdigest()
    stamp = TARGET / STAMP
    if stamp.exists() and stamp.read_text().strip() == lock and (TARGET / "node_modules").is_dir():
        return TARGET
    stamp.unlink(missing_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        rc = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=TARGET,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=600,
            check=False,
        ).returncode
    if rc != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise BenchError(f"npm ci in {TARGET} failed ({rc}):\n{tail}")
    stamp.write_text(lock + "\n")
    return TARGET
