"""Throughput with Debian's `wrk`, counting response statuses in a Lua `response` hook."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.procs import BenchError

SCRIPT = """
wrk.method = "{method}"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
counts = {{}}
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function response(status, headers, body) counts[status] = (counts[status] or 0) + 1 end
function done(summary, latency, requests)
  local total = {{}}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts")) do total[k] = (total[k] or 0) + v end
  end
  io.write("BENCH_STATUS")
  for k, v in pairs(total) do io.write(string.format(" %d=%d", k, v)) end
  io.write("\\n")
  local e = summary.errors
  io.write(string.format("BENCH_SUMMARY %d %d %d %d %d %d %d\\n", summary.requests,
    summary.duration, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass
class WrkResult:
    rps: float
    requests: int
    seconds: float
    statuses: Counter[int]
    socket_errors: int

    def non(self, status: int) -> int:
        return self.requests - self.statuses.get(status, 0)


def available() -> bool:
    return shutil.which("wrk") is not None


def run(
    port: int,
    path: str,
    method: str,
    body: str,
    conns: int,
    seconds: float,
    workdir: Path,
    threads: int = 1,
) -> WrkResult:
    """Run wrk against 127.0.0.1:port/path for `seconds` at `conns` connections."""
    if "'" in body or "\\" in body:
        raise BenchError("wrk body must not contain quotes or backslashes")
    script = workdir / f"wrk-{method.lower()}.lua"
    script.write_text(SCRIPT.format(method=method, body=body))
    secs = max(1, int(round(seconds)))
    cmd = [
        "wrk",
        "-t",
        str(max(1, min(threads, conns))),
        "-c",
        str(conns),
        "-d",
        f"{secs}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}{path}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 60, check=False)
    if proc.returncode != 0:
        raise BenchError(f"wrk failed ({proc.returncode}): {proc.stderr.strip()[:500]}")
    return parse(proc.stdout)


def parse(out: str) -> WrkResult:
    m = re.search(r"^BENCH_SUMMARY (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", out, re.M)
    s = re.search(r"^BENCH_STATUS(.*)$", out, re.M)
    if not m or not s:
        raise BenchError(f"could not read wrk's output:\n{out[-800:]}")
    requests, duration_us, *errs = (int(x) for x in m.groups())
    statuses: Counter[int] = Counter()
    for pair in s.group(1).split():
        k, v = pair.split("=")
        statuses[int(k)] += int(v)
    seconds = duration_us / 1e6
    # errors.status counts non-2xx/3xx answers, which the status tally already has
    socket_errors = errs[0] + errs[1] + errs[2] + errs[4]
    return WrkResult(
        requests / seconds if seconds else 0.0, requests, seconds, statuses, socket_errors
    )
