"""Clients of the engines behind the pipelines: ComfyUI renders and trains, Ollama writes.

They speak their servers' protocols and know nothing of MySpinBot's routes, Redis or jobs;
the pipelines compose them. Start at `comfyui.ComfyUI`, `ollama.Ollama` and `workflows`.
"""
