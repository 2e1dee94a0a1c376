"""Check a filled-in graph against the server's /object_info before anything is uploaded.

Two mistakes cost a person the most when they only show after a queue wait: a node class
the server does not have (a custom node not installed) and a model file it does not list.
Both are found here, all at once, each named with its node, input and value and with where
the missing thing belongs. Every other input is left to ComfyUI's own validation, whose
words reach the person through WorkflowRejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import MissingModel, MissingNode
from .workflows import NodeRef, is_link, node_ref

MODEL_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pt2", ".pth", ".bin", ".pkl", ".sft", ".gguf")

# The model folder each well-known input of the core nodes reads (ComfyUI's folder_paths
# names, as the folders under models/).
MODEL_FOLDERS = {
    "ckpt_name": "checkpoints",
    "unet_name": "diffusion_models",
    "clip_name": "text_encoders",
    "clip_name1": "text_encoders",
    "clip_name2": "text_encoders",
    "clip_name3": "text_encoders",
    "clip_name4": "text_encoders",
    "vae_name": "vae",
    "lora_name": "loras",
    "existing_lora": "loras",
    "control_net_name": "controlnet",
    "style_model_name": "style_models",
    "gligen_name": "gligen",
    "audio_encoder_name": "audio_encoders",
    "model_name": "upscale_models",
}
# LoRAs this project trains live under ComfyUI's output/loras/myspinbot/ (saved there by the
# training box, copied there by a generate job on any other box before it is queued).
TRAINED_LORA_HINT = (
    "LoRAs trained by MySpinBot live in output/loras/myspinbot/ of each ComfyUI that uses "
    "them; that ComfyUI lists them once `loras: output/loras` is in its extra_model_paths.yaml"
)


def combo_options(spec: Any) -> list[str] | None:
    """The allowed values of a combo input spec, in the V1 or the V3 shape; None otherwise."""
    if not isinstance(spec, list | tuple) or not spec:
        return None
    if isinstance(spec[0], list):
        return [str(option) for option in spec[0]]
    if spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], Mapping):
        options = spec[1].get("options")
        if isinstance(options, list):
            return [str(option) for option in options]
    return None


def input_specs(info: Mapping[str, Any]) -> dict[str, Any]:
    declared = info.get("input") or {}
    specs: dict[str, Any] = {}
    for section in ("required", "optional"):
        part = declared.get(section)
        if isinstance(part, Mapping):
            specs.update(part)
    return specs


def looks_like_model(input_name: str, value: str) -> bool:
    return input_name in MODEL_FOLDERS or value.lower().endswith(MODEL_EXTENSIONS)


def missing_model_message(ref: NodeRef, input_name: str, value: str, options: list[str]) -> str:
    folder = MODEL_FOLDERS.get(input_name, "the matching folder under models")
    where = f"models/{folder}/" if input_name in MODEL_FOLDERS else "models/"
    hint = f"put it in {where} of the ComfyUI server (it lists {len(options)} there)"
    if input_name in ("lora_name", "existing_lora") and value.startswith("myspinbot/"):
        hint = TRAINED_LORA_HINT
    return f"{ref} input {input_name}: model file {value!r} is not on the ComfyUI server; {hint}"


def check_graph(graph: Mapping[str, Any], object_info: Mapping[str, Any]) -> None:
    """Raise MissingNode or MissingModel naming every problem found; return if none.

    `object_info` maps each class_type of the graph to its /object_info entry; a class
    that is absent (or maps to nothing) is a node the server does not have.
    """
    missing_nodes = [
        node_ref(graph, node_id)
        for node_id, node in graph.items()
        if not object_info.get(node["class_type"])
    ]
    if missing_nodes:
        listed = "; ".join(str(ref) for ref in missing_nodes)
        raise MissingNode(
            f"the ComfyUI server has no such node: {listed}. Install the custom node that "
            "provides it (ComfyUI-Manager can) or change the workflow",
            details={"nodes": [ref.__dict__ for ref in missing_nodes]},
        )
    problems: list[str] = []
    found: list[dict[str, str]] = []
    for node_id, node in graph.items():
        specs = input_specs(object_info[node["class_type"]])
        for input_name, value in node["inputs"].items():
            if not isinstance(value, str) or is_link(value) or input_name not in specs:
                continue
            options = combo_options(specs[input_name])
            if options is None or value in options or not looks_like_model(input_name, value):
                continue
            ref = node_ref(graph, node_id)
            problems.append(missing_model_message(ref, input_name, value, options))
            found.append({"node_id": ref.id, "class_type": ref.class_type, "input": input_name})
    if problems:
        raise MissingModel("; ".join(problems), details={"models": found})
