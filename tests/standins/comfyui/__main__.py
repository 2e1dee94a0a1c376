"""`python -m tests.standins.comfyui --port 0 --ready-file PATH [options]`: run the stand-in.

Binds 127.0.0.1, writes its port (decimal text) to the ready file once it is listening, and
exits 0 on SIGTERM or SIGINT. Options:

--port N                 port to bind (0: any free one; the ready file says which)
--ready-file PATH        written, atomically, once the server accepts connections
--base-directory DIR     input/, output/, temp/, models/<folder>/ (temp/ is emptied at start)
--generation 2025|2026   2025: ComfyUI 0.3.64 (Comfy-Org/ComfyUI@a125cd84); 2026: the later
                         copies ENGINES.md cites (server.py @5e14d797, execution.py @cb707e9c,
                         nodes_train.py V3): UUID-only prompt ids, 409 for a known id,
                         `missing_node_type`, validated V3 combos, `credential_key`, /api/jobs,
                         SaveLoRA instead of SaveLoRANode, the dataset nodes' list outputs
                         and a training loop that reports steps (2025: console only)
--steps N                steps every timed node takes (0, the default: KSampler takes its
                         `steps` input, TrainLoraNode steps x grad_accumulation_steps, a --slow
                         class 10)
--step-seconds S         seconds per step (default 0.05)
--preview                KSampler steps send binary preview frames (JPEG, as ComfyUI's
                         Latent2RGB previews); --preview-format png sends PNG instead
--slow CLASS             make CLASS take --steps steps with `progress` frames (repeatable)
--max-upload-size MB     request body limit (default 100); past it aiohttp answers 413
--comfyui-version V      what /system_stats reports (default 0.3.64; 2026: 0.38.1, the
                         version of a stored comfyui_version.py, not tied to the cited commits)
--model FOLDER=NAME      create models/FOLDER/NAME (a small valid safetensors file) (repeatable)
--fail-class CLASS       every run of CLASS raises torch.OutOfMemoryError (repeatable)
--http-fault PATH=STATUS[:COUNT]
                         the next COUNT (default 1) requests to PATH answer STATUS (repeatable)
--extra-model-paths-config YAML
                         more model folders, as ComfyUI's extra_model_paths.yaml gives them
                         (e.g. `loras: output/loras` under a `base_path`)

The same faults, and a few more, can be armed while it runs: see `faults.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from ..serving import serve_until_signalled
from .app import Options, build_app
from .media import write_safetensors


def parse_args(argv: list[str]) -> tuple[Options, int, Path, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m tests.standins.comfyui")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--base-directory", type=Path, required=True)
    parser.add_argument("--generation", choices=("2025", "2026"), default="2025")
    parser.add_argument("--steps", type=int, default=0)
    parser.add_argument("--step-seconds", type=float, default=0.05)
    parser.add_argument("--preview", action="store_true")
    parser.add_argument("--preview-format", choices=("jpeg", "png"), default="jpeg")
    parser.add_argument("--slow", action="append", default=[])
    parser.add_argument("--max-upload-size", type=float, default=100)
    parser.add_argument("--comfyui-version")
    parser.add_argument("--model", action="append", default=[])
    parser.add_argument("--fail-class", action="append", default=[])
    parser.add_argument("--http-fault", action="append", default=[])
    parser.add_argument("--extra-model-paths-config", type=Path)
    args = parser.parse_args(argv)
    faults = []
    for spec in args.http_fault:
        path, _, rest = spec.partition("=")
        status, _, count = rest.partition(":")
        faults.append((path, int(status), int(count or 1)))
    options = Options(
        base_directory=args.base_directory,
        generation=args.generation,
        steps=args.steps,
        step_seconds=args.step_seconds,
        preview=args.preview_format if args.preview else None,
        slow_classes=tuple(args.slow),
        max_upload_size_mb=args.max_upload_size,
        version=args.comfyui_version,
        http_faults=faults,
        failing_classes=tuple(args.fail_class),
        extra_model_paths=args.extra_model_paths_config,
    )
    return options, args.port, args.ready_file, args.model


def create_model_files(base: Path, specs: list[str]) -> None:
    for spec in specs:
        folder, _, name = spec.partition("=")
        path = base / "models" / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            tensor = ("F32", [1], b"\x00\x00\x00\x00")
            write_safetensors(str(path), {"weight": tensor}, {"stand_in": "true"})


async def serve(options: Options, port: int, ready_file: Path) -> None:
    await serve_until_signalled(build_app(options), port, ready_file, shutdown_timeout=2)


def main(argv: list[str] | None = None) -> int:
    options, port, ready_file, models = parse_args(sys.argv[1:] if argv is None else argv)
    create_model_files(options.base_directory, models)
    asyncio.run(serve(options, port, ready_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
