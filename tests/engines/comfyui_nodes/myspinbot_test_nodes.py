"""Test-only ComfyUI custom nodes (real ComfyUI code, loaded from custom_nodes/ by the rig).

MySpinBotSlowSteps stands in for a sampler: it takes `steps` steps of `seconds_per_step`,
reports each through comfy.utils.ProgressBar with a JPEG preview frame, and stops when
ComfyUI is interrupted. MySpinBotTinyLoRA turns a batch of photos (and optionally a voice)
into a LORA_MODEL dict that ComfyUI's own SaveLoRANode writes as a .safetensors file.
MySpinBotApplyLoRA passes images through after checking a LoRA file from the loras
folders, so a workflow can name a trained LoRA without any model weights.
"""

import time

import comfy.model_management
import comfy.utils
import folder_paths
import numpy as np
import safetensors.torch
from PIL import Image


def wait_interruptibly(seconds):
    deadline = time.monotonic() + seconds
    while True:
        comfy.model_management.throw_exception_if_processing_interrupted()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.01))


class MySpinBotSlowSteps:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE",),
                "steps": ("INT", {"default": 8, "min": 1, "max": 100000}),
                "seconds_per_step": ("FLOAT", {"default": 0.05, "min": 0.0, "max": 600.0}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF}),
            },
            "optional": {"text": ("STRING", {"default": "", "multiline": True})},
        }

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"
    CATEGORY = "testing"

    def run(self, images, steps, seconds_per_step, seed, text=""):
        bar = comfy.utils.ProgressBar(steps)
        shift = (seed % 97) / 970.0
        frames = images
        for step in range(1, steps + 1):
            wait_interruptibly(seconds_per_step)
            frames = (frames * 0.9 + shift).clamp(0.0, 1.0)
            pixels = (frames[0].cpu().numpy() * 255).astype(np.uint8)
            bar.update_absolute(step, steps, ("JPEG", Image.fromarray(pixels), 64))
        return (frames,)


class MySpinBotTinyLoRA:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE",),
                "steps": ("INT", {"default": 3, "min": 1, "max": 100000}),
            },
            "optional": {"audio": ("AUDIO",)},
        }

    RETURN_TYPES = ("LORA_MODEL", "INT")
    RETURN_NAMES = ("lora", "steps")
    FUNCTION = "train"
    CATEGORY = "testing"

    def train(self, images, steps, audio=None):
        bar = comfy.utils.ProgressBar(steps)
        weight = images.mean(dim=(0, 1, 2)).reshape(1, -1).repeat(4, 1).contiguous()
        for step in range(1, steps + 1):
            wait_interruptibly(0.01)
            bar.update_absolute(step, steps)
        lora = {"myspinbot_test.lora_down.weight": weight.float()}
        if audio is not None:
            lora["myspinbot_test.voice"] = audio["waveform"].float().mean().reshape(1)
        return (lora, steps)


class MySpinBotApplyLoRA:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE",),
                "lora_name": (folder_paths.get_filename_list("loras"),),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "apply"
    CATEGORY = "testing"

    def apply(self, images, lora_name):
        tensors = safetensors.torch.load_file(
            folder_paths.get_full_path_or_raise("loras", lora_name)
        )
        shift = float(next(iter(tensors.values())).float().mean()) * 0.1
        return ((images + shift).clamp(0.0, 1.0),)


NODE_CLASS_MAPPINGS = {
    "MySpinBotSlowSteps": MySpinBotSlowSteps,
    "MySpinBotTinyLoRA": MySpinBotTinyLoRA,
    "MySpinBotApplyLoRA": MySpinBotApplyLoRA,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "MySpinBotSlowSteps": "Slow Steps (MySpinBot test)",
    "MySpinBotTinyLoRA": "Tiny LoRA (MySpinBot test)",
    "MySpinBotApplyLoRA": "Apply LoRA (MySpinBot test)",
}
