"""The node classes the stand-in knows, with the input definitions ComfyUI publishes for them.

Shapes are copied from `GET /object_info` of a real ComfyUI 0.3.64 (Comfy-Org/ComfyUI@a125cd84:
`nodes.py`, `comfy_extras/nodes_images.py`, `nodes_video.py`, `nodes_audio.py`,
`nodes_hunyuan.py`, `nodes_train.py`); tooltips and descriptions come from `node_text.py`. The 2026
training and dataset nodes follow the V3 rewrite (`comfy_extras/nodes_train.py` of
yzkee/ComfyUI@5ebb0c2e, `nodes_dataset.py` of Comfy-Org/ComfyUI@ef59e4b7): `SaveLoRA` replaces
`SaveLoRANode`, `TrainLoraNode` loses its MODEL output, `LoadImageDataSetFromFolder` replaces
`LoadImageSetFromFolderNode`.

Combo inputs whose options are files (`models/<folder>/`, input images, input audio, input
subfolders) are `Choices`, resolved against the base directory each time they are read.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .node_text import DESCRIPTIONS, TOOLTIPS, TOOLTIPS_2026
from .paths import BaseDir

UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
CLIP_TYPES = [
    "stable_diffusion", "stable_cascade", "sd3", "stable_audio", "mochi", "ltxv", "pixart",
    "cosmos", "lumina2", "wan", "hidream", "chroma", "ace", "omnigen2", "qwen_image",
    "hunyuan_image",
]  # fmt: skip
SAMPLERS = [
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2",
    "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral",
    "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp",
    "dpmpp_2m_sde", "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu",
    "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "lcm", "ipndm", "ipndm_v", "deis",
    "res_multistep", "res_multistep_cfg_pp", "res_multistep_ancestral",
    "res_multistep_ancestral_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp",
    "er_sde", "seeds_2", "seeds_3", "sa_solver", "sa_solver_pece", "ddim", "uni_pc",
    "uni_pc_bh2",
]  # fmt: skip
SCHEDULERS = [
    "simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal",
    "linear_quadratic", "kl_optimal",
]  # fmt: skip
SEED_MAX = 0xFFFFFFFFFFFFFFFF
HIDDEN_PROMPT = {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}


@dataclass(frozen=True)
class Choices:
    """A combo whose options are read from the base directory when needed."""

    source: str  # "models:<folder>", "input:image", "input:audio" or "input:folders"
    after: tuple[str, ...] = ()

    def resolve(self, base: BaseDir) -> list[str]:
        kind, _, arg = self.source.partition(":")
        if kind == "models":
            options = base.model_files(arg)
        elif arg == "folders":
            options = base.input_subfolders()
        else:
            options = base.input_files(("image",) if arg == "image" else ("audio", "video"))
        return options + list(self.after)


@dataclass(frozen=True)
class NodeDef:
    name: str
    display_name: str
    category: str
    python_module: str
    required: dict[str, tuple]
    outputs: tuple[str, ...] = ()
    output_names: tuple[str, ...] | None = None
    optional: dict[str, tuple] = field(default_factory=dict)
    hidden: dict[str, Any] = field(default_factory=dict)
    output_node: bool = False
    v3: bool = False
    experimental: bool = False
    description: str = ""
    output_is_list: tuple[bool, ...] | None = None
    input_is_list: bool = False  # INPUT_IS_LIST / is_input_list: gets whole lists, runs once
    output_tooltips: tuple[str | None, ...] | None = None
    # Inputs checked by the class's own VALIDATE_INPUTS instead of the generic rules.
    validated_by_node: tuple[str, ...] = ()
    # "sampler" (ProgressBar steps with previews), "trainer" (steps), or None.
    timed: str | None = None


def _v1(name, display, category, module, required, outputs=(), **extra) -> NodeDef:
    return NodeDef(name, display, category, module, required, tuple(outputs), **extra)


def _v3(name, display, category, module, required, outputs=(), **extra) -> NodeDef:
    return NodeDef(name, display, category, module, required, tuple(outputs), v3=True, **extra)


def _combo(options, default=None, **extra) -> tuple:
    # The V3 form of a combo: ["COMBO", {"default", "multiselect", "options"}].
    opts = {**extra, "multiselect": False, "options": options}
    if default is not None:
        opts = {"default": default, **opts}
    return ("COMBO", opts)


def _int(default, low, high, step=None, **extra) -> tuple:
    opts = {"default": default, "min": low, "max": high}
    if step is not None:
        opts["step"] = step
    return ("INT", {**opts, **extra})


def _float(default, low, high, step, **extra) -> tuple:
    return ("FLOAT", {"default": default, "min": low, "max": high, "step": step, **extra})


def _common_nodes() -> list[NodeDef]:
    size = _int(512, 0, 16384, 1)
    return [
        _v1("EmptyImage", "EmptyImage", "image", "nodes", {
            "width": _int(512, 1, 16384, 1), "height": _int(512, 1, 16384, 1),
            "batch_size": _int(1, 1, 4096),
            "color": _int(0, 0, 0xFFFFFF, 1, display="color"),
        }, ["IMAGE"]),
        _v1("ImageInvert", "Invert Image", "image", "nodes", {"image": ("IMAGE",)}, ["IMAGE"]),
        _v1("ImageScale", "Upscale Image", "image/upscaling", "nodes", {
            "image": ("IMAGE",), "upscale_method": (UPSCALE_METHODS,), "width": size,
            "height": size, "crop": (["disabled", "center"],),
        }, ["IMAGE"]),
        _v1("LoadImage", "Load Image", "image", "nodes",
            {"image": (Choices("input:image"), {"image_upload": True})}, ["IMAGE", "MASK"],
            validated_by_node=("image",)),
        _v1("SaveImage", "Save Image", "image", "nodes", {
            "images": ("IMAGE",),
            "filename_prefix": ("STRING", {"default": "ComfyUI"}),
        }, hidden=HIDDEN_PROMPT, output_node=True),
        _v1("PreviewImage", "Preview Image", "image", "nodes", {"images": ("IMAGE",)},
            hidden=HIDDEN_PROMPT, output_node=True),
        _v1("SaveAnimatedWEBP", "SaveAnimatedWEBP", "image/animation",
            "comfy_extras.nodes_images", {
                "images": ("IMAGE",), "filename_prefix": ("STRING", {"default": "ComfyUI"}),
                "fps": _float(6.0, 0.01, 1000.0, 0.01), "lossless": ("BOOLEAN", {"default": True}),
                "quality": _int(80, 0, 100), "method": (["default", "fastest", "slowest"],),
            }, hidden=HIDDEN_PROMPT, output_node=True),
        _v3("CreateVideo", "Create Video", "image/video", "comfy_extras.nodes_video", {
            "images": ("IMAGE",),
            "fps": _float(30.0, 1.0, 120.0, 1.0),
        }, ["VIDEO"], optional={"audio": ("AUDIO",)},
            output_tooltips=(None,)),
        _v3("SaveVideo", "Save Video", "image/video", "comfy_extras.nodes_video", {
            "video": ("VIDEO",),
            "filename_prefix": ("STRING", {"default": "video/ComfyUI", "multiline": False}),
            "format": _combo(["auto", "mp4"], "auto"), "codec": _combo(["auto", "h264"], "auto"),
        }, hidden={"prompt": ("PROMPT",), "extra_pnginfo": ("EXTRA_PNGINFO",)}, output_node=True,
            output_tooltips=()),
        _v1("LoadAudio", "Load Audio", "audio", "comfy_extras.nodes_audio",
            {"audio": (Choices("input:audio"), {"audio_upload": True})}, ["AUDIO"],
            validated_by_node=("audio",)),
        _v1("SaveAudio", "Save Audio (FLAC)", "audio", "comfy_extras.nodes_audio", {
            "audio": ("AUDIO",), "filename_prefix": ("STRING", {"default": "audio/ComfyUI"}),
        }, hidden=HIDDEN_PROMPT, output_node=True),
        _v1("UNETLoader", "Load Diffusion Model", "advanced/loaders", "nodes", {
            "unet_name": (Choices("models:diffusion_models"),),
            "weight_dtype": (["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"],),
        }, ["MODEL"]),
        _v1("CLIPLoader", "Load CLIP", "advanced/loaders", "nodes",
            {"clip_name": (Choices("models:text_encoders"),), "type": (CLIP_TYPES,)}, ["CLIP"],
            optional={"device": (["default", "cpu"], {"advanced": True})}),
        _v1("VAELoader", "Load VAE", "loaders", "nodes",
            {"vae_name": (Choices("models:vae", after=("pixel_space",)),)}, ["VAE"]),
        _v1("LoraLoaderModelOnly", "LoraLoaderModelOnly", "loaders", "nodes", {
            "model": ("MODEL",), "lora_name": (Choices("models:loras"),),
            "strength_model": _float(1.0, -100.0, 100.0, 0.01),
        }, ["MODEL"],
            output_tooltips=("The modified diffusion model.", "The modified CLIP model.")),
        _v1("CLIPTextEncode", "CLIP Text Encode (Prompt)", "conditioning", "nodes", {
            "text": ("STRING", {"multiline": True, "dynamicPrompts": True}), "clip": ("CLIP",),
        }, ["CONDITIONING"], output_tooltips=(
            "A conditioning containing the embedded text used to guide the diffusion model.",)),
        _v1("EmptyHunyuanLatentVideo", "EmptyHunyuanLatentVideo", "latent/video",
            "comfy_extras.nodes_hunyuan", {
                "width": _int(848, 16, 16384, 16), "height": _int(480, 16, 16384, 16),
                "length": _int(25, 1, 16384, 4), "batch_size": _int(1, 1, 4096),
            }, ["LATENT"]),
        _v1("KSampler", "KSampler", "sampling", "nodes", {
            "model": ("MODEL",), "seed": _int(0, 0, SEED_MAX, control_after_generate=True),
            "steps": _int(20, 1, 10000), "cfg": _float(8.0, 0.0, 100.0, 0.1, round=0.01),
            "sampler_name": (SAMPLERS,), "scheduler": (SCHEDULERS,),
            "positive": ("CONDITIONING",), "negative": ("CONDITIONING",),
            "latent_image": ("LATENT",), "denoise": _float(1.0, 0.0, 1.0, 0.01),
        }, ["LATENT"], timed="sampler", output_tooltips=("The denoised latent.",)),
        _v1("VAEDecode", "VAE Decode", "latent", "nodes",
            {"samples": ("LATENT",), "vae": ("VAE",)}, ["IMAGE"],
            output_tooltips=("The decoded image.",)),
        _v1("CheckpointLoaderSimple", "Load Checkpoint", "loaders", "nodes",
            {"ckpt_name": (Choices("models:checkpoints"),)}, ["MODEL", "CLIP", "VAE"],
            output_tooltips=("The model used for denoising latents.",
                             "The CLIP model used for encoding text prompts.",
                             "The VAE model used for encoding and decoding images to and "
                             "from latent space.")),
        _v1("VAEEncode", "VAE Encode", "latent", "nodes",
            {"pixels": ("IMAGE",), "vae": ("VAE",)}, ["LATENT"]),
        # comfy_extras/nodes_rebatch.py (V3 in both generations)
        _v3("RebatchImages", "Rebatch Images", "image/batch", "comfy_extras.nodes_rebatch", {
            "images": ("IMAGE", {}), "batch_size": _int(1, 1, 4096),
        }, ["IMAGE"], output_is_list=(True,), input_is_list=True, output_tooltips=(None,)),
        _v3("RebatchLatents", "Rebatch Latents", "latent/batch", "comfy_extras.nodes_rebatch", {
            "latents": ("LATENT", {}), "batch_size": _int(1, 1, 4096),
        }, ["LATENT"], output_is_list=(True,), input_is_list=True, output_tooltips=(None,)),
    ]  # fmt: skip


def _training_2025() -> list[NodeDef]:
    module = "comfy_extras.nodes_train"
    return [
        _v1("LoadImageSetFromFolderNode", "Load Image Dataset from Folder", "loaders", module,
            {"folder": (Choices("input:folders"), {})},
            ["IMAGE"], optional={"resize_method": (["None", "Stretch", "Crop", "Pad"],
                                                   {"default": "None"})},
            experimental=True),
        _v1("LoadImageTextSetFromFolderNode", "Load Image and Text Dataset from Folder",
            "loaders", module, {"folder": (Choices("input:folders"), {}), "clip": ("CLIP",)},
            ["IMAGE", "CONDITIONING"], optional={
                "resize_method": (["None", "Stretch", "Crop", "Pad"], {"default": "None"}),
                "width": _int(-1, -1, 10000, 1), "height": _int(-1, -1, 10000, 1),
            }, experimental=True),
        _v1("TrainLoraNode", "Train LoRA", "training", module, {
            "model": ("MODEL",), "latents": ("LATENT",), "positive": ("CONDITIONING",),
            "batch_size": _int(1, 1, 10000, 1), "grad_accumulation_steps": _int(1, 1, 1024, 1),
            "steps": _int(16, 1, 100000), "learning_rate": _float(0.0005, 1e-07, 1.0, 1e-06),
            "rank": _int(8, 1, 128),
            "optimizer": (["AdamW", "Adam", "SGD", "RMSprop"], {"default": "AdamW"}),
            "loss_function": (["MSE", "L1", "Huber", "SmoothL1"], {"default": "MSE"}),
            "seed": _int(0, 0, SEED_MAX),
            "training_dtype": (["bf16", "fp32"], {"default": "bf16"}),
            "lora_dtype": (["bf16", "fp32"], {"default": "bf16"}),
            "algorithm": (["LoRA", "LoHa", "LoKr", "OFT"], {"default": "LoRA"}),
            "gradient_checkpointing": ("BOOLEAN", {"default": True}),
            "existing_lora": (Choices("models:loras", after=("[None]",)), {"default": "[None]"}),
        }, ["MODEL", "LORA_MODEL", "LOSS_MAP", "INT"],
            output_names=("model_with_lora", "lora", "loss", "steps"),
            experimental=True, timed="trainer"),
        _v1("SaveLoRANode", "Save LoRA Weights", "loaders", module, {
            "lora": ("LORA_MODEL",),
            "prefix": ("STRING", {"default": "loras/ComfyUI_trained_lora"}),
        }, optional={"steps": ("INT", {"forceInput": True})}, output_node=True,
            experimental=True),
        _v1("LossGraphNode", "Plot Loss Graph", "training", module, {
            "loss": ("LOSS_MAP", {"default": {}}),
            "filename_prefix": ("STRING", {"default": "loss_graph"}),
        }, hidden=HIDDEN_PROMPT, output_node=True, experimental=True),
    ]  # fmt: skip


def _training_2026() -> list[NodeDef]:
    module = "comfy_extras.nodes_train"
    return [
        _v3("LoadImageDataSetFromFolder", "Load Image (from Folder)", "image",
            "comfy_extras.nodes_dataset",
            {"folder": _combo(Choices("input:folders"))},
            ["IMAGE"], output_names=("images",), output_is_list=(True,), experimental=True,
            output_tooltips=("List of loaded images",)),
        _v3("LoadImageTextDataSetFromFolder", "Load Image and Text Dataset from Folder",
            "dataset", "comfy_extras.nodes_dataset", {"folder": _combo(Choices("input:folders"))},
            ["IMAGE", "STRING"], output_names=("images", "texts"), output_is_list=(True, True),
            experimental=True, output_tooltips=("List of loaded images", "List of text captions")),
        _v3("MakeTrainingDataset", "Make Training Dataset", "dataset",
            "comfy_extras.nodes_dataset",
            {"images": ("IMAGE",), "vae": ("VAE",), "clip": ("CLIP",)},
            ["LATENT", "CONDITIONING"], output_names=("latents", "conditioning"),
            optional={"texts": ("STRING", {"multiline": False})}, output_is_list=(True, True),
            input_is_list=True, experimental=True,
            output_tooltips=("List of latent dicts", "List of conditioning lists")),
        _v3("TrainLoraNode", "Train LoRA", "training", module, {
            "model": ("MODEL",), "latents": ("LATENT",), "positive": ("CONDITIONING",),
            "batch_size": _int(1, 1, 10000), "grad_accumulation_steps": _int(1, 1, 1024),
            "steps": _int(16, 1, 100000), "learning_rate": _float(0.0005, 1e-07, 1.0, 1e-07),
            "rank": _int(8, 1, 128),
            "optimizer": _combo(["AdamW", "Adam", "SGD", "RMSprop"], "AdamW"),
            "loss_function": _combo(["MSE", "L1", "Huber", "SmoothL1"], "MSE"),
            "seed": _int(0, 0, SEED_MAX),
            "training_dtype": _combo(["bf16", "fp32", "none"], "bf16"),
            "lora_dtype": _combo(["bf16", "fp32"], "bf16"),
            "quantized_backward": ("BOOLEAN", {"default": False}),
            "algorithm": _combo(["LoRA", "LoHa", "LoKr", "OFT"], "LoRA"),
            "gradient_checkpointing": ("BOOLEAN", {"default": True}),
            "checkpoint_depth": _int(1, 1, 5), "offloading": ("BOOLEAN", {"default": False}),
            "existing_lora": _combo(Choices("models:loras", after=("[None]",)), "[None]"),
            "bucket_mode": ("BOOLEAN", {"default": False}),
            "bypass_mode": ("BOOLEAN", {"default": False}),
        }, ["LORA_MODEL", "LOSS_MAP", "INT"], output_names=("lora", "loss_map", "steps"),
            output_tooltips=("LoRA weights", "Loss history", "Total training steps"),
            experimental=True, timed="trainer", input_is_list=True),
        _v3("SaveLoRA", "Save LoRA Weights", "loaders", module, {
            "lora": ("LORA_MODEL",),
            "prefix": ("STRING", {"default": "loras/ComfyUI_trained_lora"}),
        }, optional={"steps": ("INT", {})}, output_node=True, experimental=True,
            output_tooltips=()),
        _v3("LossGraphNode", "Plot Loss Graph", "training", module, {
            "loss": ("LOSS_MAP",),
            "filename_prefix": ("STRING", {"default": "loss_graph"}),
        }, hidden={"prompt": ("PROMPT",), "extra_pnginfo": ("EXTRA_PNGINFO",)}, output_node=True,
            experimental=True, output_tooltips=()),
    ]  # fmt: skip


def _with_text(node: NodeDef, tooltips: dict[tuple[str, str], str]) -> NodeDef:
    def described(name: str, spec: tuple) -> tuple:
        text = tooltips.get((node.name, name))
        if text is None:
            return spec
        kind, *rest = spec
        return (kind, {"tooltip": text, **(rest[0] if rest else {})})

    return replace(
        node,
        required={name: described(name, spec) for name, spec in node.required.items()},
        optional={name: described(name, spec) for name, spec in node.optional.items()},
        description=node.description or DESCRIPTIONS.get(node.name, ""),
    )


def node_table(generation: str) -> dict[str, NodeDef]:
    training = _training_2026() if generation == "2026" else _training_2025()
    tooltips = TOOLTIPS | TOOLTIPS_2026 if generation == "2026" else TOOLTIPS
    from .audio_video import audio_nodes  # its own module: sound on the clip

    nodes = _common_nodes() + training + audio_nodes()
    return {node.name: _with_text(node, tooltips) for node in nodes}


def resolve_spec(spec: tuple, base: BaseDir) -> list:
    """One input definition with its file-backed options filled in, as JSON would carry it."""
    kind, *rest = spec
    if isinstance(kind, Choices):
        kind = kind.resolve(base)
    if rest and isinstance(rest[0].get("options"), Choices):
        rest = [{**rest[0], "options": rest[0]["options"].resolve(base)}]
    return [kind, *rest]


def input_types(node: NodeDef, base: BaseDir) -> dict[str, dict[str, list]]:
    """The node's `INPUT_TYPES()`: required, optional and hidden inputs, resolved."""
    sections = {"required": node.required}
    if node.optional:
        sections["optional"] = node.optional
    out: dict[str, dict[str, Any]] = {}
    for section, inputs in sections.items():
        out[section] = {name: resolve_spec(spec, base) for name, spec in inputs.items()}
    if node.hidden:
        out["hidden"] = {k: list(v) if isinstance(v, tuple) else v for k, v in node.hidden.items()}
    return out


def node_info(node: NodeDef, base: BaseDir, generation: str) -> dict[str, Any]:
    """One entry of `GET /object_info`, in the V1 or V3 node's own layout."""
    inputs = input_types(node, base)
    names = list(node.output_names or node.outputs)
    info: dict[str, Any] = {
        "input": inputs,
        "input_order": {section: list(values) for section, values in inputs.items()},
    }
    if generation == "2026" and not node.v3:
        info["is_input_list"] = node.input_is_list
    info |= {
        "output": list(node.outputs),
        "output_is_list": list(node.output_is_list or [False] * len(node.outputs)),
        "output_name": names,
    }
    if node.v3:
        info["output_tooltips"] = list(node.output_tooltips or [None] * len(node.outputs))
    info |= {
        "name": node.name,
        "display_name": node.display_name,
        "description": node.description,
        "python_module": node.python_module,
        "category": node.category,
        "output_node": node.output_node,
    }
    if node.v3:
        info |= {"deprecated": False, "experimental": node.experimental, "api_node": False}
        return info
    if generation == "2026":
        info["has_intermediate_output"] = False
    if node.output_tooltips:
        info["output_tooltips"] = list(node.output_tooltips)
    if node.experimental:
        info["experimental"] = True
    if generation == "2026":
        info["search_aliases"] = []
    return info
