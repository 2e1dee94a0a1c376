"""`make bench`: MySpinBot against the seed-node reference, side by side, same run.

Each scenario runs on a freshly started system (its private Redis flushed first),
alternating between the two systems, with the servers and their Redis pinned to
CPU 0 and every load generator to CPU 1 where the machine has two CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import busy, procs, report, scenarios, seed, systems, wrk  # noqa: E402
from bench.procs import BenchError, MemSampler  # noqa: E402
from bench.scenarios import Config  # noqa: E402
from bench.systems import CACHE, REPO, Redis, System  # noqa: E402

ENQUEUE_MOCK = (20, 0.25)  # the defaults: the worker is mostly idle while we enqueue
ZERO_MOCK = (1, 0.0)
LABELS = report.LABELS


@dataclass(frozen=True)
class Item:
    """One measured scenario: a figure prefix, a kind and its size."""

    name: str
    kind: str
    size: int = 0
    observer: str = "ws"

    @property
    def ours_only(self) -> bool:
        return self.kind in ("noop", "busy")


@dataclass(frozen=True)
class Step:
    """Items run on one fresh start of each system, with these mock settings."""

    mock: tuple[int, float]
    items: tuple[Item, ...]


def csv_ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="tiny workload, one start per system (what `make test` runs)",
    )
    ap.add_argument("--repeat", type=int, default=1, help="runs; medians are reported")
    ap.add_argument("--duration", type=float, help="wrk seconds per enqueue run (10)")
    ap.add_argument("--latency-duration", type=float, help="latency phase seconds (5)")
    ap.add_argument("--warmup", type=float, help="warm-up seconds before each enqueue run (1)")
    ap.add_argument("--conns", type=csv_ints, help="enqueue connections (32,128)")
    ap.add_argument("--jobs", type=int, help="zero-work jobs submitted at once (10000)")
    ap.add_argument("--submit-conns", type=int, default=64, help="connections that submit them")
    ap.add_argument(
        "--e2e-observer",
        choices=("ws", "status", "both"),
        help="zero-work completions counted on one /ws connection (figure e2e), "
        "or read by GET /api/status at the end with nobody on /ws (e2e_nows); "
        "default: both (quick: ws)",
    )
    ap.add_argument("--e2e-timeout", type=float, help="bound on the zero-work wait (s)")
    ap.add_argument("--ws-clients", type=csv_ints, help="fan-out client counts (100,1000)")
    ap.add_argument("--ws-jobs", type=int, help="jobs per fan-out run, one at a time (20)")
    ap.add_argument("--ws-procs", type=int, default=1, help="client processes for fan-out")
    ap.add_argument("--ws-gap", type=float, help="pause after each fan-out job (0.2 s)")
    ap.add_argument("--systems", default="ours,seed", help="ours,seed or one of them")
    ap.add_argument(
        "--seed-node",
        type=Path,
        default=seed.SOURCE,
        help=f"the seed-node reference to compare with (default: {seed.SOURCE})",
    )
    ap.add_argument(
        "--scenarios",
        default="enqueue,noop,e2e,fanout,busy",
        help="subset of enqueue,noop,e2e,fanout,busy",
    )
    ap.add_argument(
        "--ours-cmd",
        help="command that starts MySpinBot from the repo root (default: the venv's python app.py)",
    )
    ap.add_argument(
        "--ours-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for MySpinBot, after the bench's own settings "
        "(repeatable), e.g. MYSPINBOT_ACCESS_LOG=true",
    )
    ap.add_argument("--no-wrk", action="store_true", help="throughput from our own client")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "latest.json")
    return ap.parse_args(argv)


def make_config(a: argparse.Namespace) -> Config:
    q = a.quick

    def pick(value: Any, quick: Any, full: Any) -> Any:
        return value if value is not None else (quick if q else full)

    jobs = pick(a.jobs, 50, 10_000)
    return Config(
        duration=pick(a.duration, 1.0, 10.0),
        latency_duration=pick(a.latency_duration, 1.0, 5.0),
        warmup=pick(a.warmup, 0.2, 1.0),
        conns=pick(a.conns, (8,), (32, 128)),
        jobs=jobs,
        submit_conns=a.submit_conns,
        e2e_timeout=pick(a.e2e_timeout, 60.0, max(120.0, jobs / 20)),
        ws_clients=pick(a.ws_clients, (10,), (100, 1000)),
        ws_jobs=pick(a.ws_jobs, 3, 20),
        ws_procs=a.ws_procs,
        ws_gap=pick(a.ws_gap, 0.05, 0.2),
        use_wrk=wrk.available() and not a.no_wrk,
        e2e_observers={
            "ws": ("ws",),
            "status": ("status",),
            "both": ("ws", "status"),
            None: ("ws",) if q else ("ws", "status"),
        }[a.e2e_observer],
    )


def make_plan(cfg: Config, quick: bool, wanted: set[str]) -> list[Step]:
    enq = [Item(f"enqueue.c{c}", "enqueue", c) for c in cfg.conns]
    nop = [Item(f"noop.c{c}", "noop", c) for c in cfg.conns]
    e2e = [Item("e2e" if o == "ws" else "e2e_nows", "e2e", observer=o) for o in cfg.e2e_observers]
    fan = [Item(f"fanout.{n}", "fanout", n) for n in cfg.ws_clients]
    pick = {"enqueue": enq, "noop": nop, "e2e": e2e, "fanout": fan, "busy": [Item("busy", "busy")]}
    if quick:  # one start per system; the scenarios that leave a backlog go last
        order = ("e2e", "fanout", "busy", "enqueue", "noop")
        items = [i for k in order if k in wanted for i in pick[k]]
        return [Step(ZERO_MOCK, tuple(items))] if items else []
    plan = [Step(ENQUEUE_MOCK, (i,)) for i in enq] if "enqueue" in wanted else []
    if "noop" in wanted and nop:
        plan.append(Step(ENQUEUE_MOCK, tuple(nop)))
    for kind in ("e2e", "fanout"):
        if kind in wanted:
            plan += [Step(ZERO_MOCK, (i,)) for i in pick[kind]]
    if "busy" in wanted:
        plan.append(Step(busy.BUSY_MOCK, tuple(pick["busy"])))
    return plan


async def run_item(item: Item, system: System, cfg: Config, workdir: Path) -> dict[str, Any]:
    if item.kind == "enqueue":
        return await scenarios.enqueue(system, item.size, cfg, workdir)
    if item.kind == "noop":
        return await scenarios.noop(system, item.size, cfg, workdir)
    if item.kind == "e2e":
        return await scenarios.e2e(system, cfg, item.observer)
    if item.kind == "busy":
        return await busy.busy(system, cfg.latency_duration)
    return await scenarios.fanout(system, item.size, cfg, workdir)


def run_session(
    step: Step,
    system: System,
    cfg: Config,
    workdir: Path,
    raw: dict[str, Any],
    mem: dict[str, list[int]],
) -> None:
    """Start the system, run the step's items under a memory sampler, stop it."""
    items = [i for i in step.items if system.key == "ours" or not i.ours_only]
    if not items:
        return
    try:
        system.start(*step.mock)
        idle = procs.system_memory(system.roots())
        mem["idle"].append(idle.pss)
        with MemSampler(system.roots()) as sampler:
            for n, item in enumerate(items):
                if n:
                    system.redis.flushall()
                print(f"  {system.spec.label:<10} {item.name} ...", flush=True)
                t0 = time.monotonic()
                try:
                    raw[item.name] = _run(run_item(item, system, cfg, workdir))
                except (TimeoutError, BenchError, OSError, KeyError, ValueError) as exc:
                    raw[item.name] = {"error": f"{type(exc).__name__}: {exc}"}
                raw[item.name]["wall_seconds"] = round(time.monotonic() - t0, 2)
        mem["peak"].append(sampler.peak.pss)
        if not any(i.kind in ("enqueue", "noop") for i in items):
            mem["peak_fixed"].append(sampler.peak.pss)
        raw.setdefault("start_seconds", []).append(round(system.start_seconds, 2))
        raw["affinity"] = {str(k): v for k, v in system.affinity.items()}
    except BenchError as exc:
        for item in items:
            raw.setdefault(item.name, {"error": str(exc)})
    finally:
        system.stop()


def _run(coro: Any) -> dict[str, Any]:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def run_repeat(
    r: int, plan: list[Step], fleet: list[System], cfg: Config, workdir: Path
) -> dict[str, Any]:
    raw: dict[str, dict[str, Any]] = {s.key: {} for s in fleet}
    mem: dict[str, dict[str, list[int]]] = {
        s.key: {"idle": [], "peak": [], "peak_fixed": []} for s in fleet
    }
    order = fleet if r % 2 == 0 else list(reversed(fleet))
    for step in plan:
        for system in order:
            run_session(step, system, cfg, workdir, raw[system.key], mem[system.key])
    for key, m in mem.items():
        if m["idle"]:
            raw[key]["memory"] = {
                "idle_mib": round(statistics.median(m["idle"]) / 1024, 1),
                "peak_mib": round(max(m["peak"] or m["idle"]) / 1024, 1),
                "peak_fixed_mib": round(max(m["peak_fixed"]) / 1024, 1)
                if m["peak_fixed"]
                else None,
                "idle_samples_kib": m["idle"],
                "peak_samples_kib": m["peak"],
            }
    return {"order": [s.key for s in order], "raw": raw}


def figures(raw: dict[str, Any]) -> report.Figures:
    fig = report.flatten(raw)
    if raw.get("start_seconds"):
        fig["start.seconds"] = statistics.median(raw["start_seconds"])
    if "memory" in raw:
        fig["memory.idle_mib"] = raw["memory"]["idle_mib"]
        fig["memory.peak_mib"] = raw["memory"]["peak_mib"]
        fig["memory.peak_fixed_mib"] = raw["memory"]["peak_fixed_mib"]
    return fig


def prepare(keys: list[str], workdir: Path, args: argparse.Namespace, fleet: list[System]) -> None:
    """Check and build what each system needs, start their Redis servers into `fleet`."""
    specs = []
    for key in keys:
        if key == "ours":
            if not args.ours_cmd and not (REPO / "app.py").exists():
                raise BenchError(f"{REPO / 'app.py'} does not exist")
            extra = dict(kv.split("=", 1) for kv in args.ours_env)
            specs.append(
                systems.ours_spec(shlex.split(args.ours_cmd) if args.ours_cmd else None, extra)
            )
        else:
            ready = seed.prepare(workdir / "npm-ci.log", args.seed_node.resolve())
            specs.append(systems.seed_spec(ready))
    for spec in specs:
        fleet.append(System(spec, Redis(spec.key, workdir / spec.key), workdir / spec.key))


def _on_sigterm(*_: object) -> None:
    """Unwind through every `finally` (which stops what was started); ignore repeats."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(143)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = make_config(args)
    keys = [k.strip() for k in args.systems.split(",") if k.strip()]
    if not keys or set(keys) - {"ours", "seed"}:
        print("--systems takes ours, seed or both", file=sys.stderr)
        return 2
    plan = make_plan(cfg, args.quick, {s.strip() for s in args.scenarios.split(",")})
    signal.signal(signal.SIGTERM, _on_sigterm)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    pinned = procs.can_pin()
    procs.pin_self_to_load_cpu()
    CACHE.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="run-", dir=CACHE))  # logs, data dirs, scratch
    meta = {
        "machine": report.machine(),
        "pinned": pinned,
        "started": time.time(),
        "load_tool": "wrk"
        if cfg.use_wrk
        else "own client (wrk not found)"
        if not wrk.available()
        else "own client (--no-wrk)",
        "config": cfg.__dict__,
        "argv": sys.argv[1:],
        "workdir": str(workdir),
    }
    if not cfg.use_wrk:
        print(f"note: throughput from our own client: {meta['load_tool']}", flush=True)
    fleet: list[System] = []
    repeats = []
    try:
        prepare(keys, workdir, args, fleet)
        meta["settings"] = {s.key: {"cmd": s.spec.cmd, "env": s.spec.env} for s in fleet}
        for r in range(args.repeat):
            print(f"repeat {r + 1}/{args.repeat}", flush=True)
            repeats.append(run_repeat(r, plan, fleet, cfg, workdir))
    except BenchError as exc:
        print(f"bench: {exc}\n(logs kept in {workdir})", file=sys.stderr)
        return 1
    finally:
        for system in fleet:
            system.stop()
            system.redis.stop()
    rc = finish(args, meta, keys, repeats)
    if rc == 0:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"logs kept in {workdir}", file=sys.stderr)
    return rc


def finish(
    args: argparse.Namespace, meta: dict[str, Any], keys: list[str], repeats: list[dict[str, Any]]
) -> int:
    summary = {k: report.medians([figures(rep["raw"][k]) for rep in repeats]) for k in keys}
    for k in ("ours", "seed"):
        summary.setdefault(k, {})
    table_rows = report.rows(summary["ours"], summary["seed"])
    errors = report.errors_of(repeats)
    notes = report.notes_of(repeats)
    result = {
        "meta": meta,
        "summary": summary,
        "rows": table_rows,
        "errors": errors,
        "notes": notes,
        "repeats": repeats,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    m = meta["machine"]
    print()
    print(
        f"machine: {m['nproc']} CPUs, {m['cpu_model']}, Linux {m['kernel']}; "
        f"servers+Redis on CPU {procs.SERVER_CPU}, load on CPU {procs.LOAD_CPU}"
        if meta["pinned"]
        else f"machine: {m['nproc']} CPU(s), {m['cpu_model']}, "
        f"Linux {m['kernel']}; not pinned (fewer than 2 CPUs)"
    )
    print(f"throughput: {meta['load_tool']}; latency: own client; median of {len(repeats)} run(s)")
    print(report.table(table_rows, (LABELS["ours"], LABELS["seed"])))
    for note in notes:
        print(f"note: {note}")
    print(f"\nraw results: {args.out}")
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
