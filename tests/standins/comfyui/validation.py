"""`POST /prompt` validation, shaped exactly like ComfyUI's `execution.validate_prompt`.

2025 follows ComfyUI 0.3.64 (Comfy-Org/ComfyUI@a125cd84 `execution.py`): V3 combos (`COMBO`)
are not checked against their options, an unknown class is `invalid_prompt`. 2026 follows
Comfy-Org/ComfyUI@cb707e9c `execution.py`: V3 combos are checked, `value_not_in_list` details
use `repr`, unknown or class-less nodes are `missing_node_type`, cycles are `dependency_cycle`.

The code keeps the original's structure on purpose: which lookups sit inside which `try`
decides whether a broken link becomes `exception_during_inner_validation` on the linked node or
`exception_during_validation` on the output, and the stand-in must answer the same.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

from .nodes import NodeDef, input_types
from .paths import BaseDir


class Validator:
    def __init__(self, table: dict[str, NodeDef], base: BaseDir, generation: str) -> None:
        self.table = table
        self.base = base
        self.new = generation == "2026"

    def validate_prompt(self, prompt: Any, targets: list | None):
        """(valid, error, outputs_to_execute, node_errors), as `execution.validate_prompt`."""
        outputs: list[str] = []
        for x in prompt:
            error = self._class_error(prompt, x)
            if error is not None:
                return (False, error, [], {})
            node = self.table[prompt[x]["class_type"]]
            if node.output_node and (targets is None or x in targets):
                outputs.append(x)
        if not outputs:
            error = _error("prompt_no_outputs", "Prompt has no outputs", "")
            return (False, error, [], {})

        good: list[str] = []
        failures: list[tuple[str, list]] = []
        node_errors: dict[str, dict] = {}
        validated: dict[str, tuple] = {}
        for o in outputs:
            try:
                valid, reasons, _ = self.validate_inputs(prompt, o, validated)
            except Exception as ex:
                valid = False
                reasons = [
                    _error(
                        "exception_during_validation",
                        "Exception when validating node",
                        str(ex),
                        exception_type=type_name(ex),
                        traceback=traceback.format_tb(ex.__traceback__),
                    )
                ]
                validated[o] = (False, reasons, o)
            if valid is True:
                good.append(o)
                continue
            failures.append((o, reasons))
            for node_id, (ok, node_reasons, _) in validated.items():
                # Nodes downstream of a broken one fail without reasons of their own: skipped.
                if ok is not True and node_reasons:
                    entry = node_errors.setdefault(
                        node_id,
                        {
                            "errors": node_reasons,
                            "dependent_outputs": [],
                            "class_type": prompt[node_id]["class_type"],
                        },
                    )
                    entry["dependent_outputs"].append(o)
        if not good:
            details = "\n".join(f"{e['message']}: {e['details']}" for _, es in failures for e in es)
            error = _error(
                "prompt_outputs_failed_validation", "Prompt outputs failed validation", details
            )
            return (False, error, [], node_errors)
        return (True, None, good, node_errors)

    def _class_error(self, prompt: Any, x: str) -> dict | None:
        if "class_type" not in prompt[x]:
            if not self.new:
                return _error(
                    "invalid_prompt",
                    "Cannot execute because a node is missing the class_type property.",
                    f"Node ID '#{x}'",
                )
            title = prompt[x].get("_meta", {}).get("title")
            return _error(
                "missing_node_type",
                f"Node '{title or f'ID #{x}'}' has no class_type. The workflow may be corrupted "
                "or a custom node is missing.",
                f"Node ID '#{x}'",
                node_id=x,
                class_type=None,
                node_title=title,
            )
        class_type = prompt[x]["class_type"]
        if class_type in self.table:
            return None
        if not self.new:
            return _error(
                "invalid_prompt",
                f"Cannot execute because node {class_type} does not exist.",
                f"Node ID '#{x}'",
            )
        title = prompt[x].get("_meta", {}).get("title", class_type)
        return _error(
            "missing_node_type",
            f"Node '{title}' not found. The custom node may not be installed.",
            f"Node ID '#{x}'",
            node_id=x,
            class_type=class_type,
            node_title=title,
        )

    def validate_inputs(self, prompt, unique_id, validated, visiting=None):
        if visiting is None:
            visiting = []
        if unique_id in validated:
            return validated[unique_id]
        if self.new and unique_id in visiting:
            return self._cycle(prompt, unique_id, validated, visiting)

        inputs = prompt[unique_id]["inputs"]
        node = self.table[prompt[unique_id]["class_type"]]
        class_inputs = input_types(node, self.base)
        declared = {**class_inputs.get("required", {}), **class_inputs.get("optional", {})}
        errors: list[dict] = []
        valid = True
        for x, spec in declared.items():
            input_type, extra_info = spec[0], (spec[1] if len(spec) > 1 else {})
            if x not in inputs:
                if x in class_inputs["required"]:
                    errors.append(
                        _error(
                            "required_input_missing",
                            "Required input is missing",
                            x,
                            input_name=x,
                        )
                    )
                continue
            val = inputs[x]
            info = [input_type, extra_info]
            if isinstance(val, list):
                outcome = self._check_link(
                    prompt, unique_id, x, val, input_type, info, validated, visiting
                )
                if outcome is not None:
                    if outcome:
                        errors.append(outcome)
                    else:
                        valid = False
                continue
            error = self._check_value(inputs, x, val, node, input_type, extra_info, info)
            if error is not None:
                errors.append(error)
        if node.validated_by_node:
            errors += self._node_checks(node, inputs)

        previous = validated.get(unique_id, (True, [], unique_id)) if self.new else (True, [], 0)
        ok = previous[0] and valid is True and not errors
        reasons = previous[1] + [e for e in errors if e not in previous[1]]
        validated[unique_id] = (ok, reasons, unique_id)
        return validated[unique_id]

    def _check_link(self, prompt, unique_id, x, val, input_type, info, validated, visiting):
        """None when the link is fine, {} when the linked node failed, else the error."""
        if len(val) != 2:
            return _error(
                "bad_linked_input",
                "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                x,
                input_name=x,
                input_config=info,
                received_value=val,
            )
        o_id = val[0]
        # Outside the try, as in ComfyUI: a dangling link fails the node being validated.
        returns = tuple(self.table[prompt[o_id]["class_type"]].outputs)
        received_type = returns[val[1]]
        if not _types_match(received_type, input_type):
            return _error(
                "return_type_mismatch",
                "Return type mismatch between linked nodes",
                f"{x}, received_type({received_type}) mismatch input_type({input_type})",
                input_name=x,
                input_config=info,
                received_type=received_type,
                linked_node=val,
            )
        try:
            visiting.append(unique_id)
            try:
                result = self.validate_inputs(prompt, o_id, validated, visiting)
            finally:
                visiting.pop()
            return None if result[0] is not False else {}
        except Exception as ex:
            validated[o_id] = (
                False,
                [
                    _error(
                        "exception_during_inner_validation",
                        "Exception when validating inner node",
                        str(ex),
                        input_name=x,
                        input_config=info,
                        exception_message=str(ex),
                        exception_type=type_name(ex),
                        traceback=traceback.format_tb(ex.__traceback__),
                        linked_node=val,
                    )
                ],
                o_id,
            )
            return {}

    def _check_value(self, inputs, x, val, node, input_type, extra_info, info) -> dict | None:
        try:
            if isinstance(val, dict) and "__value__" in val:
                val = inputs[x] = val["__value__"]
            converter = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}
            if isinstance(input_type, str) and input_type in converter:
                val = inputs[x] = converter[input_type](val)
        except Exception as ex:
            return _error(
                "invalid_input_type",
                f"Failed to convert an input value to a {input_type} value",
                f"{x}, {val}, {ex}",
                input_name=x,
                input_config=info,
                received_value=val,
                exception_message=str(ex),
            )
        if x in node.validated_by_node:
            return None
        if "min" in extra_info and val < extra_info["min"]:
            message = f"Value {val} smaller than min of {extra_info['min']}"
            return _error("value_smaller_than_min", message, x, **_received(x, info, val))
        if "max" in extra_info and val > extra_info["max"]:
            message = f"Value {val} bigger than max of {extra_info['max']}"
            return _error("value_bigger_than_max", message, x, **_received(x, info, val))
        options = None
        if isinstance(input_type, list):
            options = input_type
        elif self.new and input_type == "COMBO":
            options = extra_info.get("options", [])
        if options is None or val in options:
            return None
        shown = str(options) if len(options) <= 20 else f"(list of length {len(options)})"
        config = info if len(options) <= 20 else None
        value_text = repr(val) if self.new else f"'{val}'"
        return _error(
            "value_not_in_list",
            "Value not in list",
            f"{x}: {value_text} not in {shown}",
            input_name=x,
            input_config=config,
            received_value=val,
        )

    def _node_checks(self, node: NodeDef, inputs: dict) -> list[dict]:
        """LoadImage/LoadAudio's VALIDATE_INPUTS: the named file must exist."""
        errors = []
        for x in node.validated_by_node:
            value = inputs.get(x)
            if x not in inputs:
                raise TypeError(
                    f"{node.name}.VALIDATE_INPUTS() missing 1 required positional argument: '{x}'"
                )
            if isinstance(value, list):
                value = None  # a link has no value at validation time
            if not os.path.exists(self.base.annotated_path(value)):
                kind = "image" if node.name == "LoadImage" else "audio"
                errors.append(
                    _error(
                        "custom_validation_failed",
                        "Custom validation failed for node",
                        f"{x} - Invalid {kind} file: {value}",
                        input_name=x,
                    )
                )
        return errors

    def _cycle(self, prompt, unique_id, validated, visiting):
        path = visiting[visiting.index(unique_id) :] + [unique_id]
        members = list(dict.fromkeys(path))
        text = " -> ".join(f"{n} ({prompt[n]['class_type']})" for n in path)
        for node_id in members:
            validated[node_id] = (
                False,
                [
                    _error(
                        "dependency_cycle",
                        "Dependency cycle detected",
                        text,
                        node_id=node_id,
                        cycle_nodes=members,
                    )
                ],
                node_id,
            )
        return validated[unique_id]


def _types_match(received: Any, expected: Any) -> bool:
    if received == expected:
        return True
    if not isinstance(received, str) or not isinstance(expected, str):
        return False
    got = {t.strip() for t in received.split(",")}
    want = {t.strip() for t in expected.split(",")}
    return bool(got & want)


def _received(x: str, info: list, val: Any) -> dict:
    return {"input_name": x, "input_config": info, "received_value": val}


def _error(kind: str, message: str, details: str, **extra_info: Any) -> dict:
    return {"type": kind, "message": message, "details": details, "extra_info": extra_info}


def type_name(ex: BaseException) -> str:
    cls = type(ex)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"
