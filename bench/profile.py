"""Where a `POST /api/generate` spends its time: py-spy on the server under the enqueue load.

    .venv/bin/python -m bench.profile                 # c=32, 15 s, the table below
    .venv/bin/python -m bench.profile --conns 128 --seconds 30

Starts MySpinBot as `make bench` does (its own Redis, one process, pinned to CPU 0, the
load on CPU 1), drives `POST /api/generate` from our closed-loop client while py-spy
samples the server without pausing it (`--nonblocking`), and prints the share of the
event loop's busy samples spent in each function: inclusive (the function or anything
it called) and self. Idle samples (the loop waiting in epoll) are not recorded, so the
shares are of the CPU the requests cost. Unpaused sampling cuts some stacks short, so
inclusive shares are lower bounds; self shares are exact. The collapsed stacks are kept next to the
results (`bench/results/profile-enqueue.txt`) for a flame graph.

py-spy needs to read the server's memory: as root, or with ptrace allowed
(`kernel.yama.ptrace_scope=0`).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench import procs, systems
from bench.httpload import build_request, run_load
from bench.procs import BenchError
from bench.scenarios import GENERATE_BODY
from bench.systems import CACHE, REPO, Redis, System

ENQUEUE_MOCK = (20, 0.25)  # as `make bench`'s enqueue: the workers mostly sleep
FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$")
# The start-up path and the event loop that every busy sample runs under: no rows.
SCAFFOLD = (
    "(app.py)",
    "(myspinbot/cli.py)",
    "(serve.py)",
    "(sanic/server/runners.py)",
    "(sanic/mixins/startup.py)",
    "(sanic/worker/serve.py)",
    "(asyncio/base_events.py)",
    "(asyncio/events.py)",
)


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise BenchError("py-spy not found: pip install py-spy")
    return found


def frame_name(frame: str) -> str:
    """'Http.http1 (sanic/http/http1.py:120)' -> 'Http.http1 (sanic/http/http1.py)'."""
    match = FRAME.match(frame)
    return f"{match['func']} ({match['file']})" if match else frame


def main_thread_stacks(raw: str, server_pid: int) -> Counter[tuple[str, ...]]:
    """Collapsed stacks of the server's main thread (`--threads` names it by its tid)."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not frames or not frames[0].startswith(f"thread ({server_pid})"):
            continue
        stacks[tuple(frame_name(f) for f in frames[1:])] += int(count)
    return stacks


def shares(stacks: Counter[tuple[str, ...]]) -> tuple[Counter[str], Counter[str], int]:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for frames, count in stacks.items():
        for name in set(frames):
            inclusive[name] += count
        if frames:
            own[frames[-1]] += count
    return inclusive, own, sum(stacks.values())


def table(title: str, counts: Counter[str], total: int, rows: int) -> str:
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))  # ties: by name
    wanted = [(n, c) for n, c in ranked if not n.endswith(SCAFFOLD)]
    lines = [title, f"{'share':>6}  function (file)"]
    lines += [f"{100 * c / total:5.1f}%  {name}" for name, c in wanted[:rows]]
    return "\n".join(lines)


async def drive(system: System, conns: int, seconds: float, output: Path, rate: int) -> int:
    """Load for `seconds` (after a 1 s warm-up) while py-spy records; return requests."""
    request = build_request("POST", "/api/generate", system.port, GENERATE_BODY.encode())
    await run_load(system.port, request, conns, duration=1.0)
    server, _ = system.pids()
    command = [py_spy(), "record", "--pid", str(server), "--duration", str(int(seconds))]
    command += ["--rate", str(rate), "--format", "raw", "--threads", "--nonblocking"]
    spy = await asyncio.create_subprocess_exec(
        *command, "--output", str(output), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    load = await run_load(system.port, request, conns, duration=seconds)
    _, err = await spy.communicate()
    if spy.returncode != 0:
        raise BenchError(f"py-spy failed ({spy.returncode}): {err.decode()[-800:]}")
    return load.requests


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench.profile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--conns", type=int, default=32, help="connections (32)")
    ap.add_argument("--seconds", type=float, default=15.0, help="recorded seconds (15)")
    ap.add_argument("--rate", type=int, default=250, help="py-spy samples per second (250)")
    ap.add_argument("--rows", type=int, default=20, help="rows per table (20)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "profile-enqueue.txt")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    procs.pin_self_to_load_cpu()
    CACHE.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="profile-", dir=CACHE))
    system = System(systems.ours_spec(), Redis("ours", workdir / "ours"), workdir / "ours")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        system.start(*ENQUEUE_MOCK)
        requests = asyncio.run(drive(system, args.conns, args.seconds, args.out, args.rate))
        server, _ = system.pids()
    except BenchError as exc:
        print(f"bench.profile: {exc}\n(logs kept in {workdir})", file=sys.stderr)
        return 1
    finally:
        system.stop()
        system.redis.stop()
    inclusive, own, total = shares(main_thread_stacks(args.out.read_text(), server))
    if total == 0:
        print("bench.profile: py-spy recorded no busy samples of the main thread", file=sys.stderr)
        return 1
    print(
        f"POST /api/generate, c={args.conns}, {args.seconds:.0f} s: {requests / args.seconds:,.0f}"
        f" req/s under py-spy, {total} busy samples of the event loop"
    )
    print(table("inclusive (the function and what it calls)", inclusive, total, args.rows))
    print(table("self", own, total, args.rows))
    print(f"collapsed stacks: {args.out}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
