"""Follow one prompt to its end: events filtered by prompt_id, with HTTP as the safety net.

Events reach us only while our socket is connected, and a socket can go silent or drop.
So silence past `idle_seconds`, or a dropped socket, makes the follower ask ComfyUI
itself: /queue first, then /history/{id} (a prompt moves from running to history in one
step under ComfyUI's queue lock, so in that order it cannot slip between the two). A
prompt found in neither, twice, is lost (ComfyUI restarted): a transient error, and the
caller may resubmit. Lost sockets are reopened with the same clientId, so the events of
the running prompt flow again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .comfyui_http import ComfyUIHTTP
from .comfyui_socket import Event, EventSocket, Preview, SocketLost
from .errors import (
    EngineError,
    EngineUnreachable,
    ExecutionFailed,
    PromptCancelled,
    PromptInterrupted,
    PromptLost,
    TransientEngineError,
)
from .workflows import NodeRef, node_ref

TERMINAL_MESSAGES = ("execution_success", "execution_error", "execution_interrupted")
TICK_SECONDS = 0.5
LOST_CHECKS = 2


class RunListener:
    """What a pipeline hears while a prompt runs. Override what you need.

    Any method may raise (a cancelled job, a stopping worker): the follower closes its
    socket and lets the exception through, leaving the prompt in ComfyUI untouched, so
    the caller decides whether to `cancel` it or to re-attach later.
    """

    def queued(self, ahead: int) -> None:
        """The prompt waits in ComfyUI's queue with `ahead` prompts to run before it."""

    def started(self) -> None:
        """ComfyUI began executing the prompt."""

    def node(self, node: NodeRef) -> None:
        """ComfyUI began executing this node."""

    def progress(self, value: float, maximum: float, node: NodeRef | None) -> None:
        """A node (a sampler, a trainer) reported step `value` of `maximum`."""

    def preview(self, image: bytes, mime: str, node: NodeRef | None) -> None:
        """A preview frame of the running node (JPEG or PNG bytes)."""

    def waiting(self) -> None:
        """Called at least every half second: the place to notice a cancel or a shutdown."""


@dataclass
class FollowState:
    started: bool = False
    ahead: int | None = None
    lost_checks: int = 0
    events: list[str] = field(default_factory=list)


class PromptFollower:
    """Follows one prompt through a socket it (re)opens; returns its history entry."""

    def __init__(
        self,
        http: ComfyUIHTTP,
        prompt_id: str,
        client_id: str,
        graph: Mapping[str, Any],
        listener: RunListener,
        should_cancel: Callable[[], bool] | None = None,
    ) -> None:
        self.http = http
        self.server = http.server
        self.prompt_id = prompt_id
        self.client_id = client_id
        self.graph = graph
        self.listener = listener
        self.should_cancel = should_cancel
        self.state = FollowState()
        self.socket: EventSocket | None = None
        self.credential_key: str | None = None
        self.cancelled = False

    # -- entry points --------------------------------------------------------------------

    def follow(self, socket: EventSocket | None) -> dict[str, Any]:
        """Until the prompt ends; `socket` is already open (or None to open one)."""
        self.socket = socket
        self.credential_key = socket.credential_key if socket else None
        try:
            self.report_queue()
            return self.loop()
        finally:
            if self.socket is not None:
                self.socket.close()

    # -- the loop ------------------------------------------------------------------------

    def loop(self) -> dict[str, Any]:
        quiet_since = time.monotonic()
        while True:
            self.check_cancel()
            self.listener.waiting()
            if self.socket is None:
                self.reconnect()
                # Events sent while we were away are gone: ask where the prompt is now.
                entry = self.reconcile()
                if entry is not None:
                    return self.finish(entry)
                quiet_since = time.monotonic()
            try:
                message = self.socket.receive(TICK_SECONDS)
            except SocketLost:
                self.credential_key = self.socket.credential_key
                self.socket = None
                entry = self.reconcile()
                if entry is not None:
                    return self.finish(entry)
                continue
            if message is None:
                if self.cancelled or time.monotonic() - quiet_since >= self.server.idle_seconds:
                    entry = self.reconcile()
                    if entry is not None:
                        return self.finish(entry)
                    quiet_since = time.monotonic()
                continue
            quiet_since = time.monotonic()
            if isinstance(message, Preview):
                self.on_preview(message)
            elif self.on_event(message):
                return self.finish(self.wait_for_history())

    def on_event(self, event: Event) -> bool:
        """Handle one event; True when it says our prompt has ended."""
        data = event.data
        if event.type == "status":
            if not self.state.started:
                self.report_queue()
            return False
        if data.get("prompt_id") != self.prompt_id:
            return False
        self.state.events.append(event.type)
        if event.type == "execution_start":
            self.mark_started()
        elif event.type == "executing":
            if data.get("node") is None:
                return True
            self.mark_started()
            self.listener.node(node_ref(self.graph, str(data["node"])))
        elif event.type == "progress":
            self.mark_started()
            node = None if data.get("node") is None else node_ref(self.graph, str(data["node"]))
            self.listener.progress(float(data.get("value", 0)), float(data.get("max", 0)), node)
        return event.type in TERMINAL_MESSAGES

    def on_preview(self, preview: Preview) -> None:
        # Type-1 frames carry no prompt id: our clientId is ours alone, so a frame on it
        # while our prompt runs is ours. Type-4 frames say whose they are.
        if preview.prompt_id is not None and preview.prompt_id != self.prompt_id:
            return
        if not self.state.started and preview.prompt_id is None:
            return
        node = None if preview.node_id is None else node_ref(self.graph, preview.node_id)
        self.listener.preview(preview.image, preview.mime, node)

    def mark_started(self) -> None:
        if not self.state.started:
            self.state.started = True
            self.listener.started()

    # -- asking ComfyUI directly ---------------------------------------------------------

    def report_queue(self) -> None:
        try:
            queue = self.http.queue()
        except TransientEngineError:
            return
        if self.prompt_id in queue.running:
            self.mark_started()
            return
        ahead = queue.ahead_of(self.prompt_id)
        if ahead is not None and ahead != self.state.ahead:
            self.state.ahead = ahead
            self.listener.queued(ahead)

    def reconcile(self) -> dict[str, Any] | None:
        """The history entry if the prompt has ended; None if it still runs or waits."""
        try:
            queue = self.http.queue()
            if self.prompt_id in queue.running or self.prompt_id in queue.pending:
                self.state.lost_checks = 0
                if self.prompt_id in queue.running:
                    self.mark_started()
                elif (ahead := queue.ahead_of(self.prompt_id)) != self.state.ahead:
                    self.state.ahead = ahead
                    self.listener.queued(ahead or 0)
                return None
            entry = self.http.history(self.prompt_id)
        except TransientEngineError:
            return None
        if entry is not None:
            return entry
        if self.cancelled:
            raise PromptCancelled(f"prompt {self.prompt_id} was taken out of ComfyUI's queue")
        self.state.lost_checks += 1
        if self.state.lost_checks >= LOST_CHECKS:
            raise PromptLost(
                f"prompt {self.prompt_id} is no longer known to ComfyUI at {self.server.shown} "
                "(neither queued, running nor in its history: was ComfyUI restarted?)"
            )
        return None

    def wait_for_history(self) -> dict[str, Any]:
        # execution_success is sent just before ComfyUI writes the history entry.
        deadline = time.monotonic() + self.server.idle_seconds
        while True:
            entry = self.http.history(self.prompt_id)
            if entry is not None:
                return entry
            if time.monotonic() >= deadline:
                raise PromptLost(f"prompt {self.prompt_id} ended but ComfyUI has no history of it")
            self.listener.waiting()
            time.sleep(0.1)

    def reconnect(self) -> None:
        """Reopen the socket with the same clientId; give up after reconnect_seconds."""
        deadline = time.monotonic() + self.server.reconnect_seconds
        while True:
            try:
                self.socket = EventSocket(self.server, self.client_id, self.credential_key).open()
                self.report_queue()
                return
            except EngineUnreachable as exc:
                if time.monotonic() >= deadline:
                    raise EngineUnreachable(
                        f"lost ComfyUI at {self.server.shown} while prompt {self.prompt_id} "
                        f"ran, and it did not come back within "
                        f"{self.server.reconnect_seconds:g} s ({exc})"
                    ) from None
            self.check_cancel()
            self.listener.waiting()
            time.sleep(TICK_SECONDS)

    def check_cancel(self) -> None:
        if self.should_cancel is not None and not self.cancelled and self.should_cancel():
            self.cancelled = True
            self.http.cancel(self.prompt_id)

    # -- the end -------------------------------------------------------------------------

    def finish(self, entry: dict[str, Any]) -> dict[str, Any]:
        status = entry.get("status") or {}
        messages = status.get("messages") or []
        for kind, data in messages:
            if kind == "execution_error":
                raise execution_failed(self.graph, data)
            if kind == "execution_interrupted":
                raise interrupted(self.graph, data, by_us=self.cancelled)
        if status.get("status_str") == "error":
            raise ExecutionFailed(f"ComfyUI reports prompt {self.prompt_id} failed")
        return entry


def execution_failed(graph: Mapping[str, Any], data: Mapping[str, Any]) -> ExecutionFailed:
    ref = node_ref(graph, str(data.get("node_id")))
    if ref.class_type == "unknown" and data.get("node_type"):
        ref = NodeRef(ref.id, str(data["node_type"]))
    said = str(data.get("exception_message") or "").strip()
    kind = str(data.get("exception_type") or "error")
    return ExecutionFailed(
        f"ComfyUI failed at {ref}: {kind}: {said}",
        details={"node_id": ref.id, "class_type": ref.class_type, "exception_type": kind},
    )


def interrupted(graph: Mapping[str, Any], data: Mapping[str, Any], by_us: bool) -> EngineError:
    ref = node_ref(graph, str(data.get("node_id")))
    if by_us:
        return PromptCancelled(f"ComfyUI interrupted the prompt at {ref}, as asked")
    return PromptInterrupted(
        f"ComfyUI interrupted the prompt at {ref} from its own side (someone cancelled it there)",
        details={"node_id": ref.id},
    )
