"""The words ComfyUI shows beside its inputs: tooltips and descriptions, copied verbatim.

They travel in `/object_info` and inside validation errors (`input_config`), so the stand-in
keeps them as the real nodes have them: 2025 from ComfyUI 0.3.64's own `GET /object_info`
(Comfy-Org/ComfyUI@a125cd84); 2026 for the V3 training nodes from yzkee/ComfyUI@5ebb0c2e
`comfy_extras/nodes_train.py` and Comfy-Org/ComfyUI@ef59e4b7 `comfy_extras/nodes_dataset.py`.
"""

from __future__ import annotations

PREFIX_TOOLTIP = (
    "The prefix for the file to save. This may include formatting information "
    "such as %date:yyyy-MM-dd% or %Empty Latent Image.width% to include values "
    "from nodes."
)

TOOLTIPS: dict[tuple[str, str], str] = {
    ("SaveImage", "images"): "The images to save.",
    ("SaveImage", "filename_prefix"): PREFIX_TOOLTIP,
    ("CreateVideo", "images"): "The images to create a video from.",
    ("CreateVideo", "audio"): "The audio to add to the video.",
    ("SaveVideo", "video"): "The video to save.",
    ("SaveVideo", "filename_prefix"): PREFIX_TOOLTIP,
    ("SaveVideo", "format"): "The format to save the video as.",
    ("SaveVideo", "codec"): "The codec to use for the video.",
    ("CLIPTextEncode", "text"): "The text to be encoded.",
    ("CLIPTextEncode", "clip"): "The CLIP model used for encoding the text.",
    ("KSampler", "model"): "The model used for denoising the input latent.",
    ("KSampler", "seed"): "The random seed used for creating the noise.",
    ("KSampler", "steps"): "The number of steps used in the denoising process.",
    ("KSampler", "cfg"): (
        "The Classifier-Free Guidance scale balances creativity and adherence to the "
        "prompt. Higher values result in images more closely matching the prompt "
        "however too high values will negatively impact quality."
    ),
    ("KSampler", "sampler_name"): (
        "The algorithm used when sampling, this can affect the quality, speed, and "
        "style of the generated output."
    ),
    (
        "KSampler",
        "scheduler",
    ): "The scheduler controls how noise is gradually removed to form the image.",
    ("KSampler", "positive"): (
        "The conditioning describing the attributes you want to include in the image."
    ),
    ("KSampler", "negative"): (
        "The conditioning describing the attributes you want to exclude from the image."
    ),
    ("KSampler", "latent_image"): "The latent image to denoise.",
    ("KSampler", "denoise"): (
        "The amount of denoising applied, lower values will maintain the structure of "
        "the initial image allowing for image to image sampling."
    ),
    ("VAEDecode", "samples"): "The latent to be decoded.",
    ("VAEDecode", "vae"): "The VAE model used for decoding the latent.",
    ("CheckpointLoaderSimple", "ckpt_name"): "The name of the checkpoint (model) to load.",
    ("LoadImageSetFromFolderNode", "folder"): "The folder to load images from.",
    ("LoadImageTextSetFromFolderNode", "folder"): "The folder to load images from.",
    ("LoadImageTextSetFromFolderNode", "clip"): "The CLIP model used for encoding the text.",
    ("LoadImageTextSetFromFolderNode", "width"): (
        "The width to resize the images to. -1 means use the original width."
    ),
    ("LoadImageTextSetFromFolderNode", "height"): (
        "The height to resize the images to. -1 means use the original height."
    ),
    ("TrainLoraNode", "model"): "The model to train the LoRA on.",
    (
        "TrainLoraNode",
        "latents",
    ): "The Latents to use for training, serve as dataset/input of the model.",
    ("TrainLoraNode", "positive"): "The positive conditioning to use for training.",
    ("TrainLoraNode", "batch_size"): "The batch size to use for training.",
    (
        "TrainLoraNode",
        "grad_accumulation_steps",
    ): "The number of gradient accumulation steps to use for training.",
    ("TrainLoraNode", "steps"): "The number of steps to train the LoRA for.",
    ("TrainLoraNode", "learning_rate"): "The learning rate to use for training.",
    ("TrainLoraNode", "rank"): "The rank of the LoRA layers.",
    ("TrainLoraNode", "optimizer"): "The optimizer to use for training.",
    ("TrainLoraNode", "loss_function"): "The loss function to use for training.",
    ("TrainLoraNode", "seed"): (
        "The seed to use for training (used in generator for LoRA weight "
        "initialization and noise sampling)"
    ),
    ("TrainLoraNode", "training_dtype"): "The dtype to use for training.",
    ("TrainLoraNode", "lora_dtype"): "The dtype to use for lora.",
    ("TrainLoraNode", "algorithm"): "The algorithm to use for training.",
    ("TrainLoraNode", "gradient_checkpointing"): "Use gradient checkpointing for training.",
    ("TrainLoraNode", "existing_lora"): "The existing LoRA to append to. Set to None for new LoRA.",
    ("SaveLoRANode", "lora"): "The LoRA model to save. Do not use the model with LoRA layers.",
    ("SaveLoRANode", "prefix"): "The prefix to use for the saved LoRA file.",
    ("SaveLoRANode", "steps"): (
        "Optional: The number of steps to LoRA has been trained for, used to name the saved file."
    ),
}

# What the 2026 V3 training and dataset nodes say instead.
TOOLTIPS_2026: dict[tuple[str, str], str] = {
    ("TrainLoraNode", "model"): "The model to train the LoRA on.",
    (
        "TrainLoraNode",
        "latents",
    ): "The Latents to use for training, serve as dataset/input of the model.",
    ("TrainLoraNode", "positive"): "The positive conditioning to use for training.",
    ("TrainLoraNode", "batch_size"): "The batch size to use for training.",
    (
        "TrainLoraNode",
        "grad_accumulation_steps",
    ): "The number of gradient accumulation steps to use for training.",
    ("TrainLoraNode", "steps"): "The number of steps to train the LoRA for.",
    ("TrainLoraNode", "learning_rate"): "The learning rate to use for training.",
    ("TrainLoraNode", "rank"): "The rank of the LoRA layers.",
    ("TrainLoraNode", "optimizer"): "The optimizer to use for training.",
    ("TrainLoraNode", "loss_function"): "The loss function to use for training.",
    ("TrainLoraNode", "seed"): (
        "The seed to use for training (used in generator for LoRA weight "
        "initialization and noise sampling)"
    ),
    ("TrainLoraNode", "training_dtype"): (
        "The dtype to use for training. 'none' preserves the model's native compute "
        "dtype instead of overriding it. For fp16 models, GradScaler is automatically "
        "enabled."
    ),
    ("TrainLoraNode", "lora_dtype"): "The dtype to use for lora.",
    ("TrainLoraNode", "quantized_backward"): (
        "When using training_dtype 'none' and training on quantized model, doing "
        "backward with quantized matmul when enabled."
    ),
    ("TrainLoraNode", "algorithm"): "The algorithm to use for training.",
    ("TrainLoraNode", "gradient_checkpointing"): "Use gradient checkpointing for training.",
    ("TrainLoraNode", "checkpoint_depth"): "Depth level for gradient checkpointing.",
    (
        "TrainLoraNode",
        "offloading",
    ): "Offload model weights to CPU during training to save GPU memory.",
    ("TrainLoraNode", "existing_lora"): "The existing LoRA to append to. Set to None for new LoRA.",
    ("TrainLoraNode", "bucket_mode"): (
        "Enable resolution bucket mode. When enabled, expects pre-bucketed latents "
        "from ResolutionBucket node."
    ),
    ("TrainLoraNode", "bypass_mode"): (
        "Enable bypass mode for training. When enabled, adapters are applied via "
        "forward hooks instead of weight modification. Useful for quantized models "
        "where weights cannot be directly modified."
    ),
    ("SaveLoRA", "lora"): "The LoRA model to save. Do not use the model with LoRA layers.",
    ("SaveLoRA", "prefix"): "The prefix to use for the saved LoRA file.",
    ("SaveLoRA", "steps"): (
        "Optional: The number of steps the LoRA has been trained for, used to name the saved file."
    ),
    ("LossGraphNode", "loss"): "Loss map from training node.",
    ("LossGraphNode", "filename_prefix"): "Prefix for the saved loss graph image.",
    ("LoadImageDataSetFromFolder", "folder"): "The folder to load images from.",
}

DESCRIPTIONS: dict[str, str] = {
    "SaveImage": "Saves the input images to your ComfyUI output directory.",
    "PreviewImage": "Saves the input images to your ComfyUI output directory.",
    "CreateVideo": "Create a video from images.",
    "SaveVideo": "Saves the input images to your ComfyUI output directory.",
    "CLIPLoader": (
        "[Recipes]\n\nstable_diffusion: clip-l\nstable_cascade: clip-g\nsd3: t5 xxl/ "
        "clip-g / clip-l\nstable_audio: t5 base\nmochi: t5 xxl\ncosmos: old t5 "
        "xxl\nlumina2: gemma 2 2B\nwan: umt5 xxl\n hidream: llama-3.1 (Recommend) or "
        "t5\nomnigen2: qwen vl 2.5 3B"
    ),
    "LoraLoaderModelOnly": (
        "LoRAs are used to modify diffusion and CLIP models, altering the way in "
        "which latents are denoised such as applying styles. Multiple LoRA nodes can "
        "be linked together."
    ),
    "CLIPTextEncode": (
        "Encodes a text prompt using a CLIP model into an embedding that can be used "
        "to guide the diffusion model towards generating specific images."
    ),
    "KSampler": (
        "Uses the provided model, positive and negative conditioning to denoise the latent image."
    ),
    "VAEDecode": "Decodes latent images back into pixel space images.",
    "CheckpointLoaderSimple": (
        "Loads a diffusion model checkpoint, diffusion models are used to denoise latents."
    ),
    "LoadImageSetFromFolderNode": "Loads a batch of images from a directory for training.",
    "LoadImageTextSetFromFolderNode": (
        "Loads a batch of images and caption from a directory for training."
    ),
    "LossGraphNode": "Plots the loss graph and saves it to the output directory.",
    "LoadImageDataSetFromFolder": (
        "Load a dataset of images from a specified folder and return a list of "
        "images. Supported formats: PNG, JPG, JPEG, WEBP."
    ),
}
