"""Job events from Redis pub/sub to every WebSocket of this process.

One subscriber per process. Each event is framed once (server frames are unmasked, so
the same bytes serve every client) and written straight to every socket that can take
it without waiting. A client that cannot — its socket's buffer is full, or it is still
catching up — gets the frame in its own bounded outbox, drained by its own task with a
send timeout, so a stalled client is dropped and never slows the others. After the
subscriber reconnects, every client gets a fresh snapshot (pub/sub is at-most-once).

A client's snapshot is read only while the subscription is live on the server, and every
frame that arrives while it is read or sent queues behind it: the snapshot is always the
first frame, and each event published after its read follows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from ..errors import REDIS_OUTAGE
from ..jobs import keys

log = logging.getLogger("myspinbot.events")

SNAPSHOT_SIZE = 50
SEND_TIMEOUT = 5.0
MAX_PENDING = 20_000  # frames waiting for one client before it is dropped as too slow
HEALTH_KEY = "\x00health"
HEALTH_EVERY = 3.0  # seconds between health frames for clients that asked for them
SNAPSHOT_RETRY = 0.5
SUBSCRIBE_TIMEOUT = 5.0
# The subscriber retries quickly (a refused connection costs nothing): until it is back, the
# process's sockets miss events and wait for their resync.
RECONNECT_FIRST = 0.05
RECONNECT_MAX = 0.5


def text_frame(payload: bytes) -> bytes:
    """A complete, unmasked WebSocket text frame (RFC 6455 5.2) carrying `payload`."""
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 1 << 16:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + payload


def snapshot_frame(docs: list[bytes]) -> bytes:
    """The first frame: the newest jobs, spliced from their stored JSON without re-encoding."""
    return text_frame(b'{"type":"snapshot","jobs":[' + b",".join(docs) + b"]}")


class FrameWriter(Protocol):
    """How the hub reaches one socket (api/ws.py adapts Sanic's WebSocket)."""

    def try_write(self, frame: bytes) -> bool:
        """Write now if the socket takes it without waiting; False means "queue it"."""
        ...

    async def send(self, frame: bytes) -> None: ...


class Client:
    """One WebSocket connection's outbox.

    A progress frame replaces the job's pending progress frame (each carries the whole
    job); state changes (queued, done, error, cancelled) are always delivered, in order.
    The fast path (`try_write`) is taken only by a client with nothing ahead of the frame:
    no snapshot still to send, nothing pending, no frames held by its pump.
    """

    def __init__(self, writer: FrameWriter, wants_health: bool = False) -> None:
        self.writer = writer
        self.pending: dict[Any, bytes] = {}
        # Its pump holds frames not yet written, or is reading the snapshot: frames queue
        # behind them. A new client starts busy: its snapshot goes first.
        self.busy = True
        self.needs_snapshot = True
        self.wants_health = wants_health
        self.wake = asyncio.Event()
        self.wake.set()
        self.overflowed = False
        self._serial = 0

    def offer(self, job_id: str, frame: bytes, replaceable: bool = True) -> None:
        idle = not (self.pending or self.busy or self.needs_snapshot)
        if idle and self.writer.try_write(frame):
            return
        if len(self.pending) >= MAX_PENDING:
            self.overflowed = True
        if replaceable:
            self.pending[job_id] = frame
        else:
            self.pending.pop(job_id, None)  # superseded by this newer state
            self._serial += 1
            self.pending[(job_id, self._serial)] = frame
        self.wake.set()

    def resync(self) -> None:
        """Events may have been missed: a new snapshot replaces whatever is pending."""
        self.pending.clear()
        self.needs_snapshot = True
        self.wake.set()

    def take(self) -> list[bytes]:
        frames = list(self.pending.values())
        self.pending.clear()
        self.wake.clear()
        return frames

    def start_snapshot(self) -> None:
        """Everything pending is older than the snapshot about to be read: drop it (but a
        health frame is not job state, so it stays, to follow the snapshot)."""
        health = self.pending.get(HEALTH_KEY)
        self.pending.clear()
        if health is not None:
            self.pending[HEALTH_KEY] = health
        self.needs_snapshot = False
        self.wake.clear()


class Hub:
    def __init__(
        self,
        client: aioredis.Redis,
        snapshot: Callable[[], Awaitable[list[bytes]]],
        health: Callable[[], Awaitable[dict[str, Any]]],
        on_count: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.redis = client
        self.snapshot = snapshot
        self.health = health
        self.on_count = on_count
        self.clients: set[Client] = set()
        # Set while the subscription is live on the server (its confirmation was read).
        self.connected = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name="events-subscriber"),
            asyncio.create_task(self._health_loop(), name="events-health"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def send_health_now(self, client: Client) -> None:
        frame = text_frame(orjson.dumps({"type": "health", "health": await self.health()}))
        client.offer(HEALTH_KEY, frame)

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_EVERY)
            if any(client.wants_health for client in self.clients):
                self.broadcast_health(await self.health())

    def join(self, writer: FrameWriter) -> Client:
        client = Client(writer)
        self.clients.add(client)
        self.on_count(len(self.clients))
        return client

    def leave(self, client: Client) -> None:
        self.clients.discard(client)
        self.on_count(len(self.clients))

    def broadcast(self, raw: bytes) -> None:
        """Send one published event to every client: parsed and framed once, not per client."""
        try:
            event = orjson.loads(raw)
            job_id, replaceable = event["job"]["id"], event["type"] == "progress"
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("ignored a malformed event")
            return
        frame = text_frame(raw)
        for client in self.clients:
            client.offer(job_id, frame, replaceable)

    def broadcast_health(self, health: dict[str, Any]) -> None:
        frame = text_frame(orjson.dumps({"type": "health", "health": health}))
        for client in self.clients:
            if client.wants_health:
                client.offer(HEALTH_KEY, frame)

    async def _listen(self) -> None:
        # The client given to the hub must not reconnect silently (redis-py's retries would
        # resubscribe behind our back): every lost connection has to surface here, because
        # events published meanwhile are gone and the clients must resync.
        delay, away = RECONNECT_FIRST, False
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(keys.EVENTS_CHANNEL)
                await subscription_confirmed(pubsub)
                # Only now can a snapshot read miss nothing that follows it; and events may
                # have been missed while we were away: everyone resyncs.
                for client in self.clients:
                    client.resync()
                self.connected.set()
                if away:
                    log.info("event subscriber back; %d clients resync", len(self.clients))
                delay, away = RECONNECT_FIRST, False
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is not None and message["type"] == "message":
                        self.broadcast(message["data"])
            except (RedisError, OSError) as exc:
                if self.connected.is_set():
                    log.warning("event subscriber lost Redis (%s); reconnecting", exc)
                self.connected.clear()
                away = True
            except Exception:
                # Never let the one subscriber of this process die: nobody would get events.
                log.exception("event subscriber failed; reconnecting")
                self.connected.clear()
                away = True
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX)

    async def pump(self, client: Client) -> None:
        """Send a client's frames until it fails or stalls; runs as the connection's own task."""
        while True:
            await client.wake.wait()
            if client.overflowed:
                raise ConnectionAbortedError("client fell too far behind")
            client.busy = True
            try:
                frames = await self._snapshot(client) if client.needs_snapshot else client.take()
                # One timer per batch (wait_for would start a task per frame, per client).
                async with asyncio.timeout(SEND_TIMEOUT):
                    for frame in frames:
                        await client.writer.send(frame)
            finally:
                client.busy = False

    async def _snapshot(self, client: Client) -> list[bytes]:
        """The client's snapshot frame, read after the live subscription and after any resync.

        Events that arrive while it is read queue behind it (the client is busy), so an event
        newer than the snapshot is never written before it, and none is lost after it.
        """
        while True:
            await self.connected.wait()
            client.start_snapshot()
            try:
                docs = await self.snapshot()
            except REDIS_OUTAGE as exc:
                # Redis flapped between the resubscribe and the read: try again shortly.
                log.info("snapshot failed (%s); retrying", exc)
                client.needs_snapshot = True
                await asyncio.sleep(SNAPSHOT_RETRY)
                continue
            except RedisError:
                log.exception("snapshot failed; retrying")
                client.needs_snapshot = True
                await asyncio.sleep(SNAPSHOT_RETRY)
                continue
            if client.needs_snapshot:
                continue  # the subscriber reconnected during the read, which may predate it
            if client.pending:
                client.wake.set()  # what arrived during the read follows the snapshot
            return [snapshot_frame(docs)]


async def subscription_confirmed(pubsub: PubSub) -> None:
    """Wait for SUBSCRIBE's reply: until Redis has processed it, events are not ours.

    Sending the command is not enough: a snapshot read on another connection could be
    served before it, and an event published in between would reach nobody.
    """
    async with asyncio.timeout(SUBSCRIBE_TIMEOUT):
        while True:
            message = await pubsub.get_message(timeout=SUBSCRIBE_TIMEOUT)
            if message is not None and message["type"] == "subscribe":
                return
