"""The workflows the package ships: they load, use known placeholders, name real classes."""

from __future__ import annotations

from pathlib import Path

from myspinbot.engines.workflow_choice import choose_workflow
from myspinbot.engines.workflows import (
    PLACEHOLDERS,
    SHIPPED_WORKFLOWS,
    load_workflow,
    load_writer_prompt,
)

# Keys of /object_info of ComfyUI 0.3.64, recorded with their source in the file's header.
NODE_CLASSES = {
    line.strip()
    for line in (Path(__file__).parent.parent / "data" / "comfyui-0.3.64-node-classes.txt")
    .read_text()
    .splitlines()
    if line.strip() and not line.startswith("#")
}


# The classes the current line's files use, each read in ComfyUI's source of that line:
# nodes.py, nodes_hunyuan.py, nodes_video.py, nodes_audio.py (LoadAudio,
# TrimAudioDuration), nodes_dataset.py (LoadImageTextDataSetFromFolder, MakeTrainingDataset),
# nodes_train.py V3 (TrainLoraNode, SaveLoRA, LossGraphNode).
CURRENT_LINE_CLASSES = {
    "UNETLoader", "CLIPLoader", "VAELoader", "LoraLoaderModelOnly", "CLIPTextEncode",
    "EmptyHunyuanLatentVideo", "KSampler", "VAEDecode", "CreateVideo", "SaveVideo",
    "LoadAudio", "TrimAudioDuration",
    "LoadImageTextDataSetFromFolder", "MakeTrainingDataset", "TrainLoraNode", "SaveLoRA",
    "LossGraphNode",
}  # fmt: skip


def test_the_0_3_files_name_only_classes_of_comfyui_0_3_64() -> None:
    shipped = (("generate", "generate"), ("generate", "generate_talking"))
    for kind, stem in (*shipped, ("train", "train_comfyui_0_3")):
        workflow = load_workflow(SHIPPED_WORKFLOWS, kind, stem)
        assert workflow.class_types() <= NODE_CLASSES, workflow.class_types() - NODE_CLASSES


def test_the_current_files_name_the_current_lines_classes() -> None:
    for kind in ("generate", "train"):
        classes = load_workflow(SHIPPED_WORKFLOWS, kind).class_types()
        assert classes <= CURRENT_LINE_CLASSES, classes - CURRENT_LINE_CLASSES
    # The current line's dataset and save nodes are not in 0.3.64: the files differ there.
    assert not {"MakeTrainingDataset", "SaveLoRA"} & NODE_CLASSES


def test_the_server_chooses_the_training_file_and_a_folder_of_ones_own_wins(
    tmp_path: Path,
) -> None:
    def knows(names: set[str]):
        return lambda asked: set(asked) & names

    current = choose_workflow(SHIPPED_WORKFLOWS, "train", knows(CURRENT_LINE_CLASSES))
    old = choose_workflow(SHIPPED_WORKFLOWS, "train", knows(NODE_CLASSES))
    neither = choose_workflow(SHIPPED_WORKFLOWS, "train", knows(set()))
    assert (current.source, old.source, neither.source) == (
        "train.json",
        "train_comfyui_0_3.json",
        "train.json",  # the pre-flight check then names what the server lacks
    )
    (tmp_path / "train.json").write_text('{"1": {"class_type": "Mine", "inputs": {}}}')
    mine = choose_workflow(tmp_path, "train", knows(CURRENT_LINE_CLASSES))
    assert mine.class_types() == {"Mine"}


def test_the_shipped_workflows_use_the_placeholders_their_jobs_supply() -> None:
    generate = load_workflow(SHIPPED_WORKFLOWS, "generate").uses()
    clip = {"fps", "frames", "seconds", "voice_audio"}
    assert set(generate) == {"prompt", "negative_prompt", "seed", "lora", "prefix", *clip}
    talking = load_workflow(SHIPPED_WORKFLOWS, "generate", "generate_talking").uses()
    assert set(talking) == set(generate)
    for stem in ("train", "train_comfyui_0_3"):
        train = load_workflow(SHIPPED_WORKFLOWS, "train", stem).uses()
        # Captions come with the photos (photo-NN.txt), so no {{name}} or {{trigger}}. No
        # {{prefix}}: 0.3's LossGraphNode writes temp/<prefix>_<date>.png without making
        # the prefix's folder, so the loss graph keeps a flat name.
        assert set(train) == {"images", "lora_prefix"}
        assert set(generate) | set(train) <= set(PLACEHOLDERS)


def test_the_writer_prompt_ships_beside_them(tmp_path: Path) -> None:
    assert "shot" in load_writer_prompt(SHIPPED_WORKFLOWS)
    assert load_writer_prompt(tmp_path) == load_writer_prompt(SHIPPED_WORKFLOWS)
    (tmp_path / "writer.txt").write_text("Mine.\n")
    assert load_writer_prompt(tmp_path) == "Mine."
