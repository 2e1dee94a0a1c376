"""Workflow files: shape checks, typed placeholders, one-pass substitution, bypass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from myspinbot.engines.errors import WorkflowInvalid
from myspinbot.engines.workflows import SHIPPED_WORKFLOWS, load_workflow, parse_workflow

from .support_engines import WORKFLOWS


def parse(graph: dict) -> object:
    return parse_workflow(json.dumps(graph), "generate", "generate.json")


def test_a_whole_value_placeholder_takes_the_value_and_its_type() -> None:
    workflow = parse(
        {
            "1": {"class_type": "KSampler", "inputs": {"seed": "{{seed}}", "cfg": 6.0}},
            "2": {"class_type": "Save", "inputs": {"filename_prefix": "clips/{{prefix}}_{{seed}}"}},
        }
    )
    graph = workflow.fill({"seed": 42, "prefix": "job7"})
    assert graph["1"]["inputs"]["seed"] == 42
    assert graph["2"]["inputs"]["filename_prefix"] == "clips/job7_42"


def test_substitution_is_one_pass_so_typed_text_is_never_expanded() -> None:
    workflow = parse({"1": {"class_type": "CLIPTextEncode", "inputs": {"text": "{{prompt}}!"}}})
    assert workflow.fill({"prompt": "say {{seed}}"})["1"]["inputs"]["text"] == "say {{seed}}!"


def test_an_unknown_placeholder_is_named_with_its_node_and_input() -> None:
    graph = {
        "7": {
            "class_type": "CLIPTextEncode",
            "inputs": {"text": "{{promt}}"},
            "_meta": {"title": "Prompt"},
        }
    }
    with pytest.raises(WorkflowInvalid) as caught:
        parse(graph)
    assert '{{promt}} in node 7 (CLIPTextEncode, "Prompt") input text' in str(caught.value)


def test_a_required_placeholder_without_a_value_is_an_error() -> None:
    workflow = parse({"1": {"class_type": "KSampler", "inputs": {"seed": "{{seed}}"}}})
    with pytest.raises(WorkflowInvalid, match=r"no value for \{\{seed\}\}"):
        workflow.fill({})


def test_ui_format_and_broken_files_are_refused_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(WorkflowInvalid, match="Export \\(API\\)"):
        parse_workflow('{"nodes": [], "links": []}', "generate", "generate.json")
    with pytest.raises(WorkflowInvalid, match="not JSON"):
        parse_workflow("{", "generate", "generate.json")
    with pytest.raises(WorkflowInvalid, match="node 1 needs"):
        parse_workflow('{"1": {"inputs": {}}}', "generate", "generate.json")
    with pytest.raises(WorkflowInvalid, match="train.json is missing"):
        load_workflow(tmp_path, "train")


CLIP = {"fps": 16.0, "frames": 81, "seconds": 81 / 16}


def test_no_line_cuts_the_audio_nodes_out_and_the_clip_stays_silent() -> None:
    values = {"prompt": "p", "negative_prompt": "", "seed": 1, "prefix": "x", **CLIP}
    graph = load_workflow(SHIPPED_WORKFLOWS, "generate").fill({**values, "voice_audio": None})
    assert "12" not in graph and "13" not in graph  # LoadAudio, and the trim it fed
    assert graph["10"]["inputs"] == {"images": ["9", 0], "fps": 16.0}
    assert graph["7"]["inputs"]["length"] == 81


def test_a_spoken_line_goes_through_the_trim_into_create_video_at_the_clips_fps() -> None:
    values = {"prompt": "p", "negative_prompt": "", "seed": 1, "prefix": "x", **CLIP}
    graph = load_workflow(SHIPPED_WORKFLOWS, "generate").fill(
        {**values, "voice_audio": "myspinbot/g1/line.wav"}
    )
    assert graph["12"]["inputs"] == {"audio": "myspinbot/g1/line.wav"}
    assert graph["13"]["inputs"] == {"audio": ["12", 0], "start_index": 0.0, "duration": 5.0625}
    assert graph["10"]["inputs"] == {"images": ["9", 0], "fps": 16.0, "audio": ["13", 0]}


def test_no_lora_bypasses_the_loader_and_hands_its_model_on() -> None:
    graph = load_workflow(SHIPPED_WORKFLOWS, "generate").fill(
        {"prompt": "p", "negative_prompt": "", "seed": 1, "lora": None, "prefix": "x", **CLIP}
    )
    assert "4" not in graph
    assert graph["8"]["inputs"]["model"] == ["1", 0]


def test_a_lora_fills_the_loader_and_keeps_it_in_the_chain() -> None:
    graph = load_workflow(SHIPPED_WORKFLOWS, "generate").fill(
        {
            "prompt": "p",
            "negative_prompt": "",
            "seed": 1,
            "lora": "myspinbot/j_00001_.safetensors",
            "prefix": "x",
            **CLIP,
        }
    )
    assert graph["4"]["inputs"]["lora_name"] == "myspinbot/j_00001_.safetensors"
    assert graph["8"]["inputs"]["model"] == ["4", 0]


def test_bypass_passes_linked_inputs_in_order_through_chains_and_drops_the_rest() -> None:
    workflow = parse(
        {
            "1": {"class_type": "Loader", "inputs": {}},
            "2": {
                "class_type": "LoraLoader",
                "inputs": {"model": ["1", 0], "clip": ["1", 1], "lora_name": "{{lora}}"},
            },
            "3": {
                "class_type": "LoraLoader",
                "inputs": {"model": ["2", 0], "clip": ["2", 1], "lora_name": "{{lora}}"},
            },
            "4": {"class_type": "LoadAudio", "inputs": {"audio": "{{voice}}"}},
            "5": {
                "class_type": "Use",
                "inputs": {"model": ["3", 0], "clip": ["3", 1], "audio": ["4", 0]},
            },
        }
    )
    graph = workflow.fill({"lora": None, "voice": None})
    assert set(graph) == {"1", "5"}
    assert graph["5"]["inputs"] == {"model": ["1", 0], "clip": ["1", 1]}


def test_the_test_workflows_fill_without_unknown_placeholders() -> None:
    for name in ("generate", "train", "rejected", "partly_rejected"):
        assert load_workflow(WORKFLOWS, name).graph
