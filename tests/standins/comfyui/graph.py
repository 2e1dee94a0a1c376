"""Execution order and cache keys, as ComfyUI's `comfy_execution/graph.py` and `caching.py`.

Follows ComfyUI 0.3.64 (Comfy-Org/ComfyUI@a125cd84): outputs are pulled in depth first, a node
runs once nothing uncached blocks it, and among ready nodes an output node goes first, then a
node feeding an output, then one two links away (`ux_friendly_pick_node`). A node's cache key
is its class, its IS_CHANGED value and its inputs, with links replaced by the ancestors' own
keys (`CacheKeySetInputSignature`), so a node whose inputs did not change is not run again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from .nodes import NodeDef
from .paths import BaseDir


def is_link(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int | float)
    )


class ExecutionList:
    def __init__(self, prompt: dict, table: dict[str, NodeDef], is_cached: Callable) -> None:
        self.prompt = prompt
        self.table = table
        self.is_cached = is_cached
        self.pending: dict[str, bool] = {}
        self.block_count: dict[str, int] = {}
        self.blocking: dict[str, dict[str, dict]] = {}

    def add_node(self, node_id: str) -> None:
        stack, links = [node_id], []
        while stack:
            current = stack.pop()
            if current in self.pending:
                continue
            self.pending[current] = True
            self.block_count[current] = 0
            self.blocking[current] = {}
            for value in self.prompt[current]["inputs"].values():
                if is_link(value) and not self.is_cached(value[0]):
                    stack.append(value[0])
                    links.append((value[0], value[1], current))
        for source, socket, target in links:
            self._add_strong_link(source, socket, target)

    def _add_strong_link(self, source: str, socket: Any, target: str) -> None:
        if self.is_cached(source):
            return
        self.add_node(source)
        if target not in self.blocking[source]:
            self.blocking[source][target] = {}
            self.block_count[target] += 1
        self.blocking[source][target][socket] = True

    def is_empty(self) -> bool:
        return not self.pending

    def stage(self) -> str:
        ready = [n for n in self.pending if self.block_count[n] == 0]
        for node_id in ready:
            if self._is_output(node_id):
                return node_id
        for node_id in ready:
            if any(self._is_output(b) for b in self.blocking[node_id]):
                return node_id
        for node_id in ready:
            for blocked in self.blocking[node_id]:
                if any(self._is_output(b) for b in self.blocking[blocked]):
                    return node_id
        return ready[0]

    def complete(self, node_id: str) -> None:
        del self.pending[node_id]
        for blocked in self.blocking[node_id]:
            self.block_count[blocked] -= 1
        del self.blocking[node_id]

    def _is_output(self, node_id: str) -> bool:
        return self.table[self.prompt[node_id]["class_type"]].output_node


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    return value


def _file_digest(base: BaseDir, name: Any) -> Any:
    try:
        with open(base.annotated_path(name), "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except Exception:
        return float("nan")  # never equal to itself: the node always runs, as upstream


def signatures(prompt: dict, table: dict[str, NodeDef], base: BaseDir) -> dict[str, Any]:
    """Every node's cache key for this prompt."""
    changed: dict[str, Any] = {}

    def is_changed(node_id: str) -> Any:
        if node_id not in changed:
            node = prompt[node_id]
            field = {"LoadImage": "image", "LoadAudio": "audio"}.get(node["class_type"])
            changed[node_id] = _file_digest(base, node["inputs"].get(field)) if field else False
        return changed[node_id]

    def immediate(node_id: str, order: dict[str, int]) -> list:
        if node_id not in prompt:
            return [float("nan")]
        node = prompt[node_id]
        signature: list = [node["class_type"], is_changed(node_id)]
        for key in sorted(node["inputs"]):
            value = node["inputs"][key]
            if is_link(value):
                signature.append((key, ("ANCESTOR", order[value[0]], value[1])))
            else:
                signature.append((key, _hashable(value)))
        return signature

    def ancestry(node_id: str, ancestors: list[str], order: dict[str, int]) -> None:
        if node_id not in prompt:
            return
        inputs = prompt[node_id]["inputs"]
        for key in sorted(inputs):
            if is_link(inputs[key]) and inputs[key][0] not in order:
                ancestors.append(inputs[key][0])
                order[inputs[key][0]] = len(ancestors) - 1
                ancestry(inputs[key][0], ancestors, order)

    out = {}
    for node_id in prompt:
        ancestors: list[str] = []
        order: dict[str, int] = {}
        ancestry(node_id, ancestors, order)
        parts = [immediate(node_id, order)] + [immediate(a, order) for a in ancestors]
        out[node_id] = _hashable(parts)
    return out
