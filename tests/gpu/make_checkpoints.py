"""Random-weight checkpoints of the shipped workflows' models, built with ComfyUI's own classes.

    python tests/gpu/make_checkpoints.py --comfyui /path/to/ComfyUI --models DIR \
        [--parts wan,vae,text_encoder] [--device cuda] [--tiny]

Run it with the Python that runs ComfyUI (torch, safetensors, sentencepiece). It writes,
under the names the shipped workflows load:

- `diffusion_models/wan2.1_t2v_1.3B_bf16.safetensors`: `comfy.ldm.wan.model.WanModel` as
  Wan 2.1 text-to-video 1.3B (dim 1536, ffn 8960, 30 blocks, 12 heads; ComfyUI reads these
  back from the weights, `comfy/model_detection.py`); `--tiny`: dim 128, 2 blocks.
- `vae/wan_2.1_vae.safetensors`: `comfy.ldm.wan.vae.WanVAE` with the config `comfy/sd.py`
  builds for a Wan 2.1 VAE (dim 96, z 16; fixed there, so `--tiny` keeps it).
- `text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors`: `comfy.text_encoders.t5.T5` with
  ComfyUI's `umt5_config_xxl.json` (the loader builds that config whatever the file holds),
  in bf16 despite the name, plus a `spiece_model` tensor: a small SentencePiece model
  trained here with UMT5's special ids (pad 0, eos 1, unk 2), since ComfyUI's Wan
  tokenizer reads its vocabulary from the checkpoint. Skipped with `--tiny`.

Weights are normal(0, 0.02), norms 1, biases 0: the output is noise; the point is that
every node, shape and LoRA key works.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import time
from pathlib import Path

WAN_FILE = "diffusion_models/wan2.1_t2v_1.3B_bf16.safetensors"
VAE_FILE = "vae/wan_2.1_vae.safetensors"
TE_FILE = "text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors"
WAN_1_3B = {"dim": 1536, "ffn_dim": 8960, "num_heads": 12, "num_layers": 30}
WAN_TINY = {"dim": 128, "ffn_dim": 256, "num_heads": 1, "num_layers": 2}
# comfy/sd.py, "Wan 2.1 VAE" branch
WAN_VAE = {
    "dim": 96,
    "z_dim": 16,
    "dim_mult": [1, 2, 4, 4],
    "num_res_blocks": 2,
    "attn_scales": [],
    "temperal_downsample": [False, True, True],
    "dropout": 0.0,
}
PARTS = ("wan", "vae", "text_encoder")


def random_state_dict(module, device: str, dtype, seed: int) -> dict:
    """One random tensor per entry of `module.state_dict()` (built on the meta device)."""
    import torch

    generator = torch.Generator(device=device).manual_seed(seed)
    out = {}
    for name, meta in module.state_dict().items():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("gamma",) or (leaf == "weight" and "norm" in name):
            tensor = torch.ones(meta.shape, device=device, dtype=dtype)
        elif leaf == "bias" or leaf == "beta":
            tensor = torch.zeros(meta.shape, device=device, dtype=dtype)
        else:
            tensor = torch.empty(meta.shape, device=device, dtype=torch.float32)
            tensor.normal_(0.0, 0.02, generator=generator)
            tensor = tensor.to(dtype)
        out[name] = tensor.contiguous()
    return out


def save(tensors: dict, path: Path, metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.cpu() if hasattr(v, "cpu") else v for k, v in tensors.items()}, str(path),
              metadata=metadata)  # fmt: skip


def make_wan(models: Path, device: str, tiny: bool) -> Path:
    import comfy.ldm.wan.model
    import comfy.ops
    import torch

    size = WAN_TINY if tiny else WAN_1_3B
    with torch.device("meta"):
        model = comfy.ldm.wan.model.WanModel(
            model_type="t2v", in_dim=16, out_dim=16, text_dim=4096, text_len=512,
            operations=comfy.ops.disable_weight_init, **size,
        )  # fmt: skip
    path = models / WAN_FILE
    save(random_state_dict(model, device, torch.bfloat16, 1), path, {"random": "wan2.1"})
    return path


def make_vae(models: Path, device: str) -> Path:
    import comfy.ldm.wan.vae
    import torch

    with torch.device("meta"):
        model = comfy.ldm.wan.vae.WanVAE(**WAN_VAE)
    path = models / VAE_FILE
    save(random_state_dict(model, device, torch.float16, 2), path, {"random": "wan2.1 vae"})
    return path


def spiece_model(vocab_size: int = 512) -> bytes:
    """A SentencePiece model with UMT5's special ids, trained on made-up sentences."""
    import sentencepiece

    rng = random.Random(3)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(3000)]
    lines = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(4000)]
    lines += ["msb a photo of a person waving on a beach at dusk, tracking shot"] * 50
    out = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=out, vocab_size=vocab_size,
        model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
    )  # fmt: skip
    return out.getvalue()


def make_text_encoder(models: Path, device: str, comfyui: Path) -> Path:
    import comfy.ops
    import comfy.text_encoders.t5
    import torch

    config = json.loads((comfyui / "comfy/text_encoders/umt5_config_xxl.json").read_text())
    with torch.device("meta"):
        model = comfy.text_encoders.t5.T5(config, None, "meta", comfy.ops.disable_weight_init)
    tensors = random_state_dict(model, device, torch.bfloat16, 4)
    proto = spiece_model()
    tensors["spiece_model"] = torch.frombuffer(bytearray(proto), dtype=torch.uint8)
    path = models / TE_FILE
    save(tensors, path, {"random": "umt5-xxl"})
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--comfyui", type=Path, required=True, help="a ComfyUI checkout")
    parser.add_argument("--models", type=Path, required=True, help="its models/ folder")
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="a tiny Wan model, no text encoder")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.comfyui.resolve()))
    import comfy.cli_args  # before comfy.model_management reads it at import

    comfy.cli_args.args.cpu = args.device == "cpu"
    parts = [part for part in args.parts.split(",") if part]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    for part in parts:
        if part == "text_encoder" and args.tiny:
            continue
        started = time.monotonic()
        if part == "wan":
            path = make_wan(args.models, args.device, args.tiny)
        elif part == "vae":
            path = make_vae(args.models, args.device)
        else:
            path = make_text_encoder(args.models, args.device, args.comfyui)
        size = path.stat().st_size / 2**20
        print(f"made {path} ({size:.0f} MiB) in {time.monotonic() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
