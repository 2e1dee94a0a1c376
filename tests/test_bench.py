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

from bench.profile import main_thread_stacks, shares, table

REPO = Path(__file__).resolve().parent.parent

BOTH = [
    "enqueue.c8.rps",
    "enqueue.c8.p50_ms",
    "enqueue.c8.p99_ms",
    "enqueue.c8.non_202",
    "e2e.jobs_per_s",
    "e2e.lost",
    "e2e.cpu_main_us",
    "e2e.cpu_threads_us",
    "e2e.cpu_redis_us",
    "e2e.cpu_total_us",
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


# Three collapsed stacks as py-spy 0.4 writes them (`record --format raw --threads`).
LOOP = "thread (41): MainThread;<module> (app.py:16);_serve_http_1 (sanic/server/runners.py:343)"
PY_SPY_RAW = "\n".join(
    [
        f"{LOOP};connection_task (connection_task:15);Http.http1 (sanic/http/http1.py:123)"
        ";generate (myspinbot/api/jobs.py:110) 3",
        f"{LOOP};connection_task (connection_task:15);Http.http1 (sanic/http/http1.py:140) 1",
        "thread (44): worker-generate-0;Thread.run (threading.py:982)"
        ";MockGenerate.run (myspinbot/jobs/pipelines/mock.py:101) 7",
    ]
)


def test_profile_shares_count_the_main_thread_only_and_drop_the_scaffolding() -> None:
    stacks = main_thread_stacks(PY_SPY_RAW, 41)
    inclusive, own, total = shares(stacks)
    assert total == 4  # the worker thread's 7 samples are not the event loop's
    assert inclusive["Http.http1 (sanic/http/http1.py)"] == 4  # line numbers merged
    assert own == {"generate (myspinbot/api/jobs.py)": 3, "Http.http1 (sanic/http/http1.py)": 1}
    rows = table("inclusive", inclusive, total, 10).splitlines()[2:]
    assert rows == [
        "100.0%  Http.http1 (sanic/http/http1.py)",  # equal shares: by name
        "100.0%  connection_task (connection_task)",
        " 75.0%  generate (myspinbot/api/jobs.py)",
    ]  # the start-up path (app.py, sanic/server/runners.py) has no row
