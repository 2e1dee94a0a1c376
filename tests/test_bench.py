"""`python -m bench --quick` runs end to end, so the benchmark cannot rot (no timing asserts)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SEED = REPO.parent / "shared" / "reference" / "seed-node"

BOTH = [
    "enqueue.c8.rps",
    "enqueue.c8.p50_ms",
    "enqueue.c8.p99_ms",
    "enqueue.c8.non_202",
    "e2e.jobs_per_s",
    "e2e.lost",
    "fanout.10.p50_ms",
    "fanout.10.p99_ms",
    "fanout.10.missed",
    "memory.idle_mib",
    "memory.peak_mib",
]
OURS_ONLY = ["noop.c8.rps", "enqueue.c8.vs_ceiling"]


def _skip_reason() -> str | None:
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed: the seed-node reference needs Node 20+ and npm"
    if not (SEED / "package.json").is_file():
        return f"the seed-node reference is absent ({SEED})"
    if shutil.which("redis-server") is None:
        return "redis-server is not installed"
    return None


@pytest.mark.slow
def test_quick_bench_writes_figures_for_both_systems(tmp_path: Path) -> None:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    out = tmp_path / "bench.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # lets the bench stop what it started
        output, _ = proc.communicate(timeout=60)
        pytest.fail(f"bench --quick did not finish in 600 s:\n{output[-4000:]}")
    assert proc.returncode == 0, output[-4000:]
    data = json.loads(out.read_text())
    assert data["errors"] == []
    for system, keys in (("ours", BOTH + OURS_ONLY), ("seed", BOTH)):
        figures = data["summary"][system]
        missing = [k for k in keys if figures.get(k) is None]
        assert not missing, f"{system} lacks {missing}"
    assert {row["key"] for row in data["rows"]} >= set(BOTH)
