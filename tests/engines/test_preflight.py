"""Pre-flight against a recorded /object_info excerpt of ComfyUI 0.3.64 (see its _source)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from myspinbot.engines.errors import MissingModel, MissingNode
from myspinbot.engines.preflight import check_graph, combo_options

RECORDED = json.loads(
    (Path(__file__).parent.parent / "data" / "comfyui-0.3.64-object-info.json").read_text()
)["object_info"]


def with_loras(*names: str) -> dict:
    info = json.loads(json.dumps(RECORDED))
    info["LoraLoaderModelOnly"]["input"]["required"]["lora_name"][0] = list(names)
    return info


def test_combo_options_read_both_the_v1_and_the_v3_shape() -> None:
    assert combo_options(RECORDED["ImageScale"]["input"]["required"]["crop"]) == [
        "disabled",
        "center",
    ]
    assert combo_options(RECORDED["SaveVideo"]["input"]["required"]["format"]) == ["auto", "mp4"]
    assert combo_options(RECORDED["ImageScale"]["input"]["required"]["width"]) is None


def test_a_missing_model_names_node_input_value_and_its_folder() -> None:
    graph = {
        "1": {
            "class_type": "UNETLoader",
            "inputs": {"unet_name": "wan.safetensors", "weight_dtype": "default"},
            "_meta": {"title": "Model"},
        }
    }
    with pytest.raises(MissingModel) as caught:
        check_graph(graph, RECORDED)
    message = str(caught.value)
    assert "node 1 (UNETLoader, \"Model\") input unet_name: model file 'wan.safetensors'" in message
    assert "put it in models/diffusion_models/" in message


def test_a_lora_on_the_list_passes_and_a_trained_one_missing_points_at_the_loras_path() -> None:
    graph = {
        "4": {
            "class_type": "LoraLoaderModelOnly",
            "inputs": {
                "model": ["1", 0],
                "lora_name": "myspinbot/a.safetensors",
                "strength_model": 1.0,
            },
        }
    }
    check_graph(graph, with_loras("myspinbot/a.safetensors"))
    with pytest.raises(MissingModel, match="extra_model_paths.yaml"):
        check_graph(graph, with_loras("other.safetensors"))


def test_missing_node_classes_are_all_named_before_any_model_is_checked() -> None:
    graph = {
        "1": {"class_type": "VHS_VideoCombine", "inputs": {}},
        "2": {"class_type": "UNETLoader", "inputs": {"unet_name": "absent.safetensors"}},
        "3": {"class_type": "ReActorFaceSwap", "inputs": {}, "_meta": {"title": "Face"}},
    }
    with pytest.raises(MissingNode) as caught:
        check_graph(graph, {**RECORDED, "VHS_VideoCombine": None})
    assert "node 1 (VHS_VideoCombine)" in str(caught.value)
    assert 'node 3 (ReActorFaceSwap, "Face")' in str(caught.value)


def test_other_combos_are_left_to_comfyui_to_judge() -> None:
    graph = {
        "1": {
            "class_type": "ImageScale",
            "inputs": {
                "image": ["0", 0],
                "upscale_method": "sideways",
                "width": 8,
                "height": 8,
                "crop": "disabled",
            },
        }
    }
    check_graph(graph, RECORDED)
