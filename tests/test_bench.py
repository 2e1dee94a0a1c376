"""`python -m bench --quick` runs end to end, so the benchmark cannot rot (no timing asserts).

Only MySpinBot's side runs here: the reference it is compared with lives outside this
repository, and `make bench` (never part of `make test`) is where the two meet.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

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


@pytest.mark.slow
def test_quick_bench_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "--quick", "--systems", "ours", "--out", str(out)],
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
    figures = data["summary"]["ours"]
    missing = [k for k in BOTH + OURS_ONLY if figures.get(k) is None]
    assert not missing, f"the bench lacks {missing}"
    assert {row["key"] for row in data["rows"]} >= set(BOTH)
