"""A ComfyUI stand-in: a real aiohttp server speaking ComfyUI's HTTP and WebSocket protocol.

Built from ComfyUI's own source, not from any client of it: ComfyUI 0.3.64
(Comfy-Org/ComfyUI@a125cd84) for `--generation 2025`, the later `server.py` @5e14d797,
`execution.py` @cb707e9c, `comfy_execution/jobs.py` (comfyanonymous/ComfyUI@70408503) and the
V3 training nodes (yzkee/ComfyUI@5ebb0c2e) for `--generation 2026`. Each module's docstring
says which behaviour it follows and from where. Run it with `python -m tests.standins.comfyui`
(options in `__main__.py`), or from tests with `tests.standins.comfyui_standin`.

What it cannot be: no model is loaded and nothing is computed; images are flat colours,
"sampling" is waiting `--step-seconds` per step, and saved videos are Motion JPEG in MP4.
"""
