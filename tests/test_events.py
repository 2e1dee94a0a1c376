"""The events hub's promise to every socket: the snapshot first, then every later change.

Each test hunts one way to break it. The hub tests run a real Hub on a real Redis and hold
a snapshot read open at the moment that matters, so the window they aim at is hit every
time; the server tests open many sockets while events flow, or take Redis away and back
with sockets open, and check that every socket converges on what the store holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from reliability_support import EventLog, RedisServer, api_server, reliability_env
from support import running_server, wait_until

from myspinbot.api.connections import redis_client
from myspinbot.api.hub import Hub
from myspinbot.jobs import keys

DEADLINE = 10.0


@pytest.fixture()
def store(redis_binary: str, tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(redis_binary, tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


def payload(frame: bytes) -> dict[str, Any]:
    """The JSON object inside one unmasked server frame."""
    size = frame[1] & 0x7F
    offset = 2 if size < 126 else 4 if size == 126 else 10
    return orjson.loads(frame[offset:])


class Socket:
    """The socket end of a client: it takes every frame at once, as an idle peer does."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    def try_write(self, frame: bytes) -> bool:
        self.frames.append(payload(frame))
        self.arrived.set()
        return True

    async def send(self, frame: bytes) -> None:
        self.try_write(frame)

    async def until(self, predicate: Callable[[list[dict[str, Any]]], bool]) -> None:
        async with asyncio.timeout(DEADLINE):
            while not predicate(self.frames):
                self.arrived.clear()
                await self.arrived.wait()


def event(kind: str, job_id: str, progress: int) -> bytes:
    return orjson.dumps({"type": kind, "job": {"id": job_id, "progress": progress}})


def snapshots(frames: list[dict[str, Any]]) -> list[list[Any]]:
    return [frame["jobs"] for frame in frames if frame["type"] == "snapshot"]


def job_ids(frames: list[dict[str, Any]]) -> list[str]:
    return [frame["job"]["id"] for frame in frames if "job" in frame]


async def no_health() -> dict[str, Any]:
    return {}


async def run_hub(
    url: str, snapshot: Callable[[], Awaitable[list[bytes]]], scenario: Callable[[Hub], Awaitable]
) -> None:
    subscriber = redis_client(url, retries=0)  # as services.py gives it to the hub
    hub = Hub(subscriber, snapshot, no_health)
    hub.start()
    try:
        await scenario(hub)
    finally:
        await hub.stop()
        await subscriber.aclose()


async def attach(hub: Hub, socket: Socket) -> asyncio.Task[None]:
    """What api/ws.py does for a new connection: join, then run the client's pump."""
    client = hub.join(socket)
    return asyncio.create_task(hub.pump(client))


def test_an_event_that_arrives_during_the_snapshot_read_follows_the_snapshot(
    store: RedisServer,
) -> None:
    """The fast path must not write to a socket whose snapshot is still being read."""

    async def scenario(hub: Hub) -> None:
        publisher = aioredis.Redis.from_url(store.url)
        watcher, newcomer = Socket(), Socket()
        calls = 0

        async def snapshot() -> list[bytes]:
            nonlocal calls
            calls += 1
            if calls == 2:  # the newcomer's: an event lands after the read, before the send
                await publisher.publish(keys.EVENTS_CHANNEL, event("progress", "J1", 60))
                # The watcher is idle, so it gets the event straight away: once it has it,
                # the hub has offered it to every client, the newcomer included.
                await watcher.until(lambda frames: "J1" in job_ids(frames))
            return []

        hub.snapshot = snapshot
        tasks = [await attach(hub, watcher)]
        await watcher.until(lambda frames: len(frames) == 1)
        tasks.append(await attach(hub, newcomer))
        await newcomer.until(lambda frames: "J1" in job_ids(frames))
        assert [frame["type"] for frame in newcomer.frames] == ["snapshot", "progress"]
        for task in tasks:
            task.cancel()
        await publisher.aclose()

    asyncio.run(run_hub(store.url, no_snapshot, scenario))


async def no_snapshot() -> list[bytes]:
    return []


class SlowLink:
    """A unix-socket relay to Redis that holds each client-to-server chunk for `delay` s.

    Only the subscriber's connection goes through it, so whatever the subscriber sends
    reaches Redis late, as over a slow network.
    """

    def __init__(self, target: Path, path: Path, delay: float) -> None:
        self.target, self.path, self.delay = target, path, delay
        self.server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> SlowLink:
        self.server = await asyncio.start_unix_server(self._relay, path=str(self.path))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_unix_connection(str(self.target))

        async def copy(source, sink, delay: float) -> None:
            with contextlib.suppress(OSError):
                while chunk := await source.read(65536):
                    await asyncio.sleep(delay)
                    sink.write(chunk)
                    await sink.drain()
            sink.close()

        await asyncio.gather(copy(reader, up_writer, self.delay), copy(up_reader, writer, 0))


def test_a_client_snapshot_waits_until_the_subscription_is_active(
    store: RedisServer, tmp_path: Path
) -> None:
    """SUBSCRIBE is sent, not yet done: a snapshot read before Redis has it misses events."""

    async def scenario(hub: Hub) -> None:
        publisher = aioredis.Redis.from_url(store.url)
        socket = Socket()

        async def snapshot() -> list[bytes]:
            # Published right after this client's snapshot was read: it must reach the client.
            await publisher.publish(keys.EVENTS_CHANNEL, event("queued", "J2", 0))
            return []

        hub.snapshot = snapshot
        task = await attach(hub, socket)
        await socket.until(lambda frames: "J2" in job_ids(frames))
        assert [frame["type"] for frame in socket.frames] == ["snapshot", "queued"]
        task.cancel()
        await publisher.aclose()

    async def main() -> None:
        async with SlowLink(store.socket, tmp_path / "slow.sock", delay=0.3) as link:
            await run_hub(link.url, no_snapshot, scenario)

    asyncio.run(main())


class Lines(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_a_resync_during_a_snapshot_read_brings_a_second_snapshot(store: RedisServer) -> None:
    """The subscriber reconnects while a client's snapshot is being read: that one may predate
    the reconnect, so the client must get another one, read after it."""

    async def scenario(hub: Hub) -> None:
        admin = aioredis.Redis.from_url(store.url)
        socket = Socket()
        calls = 0

        async def snapshot() -> list[bytes]:
            nonlocal calls
            calls += 1
            if calls == 1:
                await admin.client_kill_filter(_type="pubsub")
                # Hold this read until the hub has resubscribed and asked for new snapshots.
                async with asyncio.timeout(DEADLINE):
                    while not any("event subscriber back" in line for line in logged):
                        await asyncio.sleep(0.01)
                await admin.publish(keys.EVENTS_CHANNEL, event("queued", "J3", 0))
            return [orjson.dumps({"id": f"S{calls}"})]

        hub.snapshot = snapshot
        task = await attach(hub, socket)
        await socket.until(lambda frames: [{"id": "S2"}] in snapshots(frames))
        await admin.publish(keys.EVENTS_CHANNEL, event("done", "J3", 100))
        await socket.until(lambda frames: frames[-1]["type"] == "done")
        assert socket.frames[0]["type"] == "snapshot"
        # Whether the read that predates the resync was sent or not, the last snapshot is the
        # one read after it, and what follows it arrives.
        assert snapshots(socket.frames)[-1] == [{"id": "S2"}]
        task.cancel()
        await admin.aclose()

    logged: list[str] = []
    handler = Lines(logged)
    events_log = logging.getLogger("myspinbot.events")
    events_log.addHandler(handler)
    level = events_log.level
    events_log.setLevel(logging.INFO)
    try:
        asyncio.run(run_hub(store.url, no_snapshot, scenario))
    finally:
        events_log.removeHandler(handler)
        events_log.setLevel(level)


# --- the whole server -------------------------------------------------------------------


def view(frames: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What a client shows after these frames (as the dashboard does: a snapshot replaces)."""
    jobs: dict[str, dict[str, Any]] = {}
    for frame in frames:
        if frame["type"] == "snapshot":
            jobs = {job["id"]: job for job in frame["jobs"]}
        elif "job" in frame:
            jobs[frame["job"]["id"]] = frame["job"]
    return jobs


def stored(http: httpx.Client) -> dict[str, dict[str, Any]]:
    return {job["id"]: job for job in http.get("/api/jobs", params={"limit": 200}).json()["jobs"]}


def all_finished(http: httpx.Client, count: int) -> dict[str, dict[str, Any]] | None:
    jobs = stored(http)
    done = len(jobs) == count and all(j["state"] == "completed" for j in jobs.values())
    return jobs if done else None


def converged(sockets: list[EventLog], jobs: dict[str, dict[str, Any]]) -> bool:
    return all(view(socket.snapshot()) == jobs for socket in sockets)


def describe_divergence(sockets: list[EventLog], jobs: dict[str, dict[str, Any]]) -> str:
    lines = []
    for number, socket in enumerate(sockets):
        seen = view(socket.snapshot())
        wrong = {
            i: (seen.get(i) or {}).get("state") for i, job in jobs.items() if seen.get(i) != job
        }
        if wrong:
            lines.append(f"socket {number}: {wrong}")
    return "; ".join(lines)


JOBS = 40  # fewer than the snapshot's 50: every job is in every snapshot


def test_sockets_that_connect_while_events_flow_get_the_snapshot_first_and_miss_nothing(
    tmp_path: Path,
) -> None:
    with (
        running_server(
            tmp_path / "data",
            MYSPINBOT_MOCK_STEPS="20",
            MYSPINBOT_MOCK_STEP_SECONDS="0.01",
            MYSPINBOT_WORKER_THREADS="4",
            MYSPINBOT_ACCESS_LOG="false",
        ) as server,
        server.client() as http,
    ):
        submitted = threading.Event()

        def submit() -> None:
            with server.client() as submitter:
                for number in range(JOBS):
                    response = submitter.post("/api/generate", json={"prompt": f"flow {number}"})
                    assert response.status_code == 202, response.text
            submitted.set()

        thread = threading.Thread(target=submit, daemon=True)
        thread.start()
        sockets: list[EventLog] = []
        try:
            # Connect sockets for as long as jobs produce events, and a little beyond.
            while not (submitted.is_set() and all_finished(http, JOBS)) and len(sockets) < 400:
                sockets.append(EventLog(server.ws_url))
            thread.join(30)
            jobs = wait_until(lambda: all_finished(http, JOBS), 60, "every job to complete")
            assert len(sockets) >= 20, "the jobs finished before sockets could connect"
            wait_until(lambda: all(s.snapshot() for s in sockets), DEADLINE, "first frames")
            firsts = [socket.snapshot()[0]["type"] for socket in sockets]
            assert firsts == ["snapshot"] * len(sockets), firsts
            try:
                wait_until(lambda: converged(sockets, jobs), DEADLINE, "every socket to converge")
            except AssertionError:
                raise AssertionError(describe_divergence(sockets, jobs)) from None
        finally:
            for socket in sockets:
                socket.close()


ROUNDS = 3


@pytest.mark.slow
def test_sockets_open_through_repeated_redis_outages_get_a_fresh_snapshot_and_every_later_event(
    store: RedisServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    env = reliability_env(data, store.url, MYSPINBOT_MOCK_STEPS="3")
    with api_server(data, env) as server, server.client() as http:
        sockets = [EventLog(server.ws_url) for _ in range(5)]
        submitted = 0

        def post(prompt: str) -> str:
            nonlocal submitted
            response = http.post("/api/generate", json={"prompt": prompt})
            assert response.status_code == 202, response.text
            submitted += 1
            return response.json()["id"]

        try:
            wait_until(
                lambda: all(s.count("snapshot") == 1 for s in sockets), DEADLINE, "snapshots"
            )
            for round_ in range(1, ROUNDS + 1):
                snapshots = [socket.count("snapshot") for socket in sockets]
                store.kill()
                wait_until(
                    lambda r=round_: server.log().count("event subscriber lost Redis") >= r,
                    DEADLINE,
                    "the hub to notice the outage",
                )
                assert http.get("/health").status_code == 503
                store.start()
                wait_until(lambda: http.get("/health").status_code == 200, 30, "health back")
                post(f"right after outage {round_}")  # its events may precede the resync
                wait_until(
                    lambda before=snapshots: all(
                        s.count("snapshot") > n for s, n in zip(sockets, before, strict=True)
                    ),
                    30,
                    f"a fresh snapshot on every socket after outage {round_}",
                )
                later = post(f"after the resync of outage {round_}")
                wait_until(
                    lambda job=later: all(job in s.done_ids() for s in sockets),
                    30,
                    f"every socket to get the done of a job submitted after outage {round_}",
                )
            jobs = wait_until(lambda: all_finished(http, submitted), 60, "every job to complete")
            try:
                wait_until(lambda: converged(sockets, jobs), DEADLINE, "every socket to converge")
            except AssertionError:
                raise AssertionError(describe_divergence(sockets, jobs)) from None
        finally:
            for socket in sockets:
                socket.close()
