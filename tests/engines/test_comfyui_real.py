"""The engine layer against a real ComfyUI on the CPU, with weightless workflows (opt-in)."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import httpx
import pytest
from support import wait_until

from myspinbot.engines.comfyui import ComfyUI
from myspinbot.engines.errors import (
    MissingModel,
    MissingNode,
    PromptCancelled,
    PromptLost,
    WorkflowRejected,
)
from myspinbot.engines.workflows import load_workflow

from .comfyui_rig import ComfyUIProcess
from .support_engines import (
    WORKFLOWS,
    Recorder,
    generate_graph,
    make_photos,
    make_voice,
    safetensors_header,
)

pytestmark = pytest.mark.comfyui


def unique(label: str) -> str:
    return f"{label}_{uuid.uuid4().hex[:8]}"


def test_generate_reports_progress_and_previews_and_downloads_every_output(
    engine: ComfyUI, tmp_path: Path
) -> None:
    health = engine.health()
    assert health.reachable and health.version == "0.3.64" and health.queue_length == 0
    graph = generate_graph(f"myspinbot/{unique('gen')}", seed=7)
    engine.preflight(graph)
    recorder = Recorder()

    entry = engine.run(graph, engine.new_submission(), recorder)

    assert recorder.started_count == 1
    assert [(v, m) for v, m, _ in recorder.steps] == [(float(i), 6.0) for i in range(1, 7)]
    assert {node.class_type for node in recorder.nodes} >= {"MySpinBotSlowSteps", "SaveVideo"}
    assert recorder.previews and all(mime == "image/jpeg" for _, mime in recorder.previews)
    assert recorder.previews[0][0][:2] == b"\xff\xd8"  # a JPEG
    saved = engine.download_outputs(entry, tmp_path, stem="clip")
    assert [d.name for d in saved] == ["clip-1.mp4", "clip-2.webp"]
    assert (tmp_path / "clip-1.mp4").read_bytes()[4:8] == b"ftyp"
    assert (tmp_path / "clip-2.webp").read_bytes()[8:12] == b"WEBP"
    assert all(d.size == (tmp_path / d.name).stat().st_size for d in saved)


def test_train_uploads_photos_and_voice_and_yields_the_lora_a_generate_job_can_use(
    engine: ComfyUI, tmp_path: Path
) -> None:
    job = unique("job")
    photos = make_photos(tmp_path / "photos")
    voice = make_voice(tmp_path / "voice.wav")
    names = engine.upload_inputs([*photos, voice], f"myspinbot/{job}")
    assert names[-1] == f"myspinbot/{job}/voice.wav"
    values = {
        "images": f"myspinbot/{job}",
        "voice": names[-1],
        "name": "ada",
        "prefix": f"myspinbot/{job}_1",
        "lora_prefix": f"loras/myspinbot/{job}",
    }
    graph = load_workflow(WORKFLOWS, "train").fill(values)
    engine.preflight(graph)

    entry = engine.run(graph, engine.new_submission(), Recorder())
    lora = engine.download_lora(entry, graph, values["lora_prefix"], tmp_path / "lora.safetensors")

    # SaveLoRANode reports nothing in /history: the file was found by ComfyUI's naming rule.
    assert lora.output_path == f"loras/myspinbot/{job}_3_steps_00001_.safetensors"
    assert lora.lora_name == f"myspinbot/{job}_3_steps_00001_.safetensors"
    header = safetensors_header(tmp_path / "lora.safetensors")
    assert {"myspinbot_test.lora_down.weight", "myspinbot_test.voice"} <= set(header)
    assert lora.lora_name in engine.http.models("loras")

    using = generate_graph(f"myspinbot/{unique('gen')}", lora=lora.lora_name)
    assert using["4"]["inputs"]["lora_name"] == lora.lora_name
    engine.preflight(using)
    assert engine.download_outputs(engine.run(using, engine.new_submission()), tmp_path)


def test_train_without_a_voice_bypasses_the_voice_loader(engine: ComfyUI, tmp_path: Path) -> None:
    job = unique("job")
    engine.upload_inputs(make_photos(tmp_path / "photos", 2), f"myspinbot/{job}")
    values = {
        "images": f"myspinbot/{job}",
        "voice": None,
        "name": "ada",
        "prefix": f"myspinbot/{job}_1",
        "lora_prefix": f"loras/myspinbot/{job}",
    }
    graph = load_workflow(WORKFLOWS, "train").fill(values)
    assert "2" not in graph and "audio" not in graph["3"]["inputs"]

    entry = engine.run(graph, engine.new_submission())
    lora = engine.download_lora(entry, graph, values["lora_prefix"], tmp_path / "lora.safetensors")
    assert "myspinbot_test.voice" not in safetensors_header(tmp_path / "lora.safetensors")
    assert lora.lora_name == f"myspinbot/{job}_3_steps_00001_.safetensors"


def test_a_workflow_comfyui_rejects_names_the_node_and_quotes_comfyui(engine: ComfyUI) -> None:
    graph = load_workflow(WORKFLOWS, "rejected").fill({"prefix": unique("bad")})
    with pytest.raises(WorkflowRejected) as caught:
        engine.run(graph, engine.new_submission())
    message = str(caught.value)
    assert 'node 2 (ImageScale, "Resize")' in message
    assert "Value not in list" in message and "sideways" in message


def test_a_workflow_comfyui_accepts_only_in_part_is_rejected_too(engine: ComfyUI) -> None:
    graph = load_workflow(WORKFLOWS, "partly_rejected").fill({"prefix": unique("half")})
    submission = engine.new_submission()
    with pytest.raises(WorkflowRejected) as caught:
        engine.run(graph, submission)
    assert "skipped part of the workflow" in str(caught.value)
    assert 'node 3 (ImageScale, "Resize")' in str(caught.value)
    # It was queued all the same (200): cancelling it is the caller's move, and works.
    engine.cancel(submission.prompt_id)


def test_preflight_names_a_missing_node_and_a_missing_model(engine: ComfyUI) -> None:
    engine.preflight(generate_graph("myspinbot/x"))
    graph = generate_graph("myspinbot/x", lora="myspinbot/not-trained.safetensors")
    with pytest.raises(MissingModel) as missing_model:
        engine.preflight(graph)
    assert 'node 4 (MySpinBotApplyLoRA, "Apply LoRA") input lora_name' in str(missing_model.value)
    assert "extra_model_paths.yaml" in str(missing_model.value)

    graph["9"] = {"class_type": "VHS_VideoCombine", "inputs": {}, "_meta": {"title": "Combine"}}
    with pytest.raises(MissingNode) as missing_node:
        engine.preflight(graph)
    assert 'node 9 (VHS_VideoCombine, "Combine")' in str(missing_node.value)


def submit_other_client(url: str, prefix: str) -> str:
    """A prompt of someone else (another client id), as a second app would send it."""
    prompt_id = str(uuid.uuid4())
    graph = generate_graph(prefix, steps=4, seconds_per_step=0.05)
    body = {"prompt": graph, "prompt_id": prompt_id, "client_id": uuid.uuid4().hex}
    assert httpx.post(f"{url}/prompt", json=body, timeout=10).status_code == 200
    return prompt_id


def test_cancel_stops_our_running_prompt_and_leaves_the_queued_one_of_another_client(
    engine: ComfyUI, comfyui_process: ComfyUIProcess
) -> None:
    cancel = threading.Event()
    theirs: list[str] = []

    def on_progress(step: float) -> None:
        if step == 2:
            theirs.append(submit_other_client(comfyui_process.url, f"other/{unique('x')}"))
            wait_until(lambda: theirs[0] in engine.queue().pending, message="their prompt queued")
            cancel.set()

    graph = generate_graph(f"myspinbot/{unique('long')}", steps=400, seconds_per_step=0.05)
    submission = engine.new_submission()
    with pytest.raises(PromptCancelled):
        engine.run(graph, submission, Recorder(on_progress), should_cancel=cancel.is_set)

    entry = engine.http.history(submission.prompt_id)
    assert entry is not None and entry["status"]["status_str"] == "error"
    assert any(kind == "execution_interrupted" for kind, _ in entry["status"]["messages"])
    theirs_done = wait_until(lambda: engine.http.history(theirs[0]), message="their prompt ran")
    assert theirs_done["status"]["status_str"] == "success"


def test_cancel_of_our_waiting_prompt_leaves_the_running_one_of_another_client(
    engine: ComfyUI, comfyui_process: ComfyUIProcess
) -> None:
    other = str(uuid.uuid4())
    long = generate_graph(f"other/{unique('long')}", steps=60, seconds_per_step=0.05)
    body = {"prompt": long, "prompt_id": other, "client_id": uuid.uuid4().hex}
    assert httpx.post(f"{comfyui_process.url}/prompt", json=body, timeout=10).status_code == 200
    wait_until(lambda: other in engine.queue().running, message="their prompt running")
    recorder = Recorder()
    cancel = threading.Event()

    def waiting() -> bool:
        if recorder.queued_ahead:
            cancel.set()
        return cancel.is_set()

    with pytest.raises(PromptCancelled):
        engine.run(
            generate_graph(f"myspinbot/{unique('q')}"), engine.new_submission(), recorder, waiting
        )

    assert recorder.queued_ahead[0] == 1  # "1 ahead in ComfyUI"
    assert recorder.started_count == 0
    assert other in engine.queue().running  # theirs was not interrupted
    done = wait_until(lambda: engine.http.history(other), timeout=60, message="their prompt")
    assert done["status"]["status_str"] == "success"


def test_comfyui_killed_and_restarted_mid_prompt_is_transient_and_the_prompt_is_resubmitted(
    engine: ComfyUI, comfyui_process: ComfyUIProcess
) -> None:
    restarted = threading.Event()

    def crash(step: float) -> None:
        if step == 2 and not restarted.is_set():
            restarted.set()
            comfyui_process.kill()
            threading.Thread(target=comfyui_process.start, daemon=True).start()

    graph = generate_graph(f"myspinbot/{unique('crash')}", steps=200, seconds_per_step=0.05)
    submission = engine.new_submission()
    with pytest.raises(PromptLost) as lost:
        engine.run(graph, submission, Recorder(crash))
    assert lost.value.transient and "restarted" in str(lost.value)

    # The next attempt looks for the stored prompt, finds nothing, and submits anew.
    assert engine.attach(submission, graph) is None
    graph["3"]["inputs"].update(steps=3)
    assert engine.run(graph, engine.new_submission())["status"]["status_str"] == "success"


def test_reattach_follows_a_prompt_still_running_then_finds_it_finished(engine: ComfyUI) -> None:
    graph = generate_graph(f"myspinbot/{unique('reattach')}", steps=30, seconds_per_step=0.05)
    submission = engine.new_submission()
    # An earlier attempt submitted and was lost before following it.
    engine.http.submit(graph, submission.prompt_id, submission.client_id)
    recorder = Recorder()

    entry = engine.attach(submission, graph, recorder)

    assert entry is not None and entry["status"]["status_str"] == "success"
    assert recorder.steps and recorder.steps[-1][:2] == (30.0, 30.0)
    again = Recorder()
    finished = engine.attach(submission, graph, again)
    assert finished is not None and finished["outputs"] == entry["outputs"]
    assert again.steps == [] and again.started_count == 0
