"""Run the shipped workflows on a ComfyUI once, small: train on a few photos, then render with
the LoRA it saved. Prints times, the dataset size the trainer saw and any node error.

    PYTHONPATH=<repo> python tests/gpu/run_smoke.py --url http://127.0.0.1:8188 \
        --base <ComfyUI base dir> [--log <ComfyUI's log>] [--photos 4] [--train-steps 4] ...

Standard library only (plus Pillow, which ComfyUI has), so ComfyUI's own Python runs it.
The workflow is chosen from the server's `/object_info` and filled exactly as MySpinBot
does (`myspinbot.engines.workflow_choice`, `workflows`); only sizes and step counts are
turned down. Photos and captions are laid out as a training job lays them out
(`photo-NN.png` + `photo-NN.txt`, the trigger token first). Exit status 0 when both
prompts succeed.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from myspinbot.engines.workflow_choice import choose_workflow
from myspinbot.engines.workflows import SHIPPED_WORKFLOWS

TRIGGER = "msb_smoke_000000"
# What the trainers log about their dataset (0.3.64 TrainLoraNode; current MakeTrainingDataset
# and TrainLoraNode; either generation's folder loaders).
DATASET_LINES = re.compile(
    r"Total Images: \d+.*|Created dataset with \d+ latents.*|Loaded \d+ images from .*"
    r"|Encoded \d+ captions.*|Total (?:samples|images)[^\n]*"
)


def call(url: str, path: str, body: dict | None = None, timeout: float = 60) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        return {"http_status": error.code, **json.loads(error.read() or b"{}")}


def make_photos(base: Path, count: int, size: int) -> str:
    """input/smoke/images/photo-NN.png + .txt, as a MySpinBot training job uploads them."""
    from PIL import Image

    folder = base / "input" / "smoke" / "images"
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(5)
    for number in range(1, count + 1):
        pixels = bytes(rng.randrange(256) for _ in range(size * size * 3))
        Image.frombytes("RGB", (size, size), pixels).save(folder / f"photo-{number:02d}.png")
        (folder / f"photo-{number:02d}.txt").write_text(f"{TRIGGER}, a photo of smoke\n")
    return "smoke/images"


def set_inputs(graph: dict, class_type: str, **values: Any) -> None:
    for node in graph.values():
        if node["class_type"] == class_type:
            node["inputs"].update({k: v for k, v in values.items() if k in node["inputs"]})


def run(url: str, graph: dict, label: str, timeout: float) -> tuple[bool, dict]:
    """Queue the prompt, wait for its history; print time and any node error."""
    started = time.monotonic()
    answer = call(url, "/prompt", {"prompt": graph, "client_id": uuid.uuid4().hex})
    if "prompt_id" not in answer or answer.get("node_errors"):
        print(f"[{label}] refused: {json.dumps(answer, indent=1)[:4000]}")
        return False, {}
    prompt_id = answer["prompt_id"]
    while time.monotonic() - started < timeout:
        entry = call(url, f"/history/{prompt_id}").get(prompt_id)
        if entry and entry.get("status", {}).get("completed") is not None:
            break
        time.sleep(0.5)
    else:
        print(f"[{label}] still running after {timeout:.0f} s")
        return False, {}
    seconds = time.monotonic() - started
    status = entry.get("status", {})
    ok = status.get("status_str") == "success"
    print(f"[{label}] {'ok' if ok else status.get('status_str')} in {seconds:.1f} s")
    for kind, data in status.get("messages", []):
        if kind == "execution_error":
            print(
                f"[{label}] node {data.get('node_id')} ({data.get('node_type')}): "
                f"{data.get('exception_type')}: {data.get('exception_message', '').strip()}"
            )
        if kind in ("execution_start", "execution_success", "execution_error"):
            print(f"[{label}]   {kind} at {data.get('timestamp')}")
    return ok, entry


def wait_listed(url: str, lora_name: str, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if lora_name in call(url, "/models/loras"):
            return True
        time.sleep(0.5)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--base", type=Path, required=True, help="ComfyUI's --base-directory")
    parser.add_argument("--log", type=Path, help="ComfyUI's log (for the dataset size)")
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--size", type=int, default=256, help="photo side, pixels")
    parser.add_argument("--train-steps", type=int, default=4)
    parser.add_argument("--sample-steps", type=int, default=4)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--length", type=int, default=9, help="video frames (1 + 4k)")
    parser.add_argument("--timeout", type=float, default=420, help="seconds per prompt")
    args = parser.parse_args(argv)

    known = set(call(args.url, "/object_info", timeout=120))
    version = call(args.url, "/system_stats").get("system", {}).get("comfyui_version")
    train = choose_workflow(SHIPPED_WORKFLOWS, "train", lambda asked: set(asked) & known)
    print(f"ComfyUI {version}: training with {train.source}")
    stem = f"smoke-{int(time.time())}"
    values = {
        "images": make_photos(args.base, args.photos, args.size),
        "name": "smoke",
        "trigger": TRIGGER,
        "seed": 1,
        "voice": None,
        "prefix": f"myspinbot/{stem}",
        "lora_prefix": f"loras/myspinbot/{stem}",
    }
    graph = train.fill(values)
    set_inputs(graph, "TrainLoraNode", steps=args.train_steps)
    set_inputs(graph, "LoadImageTextSetFromFolderNode", width=args.size, height=args.size)
    trained, _ = run(args.url, graph, "train", args.timeout)
    if args.log and args.log.exists():
        for line in DATASET_LINES.findall(args.log.read_text(errors="replace")):
            print(f"[train] ComfyUI logged: {line.strip()}")
    saved = sorted((args.base / "output" / "loras" / "myspinbot").glob(f"{stem}_*.safetensors"))
    if not trained or not saved:
        print("no LoRA saved: nothing to render with")
        return 1
    lora_name = saved[-1].relative_to(args.base / "output" / "loras").as_posix()
    print(f"[train] LoRA {lora_name} ({saved[-1].stat().st_size / 2**20:.1f} MiB)")
    if not wait_listed(args.url, lora_name):
        print("the LoRA is not listed by /models/loras (is output/loras a loras path?)")
        return 1
    generate = choose_workflow(SHIPPED_WORKFLOWS, "generate", lambda asked: set(asked) & known)
    graph = generate.fill({
        "prompt": f"{TRIGGER}, a person waving on a beach",
        "negative_prompt": "blurry",
        "seed": 1,
        "lora": lora_name,
        "prefix": f"myspinbot/{stem}",
    })  # fmt: skip
    set_inputs(
        graph, "EmptyHunyuanLatentVideo", width=args.width, height=args.height, length=args.length
    )
    set_inputs(graph, "KSampler", steps=args.sample_steps)
    rendered, entry = run(args.url, graph, "generate", args.timeout)
    for output in entry.get("outputs", {}).values():
        for item in output.get("images", []) + output.get("gifs", []):
            print(f"[generate] saved {item.get('subfolder')}/{item.get('filename')}")
    return 0 if rendered else 1


if __name__ == "__main__":
    sys.exit(main())
