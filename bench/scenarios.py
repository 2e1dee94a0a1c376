"""The measured scenarios; each takes a running system and returns plain figures."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from bench import wrk
from bench.httpload import build_request, percentile, run_load
from bench.procs import BenchError, system_cpu
from bench.systems import REPO, System, http_get, venv_python
from bench.ws import Observer

GENERATE_BODY = '{"prompt":"bench"}'


@dataclass(frozen=True)
class Config:
    """Workload sizes (see `bench --help`)."""

    duration: float
    latency_duration: float
    warmup: float
    conns: tuple[int, ...]
    jobs: int
    submit_conns: int
    e2e_timeout: float
    ws_clients: tuple[int, ...]
    ws_jobs: int
    ws_procs: int
    ws_gap: float
    use_wrk: bool
    e2e_observers: tuple[str, ...] = ("ws",)


def iso_epoch(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _ms(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


async def _throughput(
    system: System,
    path: str,
    method: str,
    body: str,
    expect: int,
    conns: int,
    cfg: Config,
    workdir: Path,
) -> dict[str, Any]:
    """wrk for throughput (or our client when wrk is missing), then our client for latency."""
    request = build_request(method, path, system.port, body.encode())
    if cfg.warmup > 0:
        await run_load(system.port, request, conns, duration=cfg.warmup)
    out: dict[str, Any] = {"conns": conns}
    if cfg.use_wrk:
        w = await asyncio.to_thread(
            wrk.run, system.port, path, method, body, conns, cfg.duration, workdir
        )
        out.update(
            tool="wrk",
            rps=round(w.rps, 1),
            requests=w.requests,
            non_expected=w.non(expect),
            socket_errors=w.socket_errors,
        )
    else:
        r = await run_load(system.port, request, conns, duration=cfg.duration)
        out.update(
            tool="client",
            rps=round(r.requests / r.elapsed, 1),
            requests=r.requests,
            non_expected=r.requests - r.statuses.get(expect, 0),
            socket_errors=r.errors,
        )
    lat = await run_load(system.port, request, conns, duration=cfg.latency_duration)
    out.update(
        p50_ms=_ms(percentile(lat.latencies_ms, 50)),
        p99_ms=_ms(percentile(lat.latencies_ms, 99)),
        max_ms=_ms(max(lat.latencies_ms, default=None)),
        latency_requests=lat.requests,
        latency_non_expected=lat.requests - lat.statuses[expect],
        latency_errors=lat.errors,
        client_rps=round(lat.requests / lat.elapsed, 1),
        statuses={str(k): v for k, v in lat.statuses.items()},
    )
    return out


async def enqueue(system: System, conns: int, cfg: Config, workdir: Path) -> dict[str, Any]:
    return await _throughput(
        system, "/api/generate", "POST", GENERATE_BODY, 202, conns, cfg, workdir
    )


async def noop(system: System, conns: int, cfg: Config, workdir: Path) -> dict[str, Any]:
    status, _ = await asyncio.to_thread(http_get, system.port, "/bench/noop")
    if status != 202:
        return {"available": False, "probe_status": status}
    out = await _throughput(system, "/bench/noop", "GET", "", 202, conns, cfg, workdir)
    out["available"] = True
    return out


class _Done:
    """Collects `done` events (and failures) seen on one /ws connection."""

    def __init__(self) -> None:
        self.finished: dict[str, str | None] = {}
        self.failed: set[str] = set()
        self.events = 0
        self.waiters: dict[str, asyncio.Event] = {}
        self.last = time.monotonic()
        self.last_done_wall = 0.0

    def __call__(self, payload: bytes, t: float) -> None:
        self.events += 1
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        kind, job = msg.get("type"), msg.get("job") or {}
        if kind in ("done", "error", "cancelled") and job.get("id"):
            if kind == "done":
                self.finished[job["id"]] = job.get("finished_at")
                self.last_done_wall = t
            else:
                self.failed.add(job["id"])
            self.last = time.monotonic()
            if job["id"] in self.waiters:
                self.waiters[job["id"]].set()


async def _status_of(port: int, ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """GET /api/status/<id> for each id (a few connections, bounded in time)."""
    jobs: dict[str, dict[str, Any]] = {}

    def on_response(status: int, body: bytes) -> None:
        if status == 200:
            job = orjson.loads(body)
            jobs[job["id"]] = job

    requests: Iterator[bytes] = (build_request("GET", f"/api/status/{i}", port) for i in ids)
    await run_load(port, requests, 8, on_response=on_response, hard_timeout=timeout)
    return jobs


class _Submitted:
    """Ids of the jobs that a bulk submit got 202 for."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.refused = 0

    def __call__(self, status: int, body: bytes) -> None:
        if status == 202:
            self.ids.append(orjson.loads(body)["id"])
        else:
            self.refused += 1


async def _wait_ws(obs: Observer, done: _Done, ids: list[str], timeout: float) -> None:
    """Until every id has its done/error event, no event for a while, or the bound."""
    deadline = time.monotonic() + timeout
    stall = max(15.0, min(60.0, timeout / 4))
    while time.monotonic() < deadline and not obs.is_closed:
        if all(i in done.finished or i in done.failed for i in ids):
            return
        if time.monotonic() - done.last > stall:
            return
        await asyncio.sleep(0.1)


async def _wait_status(port: int, ids: list[str], timeout: float) -> None:
    """Poll the last submitted ids (they finish last in a FIFO queue) twice a second,
    then every id still unfinished once a second, bounded."""
    deadline = time.monotonic() + timeout
    pending, rest = ids[-32:], ids[:-32]
    while (pending or rest) and time.monotonic() < deadline:
        if not pending:
            pending, rest = rest, []
        jobs = await _status_of(port, pending, timeout=30.0)
        pending = [i for i in pending if jobs.get(i, {}).get("state") in ("queued", "active")]
        await asyncio.sleep(0.5 if rest else 1.0)


async def e2e(system: System, cfg: Config, observer: str) -> dict[str, Any]:
    """Submit cfg.jobs zero-work jobs at once, count them completed, all ids accounted for.

    Rate = completed / (last `finished_at` - first submit). With the `ws` observer the
    `done` events of one /ws connection are counted (ids not seen there are checked
    by GET /api/status); with `status` nothing listens and every id is read at the end.
    """
    port = system.port
    done = _Done()
    sub = _Submitted()
    request = build_request("POST", "/api/generate", port, GENERATE_BODY.encode())
    server, redis = system.pids()
    async with contextlib.AsyncExitStack() as stack:
        obs = None
        if observer == "ws":
            obs = await stack.enter_async_context(Observer(port, done))
        cpu_before = system_cpu(server, redis)
        t_first = time.time()
        load = await run_load(
            port,
            request,
            cfg.submit_conns,
            total=cfg.jobs,
            on_response=sub,
            hard_timeout=cfg.e2e_timeout,
        )
        deadline = time.monotonic() + cfg.e2e_timeout
        if obs is not None:
            await _wait_ws(obs, done, sub.ids, cfg.e2e_timeout)
        ws_closed = obs is not None and obs.is_closed
        if obs is None or ws_closed:  # a dropped listener: the rest is read from the API
            rest = [i for i in sub.ids if i not in done.finished and i not in done.failed]
            await _wait_status(port, rest, max(1.0, deadline - time.monotonic()))
        cpu = system_cpu(server, redis).minus(cpu_before)  # before the final status reads
    missing = [i for i in sub.ids if i not in done.finished]
    checked = await _status_of(port, missing, timeout=120.0) if missing else {}
    unknown = sum(1 for i in missing if i not in checked)
    finished = {i: done.finished[i] for i in sub.ids if i in done.finished}
    for i, job in checked.items():
        if job.get("state") == "completed":
            finished[i] = job.get("finished_at")
    ends = [e for e in (iso_epoch(v) for v in finished.values()) if e is not None]
    span = (max(ends) - t_first) if ends else None
    return {
        "observer": observer,
        "jobs": cfg.jobs,
        "submitted": len(sub.ids),
        "refused": sub.refused,
        "submit_errors": load.errors,
        "submit_seconds": round(load.elapsed, 3),
        "completed": len(finished),
        "lost": len(sub.ids) - len(finished),
        "failed_events": len(done.failed),
        "ws_done_seen": len(done.finished),
        "status_checked": len(missing),
        "status_not_found": unknown,
        "ws_closed_early": ws_closed,
        "seconds": None if span is None else round(span, 3),
        "ws_last_done_seconds": round(done.last_done_wall - t_first, 3)
        if done.last_done_wall
        else None,
        "jobs_per_s": round(len(finished) / span, 1) if span else None,
        # CPU per completed job, submission, events and the /api/status follow-up included
        "cpu_us_per_job": {
            part: round(seconds * 1e6 / len(finished), 1) if finished else None
            for part, seconds in vars(cpu).items()
        },
    }


async def _start_fan(port: int, n: int, out: Path, timeout: float) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        venv_python(),
        "-m",
        "bench.wsfan",
        "--port",
        str(port),
        "--clients",
        str(n),
        "--out",
        str(out),
        "--connect-timeout",
        str(timeout),
        "--max-seconds",
        "900",
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=sys.stderr,
        start_new_session=True,
    )


async def _submit_one(port: int) -> str | None:
    got: list[str] = []

    def on_response(status: int, body: bytes) -> None:
        if status == 202:
            got.append(orjson.loads(body)["id"])

    await run_load(
        port,
        build_request("POST", "/api/generate", port, GENERATE_BODY.encode()),
        1,
        total=1,
        on_response=on_response,
        hard_timeout=30,
    )
    return got[0] if got else None


async def fanout(system: System, clients: int, cfg: Config, workdir: Path) -> dict[str, Any]:
    """`clients` sockets on /ws; jobs one at a time; delay of each `done` to each client."""
    port = system.port
    nproc = max(1, min(cfg.ws_procs, clients))
    shares = [clients // nproc + (1 if i < clients % nproc else 0) for i in range(nproc)]
    outs = [workdir / f"fan-{system.key}-{clients}-{i}.json" for i in range(nproc)]
    connect_timeout = 30.0 + clients / 20
    fans = []
    try:
        for n, out in zip(shares, outs, strict=True):
            out.unlink(missing_ok=True)
            fans.append(await _start_fan(port, n, out, connect_timeout))
        ready = [
            await asyncio.wait_for(f.stdout.readline(), connect_timeout + 30)  # type: ignore[union-attr]
            for f in fans
        ]
        opened = sum(int(r.split()[1]) for r in ready if r.startswith(b"READY"))
        ids = await _run_jobs(port, cfg)
        for f in fans:
            f.stdin.write(b"STOP\n")  # type: ignore[union-attr]
            await f.stdin.drain()  # type: ignore[union-attr]
        for f in fans:
            await asyncio.wait_for(f.wait(), 120)
    finally:
        for f in fans:
            if f.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    f.kill()
                await f.wait()
    return _fan_figures(clients, opened, ids, outs)


async def _run_jobs(port: int, cfg: Config) -> list[str]:
    done = _Done()
    ids: list[str] = []
    async with Observer(port, done):
        for _ in range(cfg.ws_jobs):
            job_id = await _submit_one(port)
            if job_id is None:
                raise BenchError("POST /api/generate did not answer 202 during fan-out")
            ids.append(job_id)
            event = done.waiters.setdefault(job_id, asyncio.Event())
            if job_id not in done.finished and job_id not in done.failed:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(event.wait(), 30)
            await asyncio.sleep(cfg.ws_gap)
    return ids


def _fan_figures(clients: int, opened: int, ids: list[str], outs: list[Path]) -> dict[str, Any]:
    wanted = set(ids)
    seen: set[tuple[int, int, str]] = set()
    kernel: list[float] = []
    user: list[float] = []
    failed = dropped = messages = 0
    for n, out in enumerate(outs):
        data = orjson.loads(out.read_bytes())
        failed += data["failed"]
        dropped += data["dropped"]
        messages += data["messages"]
        for idx, job_id, finished_at, kts, uts in data["records"]:
            key = (n, idx, job_id)
            fin = iso_epoch(finished_at)
            if job_id not in wanted or key in seen or fin is None:
                continue
            seen.add(key)
            kernel.append((kts - fin) * 1000)
            user.append((uts - fin) * 1000)
    expected = clients * len(ids)
    lag = [u - k for u, k in zip(user, kernel, strict=True)]
    return {
        "clients": clients,
        "connected": opened,
        "connect_failed": failed,
        "dropped": dropped,
        "jobs": len(ids),
        "expected": expected,
        "received": len(seen),
        "missed": expected - len(seen),
        "messages": messages,
        "p50_ms": _ms(percentile(kernel, 50)),
        "p99_ms": _ms(percentile(kernel, 99)),
        "max_ms": _ms(max(kernel, default=None)),
        "p50_user_ms": _ms(percentile(user, 50)),
        "p99_user_ms": _ms(percentile(user, 99)),
        "client_lag_p99_ms": _ms(percentile(lag, 99)),
    }
