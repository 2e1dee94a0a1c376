"""The prompt queue and the in-memory history, as ComfyUI's `execution.PromptQueue`.

Follows ComfyUI 0.3.64 (Comfy-Org/ComfyUI@a125cd84 `execution.py`): a heap of
`(number, prompt_id, prompt, extra_data, outputs_to_execute)` (lower number first, ties by
prompt id); every put/get/done/delete/wipe broadcasts `status`; deleting the last pending item
broadcasts twice (wipe, then delete), as upstream; history keeps at most 10000 entries, is
never persisted, and drops `auth_token_comfy_org`/`api_key_comfy_org` from extra_data.
2026 (Comfy-Org/ComfyUI@5e14d797 `server.py`) refuses a prompt id it already knows: the
server's `put` returning false is what its 409 rests on; which ids count (queued, running, in
history) is not shown in the cited sources, and the stand-in takes all three.
"""

from __future__ import annotations

import asyncio
import copy
import heapq
from typing import Any

MAXIMUM_HISTORY_SIZE = 10000
SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")


class PromptQueue:
    def __init__(self, hub, generation: str) -> None:
        self.hub = hub
        self.new = generation == "2026"
        self.queue: list[tuple] = []
        self.running: dict[int, tuple] = {}
        self.history: dict[str, dict[str, Any]] = {}
        self.task_counter = 0
        self.not_empty = asyncio.Condition()
        hub.queue_remaining = self.tasks_remaining

    def knows(self, prompt_id: str) -> bool:
        return (
            prompt_id in self.history
            or any(item[1] == prompt_id for item in self.queue)
            or any(item[1] == prompt_id for item in self.running.values())
        )

    def put(self, item: tuple) -> bool:
        if self.new and self.knows(item[1]):
            return False
        heapq.heappush(self.queue, item)
        self.hub.queue_updated()
        asyncio.get_running_loop().create_task(self._notify())
        return True

    async def _notify(self) -> None:
        async with self.not_empty:
            self.not_empty.notify()

    async def get(self) -> tuple[tuple, int]:
        async with self.not_empty:
            await self.not_empty.wait_for(lambda: bool(self.queue))
            item = heapq.heappop(self.queue)
            item_id = self.task_counter
            self.running[item_id] = copy.deepcopy(item)
            self.task_counter += 1
            self.hub.queue_updated()
            return item, item_id

    def task_done(self, item_id: int, history_result: dict, status: dict | None) -> None:
        prompt = list(self.running.pop(item_id))
        if len(self.history) > MAXIMUM_HISTORY_SIZE:
            self.history.pop(next(iter(self.history)))
        for key in SENSITIVE_EXTRA_DATA_KEYS:
            prompt[3].pop(key, None)
        entry = {"prompt": tuple(prompt), "outputs": {}, "status": copy.deepcopy(status)}
        entry.update(history_result)
        self.history[prompt[1]] = entry
        self.hub.queue_updated()

    def current(self) -> tuple[list[tuple], list[tuple]]:
        return list(self.running.values()), list(self.queue)

    def running_ids(self) -> list[str]:
        return [item[1] for item in self.running.values()]

    def tasks_remaining(self) -> int:
        return len(self.queue) + len(self.running)

    def wipe_queue(self) -> None:
        self.queue = []
        self.hub.queue_updated()

    def delete_queue_item(self, prompt_id: str) -> bool:
        for index, item in enumerate(self.queue):
            if item[1] == prompt_id:
                if len(self.queue) == 1:
                    self.wipe_queue()
                else:
                    self.queue.pop(index)
                    heapq.heapify(self.queue)
                self.hub.queue_updated()
                return True
        return False

    def get_history(self, prompt_id=None, max_items=None, offset=-1) -> dict:
        if prompt_id is not None:
            if prompt_id in self.history:
                return {prompt_id: copy.deepcopy(self.history[prompt_id])}
            return {}
        out = {}
        if offset < 0 and max_items is not None:
            offset = len(self.history) - max_items
        for index, key in enumerate(self.history):
            if index >= offset:
                out[key] = self.history[key]
                if max_items is not None and len(out) >= max_items:
                    break
        return out

    def wipe_history(self) -> None:
        self.history = {}

    def delete_history_item(self, prompt_id: Any) -> None:
        self.history.pop(prompt_id, None)
