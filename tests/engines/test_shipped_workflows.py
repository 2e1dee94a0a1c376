"""The workflows the package ships: they load, use known placeholders, name real classes."""

from __future__ import annotations

from pathlib import Path

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


def test_every_shipped_node_class_exists_in_comfyui_0_3_64() -> None:
    for kind in ("generate", "generate_talking", "train"):
        workflow = load_workflow(SHIPPED_WORKFLOWS, kind)
        assert workflow.class_types() <= NODE_CLASSES, workflow.class_types() - NODE_CLASSES


def test_the_shipped_workflows_use_the_placeholders_their_jobs_supply() -> None:
    generate = load_workflow(SHIPPED_WORKFLOWS, "generate").uses()
    train = load_workflow(SHIPPED_WORKFLOWS, "train").uses()
    clip = {"fps", "frames", "seconds", "voice_audio"}
    assert set(generate) == {"prompt", "negative_prompt", "seed", "lora", "prefix", *clip}
    talking = load_workflow(SHIPPED_WORKFLOWS, "generate_talking").uses()
    assert set(talking) == set(generate)
    # No {{prefix}}: 0.3's LossGraphNode writes temp/<prefix>_<date>.png without making the
    # prefix's folder, so the loss graph keeps a flat name.
    assert set(train) == {"images", "name", "lora_prefix"}
    assert set(generate) | set(train) <= set(PLACEHOLDERS)


def test_the_writer_prompt_ships_beside_them(tmp_path: Path) -> None:
    assert "shot" in load_writer_prompt(SHIPPED_WORKFLOWS)
    assert load_writer_prompt(tmp_path) == load_writer_prompt(SHIPPED_WORKFLOWS)
    (tmp_path / "writer.txt").write_text("Mine.\n")
    assert load_writer_prompt(tmp_path) == "Mine."
