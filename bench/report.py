"""Figures, medians across repeats, the side-by-side table and the machine description."""

from __future__ import annotations

import os
import platform
import re
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

Figures = dict[str, float | int | None]
LABELS = {"ours": "MySpinBot", "seed": "seed-node"}
CPU_PARTS = ("main", "threads", "redis")  # see bench.procs.CpuSample
CPU_LABELS = {
    "main": "server main thread",
    "threads": "server's other threads (our workers)",
    "redis": "Redis",
    "total": "all of it",
}


def flatten(raw: dict[str, Any]) -> Figures:
    """One repeat's raw results for one system -> flat figure keys."""
    out: Figures = {}
    for name, res in raw.items():
        if not isinstance(res, dict) or "error" in res:
            continue
        if name.startswith(("enqueue.", "noop.")):
            if res.get("available") is False:
                continue
            out[f"{name}.rps"] = res["rps"]
            out[f"{name}.p50_ms"] = res["p50_ms"]
            out[f"{name}.p99_ms"] = res["p99_ms"]
            out[f"{name}.non_202"] = res["non_expected"] + res["latency_non_expected"]
            out[f"{name}.errors"] = res["socket_errors"] + res["latency_errors"]
        elif name in ("e2e", "e2e_nows"):
            out.update(_zero_work_figures(name, res))
        elif name.startswith("fanout."):
            out[f"{name}.p50_ms"] = res["p50_ms"]
            out[f"{name}.p99_ms"] = res["p99_ms"]
            out[f"{name}.missed"] = res["missed"]
        elif name == "busy":
            for probe in ("status", "ws"):
                for phase in ("idle", "busy"):
                    out[f"busy.{probe}_{phase}.p99_ms"] = res[probe][phase]["p99_ms"]
                idle, loaded = res[probe]["idle"]["p99_ms"], res[probe]["busy"]["p99_ms"]
                if idle and loaded is not None:
                    out[f"busy.{probe}_ratio.busy_vs_idle"] = round(loaded / idle, 2)
    for key in [k for k in out if k.startswith("enqueue.") and k.endswith(".rps")]:
        ceiling = out.get(key.replace("enqueue.", "noop."))
        if ceiling and out[key] is not None:
            out[key.replace(".rps", ".vs_ceiling")] = round(float(out[key]) / float(ceiling), 3)
    return out


def _zero_work_figures(name: str, res: dict[str, Any]) -> Figures:
    out: Figures = {f"{name}.jobs_per_s": res["jobs_per_s"], f"{name}.lost": res["lost"]}
    cpu = res.get("cpu_us_per_job") or {}
    for part in CPU_PARTS:
        out[f"{name}.cpu_{part}_us"] = cpu.get(part)
    if all(cpu.get(part) is not None for part in CPU_PARTS):
        out[f"{name}.cpu_total_us"] = round(sum(cpu[part] for part in CPU_PARTS), 1)
    return out


def medians(per_repeat: list[Figures]) -> Figures:
    keys = sorted({k for fig in per_repeat for k in fig})
    out: Figures = {}
    for k in keys:
        vals = [fig[k] for fig in per_repeat if fig.get(k) is not None]
        out[k] = round(statistics.median(vals), 3) if vals else None  # type: ignore[type-var]
    return out


def _row(key: str) -> tuple[str, str, str]:
    """(label, better, goal) for a figure key."""
    parts = key.split(".")
    what = parts[-1]
    if key == "start.seconds":
        return "start: command to /health 200 (s)", "lower", "<= 1 s"
    if key.startswith("busy."):
        probe, _, phase = parts[1].partition("_")
        subject = "GET /api/status/<id>" if probe == "status" else "/ws done delivery"
        if phase == "ratio":
            return f"{subject} p99: busy workers / idle", "none", "close to 1"
        return f"{subject} p99 (ms), workers {phase}", "none", ""
    if key.startswith("memory."):
        label = {
            "idle_mib": "idle",
            "peak_mib": "peak, all scenarios",
            "peak_fixed_mib": "peak, e2e + fan-out",
        }[what]
        return f"memory {label} (MiB PSS, incl. Redis)", "lower", "<= 1"
    if key.startswith("e2e"):
        how = " (1 /ws listener)" if key.startswith("e2e.") else " (nobody on /ws)"
        if what == "lost":
            return f"zero-work jobs lost{how}", "zero", "0"
        if what.startswith("cpu_"):
            part = what.removeprefix("cpu_").removesuffix("_us")
            return f"zero-work CPU per job (µs), {CPU_LABELS[part]}{how}", "lower", ""
        return f"zero-work jobs completed/s{how}", "higher", ">= 1.5"
    if key.startswith("fanout."):
        label = f"ws fan-out {parts[1]} clients"
        if what == "missed":
            return f"{label}: missed events", "zero", "0"
        return f"{label}: done delay {what.replace('_ms', '')} (ms)", "lower", "<= 1"
    route = "POST /api/generate" if key.startswith("enqueue.") else "GET /bench/noop"
    label = f"{route} {parts[1]}"
    names = {
        "rps": ("req/s", "higher", "> 1"),
        "p50_ms": ("p50 (ms)", "lower", ""),
        "p99_ms": ("p99 (ms)", "lower", "<= 1"),
        "non_202": ("non-202", "zero", "0"),
        "errors": ("socket errors", "zero", "0"),
        "vs_ceiling": ("/ own no-I/O ceiling", "higher", ">= 0.8"),
    }
    text, better, goal = names[what]
    if key.startswith("noop."):
        goal = ""
    return f"{label} {text}", better, goal


def _order(key: str) -> tuple[int, int, int, str]:
    parts = key.split(".")
    groups = ["start", "enqueue", "noop", "e2e", "e2e_nows", "fanout", "busy", "memory"]
    group = groups.index(parts[0])
    num = int(re.sub(r"\D", "", parts[1]) or 0) if len(parts) > 2 else 0
    what = [
        "rps",
        "vs_ceiling",
        "p50_ms",
        "p99_ms",
        "non_202",
        "errors",
        "jobs_per_s",
        "lost",
        "cpu_main_us",
        "cpu_threads_us",
        "cpu_redis_us",
        "cpu_total_us",
        "missed",
        "idle_mib",
        "peak_mib",
        "peak_fixed_mib",
    ]
    if parts[0] == "busy":  # status then ws, idle then busy then the ratio
        probe, _, phase = parts[1].partition("_")
        num = ("status", "ws").index(probe) * 3 + ("idle", "busy", "ratio").index(phase)
    return group, num, what.index(parts[-1]) if parts[-1] in what else 99, key


def rows(ours: Figures, seed: Figures) -> list[dict[str, Any]]:
    """Table rows: figure, both values, ratio ours/seed, which direction is better, goal."""
    out = []
    for key in sorted(set(ours) | set(seed), key=_order):
        label, better, goal = _row(key)
        a, b = ours.get(key), seed.get(key)
        ratio = None
        if better in ("higher", "lower") and a is not None and b:
            ratio = round(float(a) / float(b), 3)
        if key.endswith(".vs_ceiling"):
            ratio = a  # the figure is itself a ratio
        out.append(
            {
                "key": key,
                "figure": label,
                "ours": a,
                "seed": b,
                "ratio": ratio,
                "better": better,
                "goal": goal,
            }
        )
    return out


def _fmt(v: float | int | None) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.2f}"
    return f"{v:,}"


def table(table_rows: list[dict[str, Any]], labels: tuple[str, str]) -> str:
    head = ["figure", labels[0], labels[1], "ours/seed", "goal"]
    body = [
        [
            r["figure"],
            _fmt(r["ours"]),
            _fmt(r["seed"]),
            "-" if r["ratio"] is None else f"{r['ratio']:.2f}",
            r["goal"],
        ]
        for r in table_rows
    ]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = [
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(head, widths, strict=True))
        )
    ]
    lines.append("  ".join("-" * w for w in widths))
    for row in body:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(lines)


def _version(cmd: list[str]) -> str | None:
    if not shutil.which(cmd[0]):
        return None
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (p.stdout or p.stderr).strip().splitlines()
    return text[0] if text else None


def machine() -> dict[str, Any]:
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": _version(["node", "--version"]),
        "redis": _version(["redis-server", "--version"]),
        "wrk": _version(["wrk", "-v"]),
    }


def errors_of(repeats: list[dict[str, Any]]) -> list[str]:
    out = []
    for n, rep in enumerate(repeats):
        for key, raw in rep["raw"].items():
            for name, res in raw.items():
                if isinstance(res, dict) and "error" in res:
                    out.append(f"repeat {n + 1} {LABELS[key]} {name}: {res['error']}")
    return out


def _note(key: str, name: str, res: dict[str, Any]) -> str | None:
    who = LABELS[key]
    if name.startswith("noop.") and res.get("available") is False:
        return (
            f"{who} does not serve GET /bench/noop with MYSPINBOT_BENCH_ROUTES=1 "
            f"(answered {res.get('probe_status')}): no ceiling figure"
        )
    if name.startswith("e2e") and res.get("ws_closed_early"):
        return (
            f"{who} closed the /ws listener during the zero-work burst; the jobs it "
            "did not see were followed through GET /api/status"
        )
    if name.startswith("fanout.") and res.get("dropped"):
        return f"{who} dropped {res['dropped']} /ws clients during {name}"
    return None


def notes_of(repeats: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for n, rep in enumerate(repeats):
        for key, raw in rep["raw"].items():
            for name, res in raw.items():
                note = _note(key, name, res) if isinstance(res, dict) else None
                if note:
                    out.append(f"repeat {n + 1}: {note}")
    return out
