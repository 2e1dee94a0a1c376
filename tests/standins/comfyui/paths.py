"""The stand-in's base directory, laid out and looked up the way ComfyUI's `folder_paths.py` does.

Follows ComfyUI 0.3.64 (Comfy-Org/ComfyUI@a125cd84) `folder_paths.py`: `input/`, `output/`,
`temp/` and `models/<folder>/` under `--base-directory`; model lists are recursive, sorted,
`/`-separated and filtered by extension; `get_save_image_path` is the counter rule every save
node uses (`<prefix>_<counter:05>_.<ext>`, counter = 1 + the highest one already on disk).
"""

from __future__ import annotations

import mimetypes
import os
import shutil
import time
from pathlib import Path

PT_EXTENSIONS = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}

# name -> (subfolders of models/, extensions); the order is the one `GET /models` answers with.
MODEL_FOLDERS: dict[str, tuple[tuple[str, ...], set[str]]] = {
    "checkpoints": (("checkpoints",), PT_EXTENSIONS),
    "configs": (("configs",), {".yaml"}),
    "loras": (("loras",), PT_EXTENSIONS),
    "vae": (("vae",), PT_EXTENSIONS),
    "text_encoders": (("text_encoders", "clip"), PT_EXTENSIONS),
    "diffusion_models": (("unet", "diffusion_models"), PT_EXTENSIONS),
    "clip_vision": (("clip_vision",), PT_EXTENSIONS),
    "style_models": (("style_models",), PT_EXTENSIONS),
    "embeddings": (("embeddings",), PT_EXTENSIONS),
    "diffusers": (("diffusers",), {"folder"}),
    "vae_approx": (("vae_approx",), PT_EXTENSIONS),
    "controlnet": (("controlnet", "t2i_adapter"), PT_EXTENSIONS),
    "gligen": (("gligen",), PT_EXTENSIONS),
    "upscale_models": (("upscale_models",), PT_EXTENSIONS),
    "custom_nodes": (("../custom_nodes",), set()),
    "hypernetworks": (("hypernetworks",), PT_EXTENSIONS),
    "photomaker": (("photomaker",), PT_EXTENSIONS),
    "classifiers": (("classifiers",), {""}),
    "model_patches": (("model_patches",), PT_EXTENSIONS),
    "audio_encoders": (("audio_encoders",), PT_EXTENSIONS),
}
LEGACY_FOLDER_NAMES = {"unet": "diffusion_models", "clip": "text_encoders"}

mimetypes.init()
mimetypes.add_type("image/webp", ".webp")


class BaseDir:
    """`input/`, `output/`, `temp/` and `models/` under one root, as ComfyUI lays them out."""

    def __init__(self, root: Path, extra: dict[str, list[str]] | None = None) -> None:
        self.root = root.resolve()
        self.extra = extra or {}  # folder -> more absolute dirs (extra_model_paths.yaml)
        self.input = str(self.root / "input")
        self.output = str(self.root / "output")
        self.temp = str(self.root / "temp")
        self.models = self.root / "models"

    def prepare(self) -> None:
        """What ComfyUI's start-up leaves behind: temp/ emptied, input/ present."""
        shutil.rmtree(self.temp, ignore_errors=True)
        os.makedirs(self.temp, exist_ok=True)
        os.makedirs(self.input, exist_ok=True)
        os.makedirs(self.root / "custom_nodes", exist_ok=True)

    def directory_by_type(self, type_name: str | None) -> str | None:
        return {"output": self.output, "temp": self.temp, "input": self.input}.get(type_name or "")

    def model_files(self, folder: str) -> list[str]:
        """`folder_paths.get_filename_list`: every file under the folder's dirs, sorted."""
        folder = LEGACY_FOLDER_NAMES.get(folder, folder)
        subdirs, extensions = MODEL_FOLDERS[folder]
        found: set[str] = set()
        for base in self._dirs(folder, subdirs):
            for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
                dirnames[:] = [d for d in dirnames if d != ".git"]
                for name in filenames:
                    relative = os.path.relpath(os.path.join(dirpath, name), base)
                    if not extensions or os.path.splitext(relative)[-1].lower() in extensions:
                        found.add(relative)
        return sorted(found)

    def model_path(self, folder: str, name: str) -> str | None:
        folder = LEGACY_FOLDER_NAMES.get(folder, folder)
        if folder not in MODEL_FOLDERS:
            return None
        name = os.path.relpath(os.path.join("/", name), "/")
        for base in self._dirs(folder, MODEL_FOLDERS[folder][0]):
            candidate = os.path.join(base, name)
            if os.path.isfile(candidate):
                return candidate
        return None

    def _dirs(self, folder: str, subdirs: tuple[str, ...]) -> list[str]:
        return [os.path.normpath(self.models / sub) for sub in subdirs] + self.extra.get(folder, [])

    def input_files(self, content_types: tuple[str, ...]) -> list[str]:
        """Top-level files of input/ whose guessed MIME family is one of `content_types`."""
        try:
            names = os.listdir(self.input)
        except FileNotFoundError:
            return []
        files = [n for n in names if os.path.isfile(os.path.join(self.input, n))]
        return sorted(n for n in files if _content_type(n) in content_types)

    def input_subfolders(self) -> list[str]:
        folders = []
        for dirpath, _, _ in os.walk(self.input):
            relative = os.path.relpath(dirpath, self.input)
            if relative != ".":
                folders.append(relative.replace(os.sep, "/"))
        return sorted(folders)

    def annotated_path(self, name: str, default_dir: str | None = None) -> str:
        """`folder_paths.get_annotated_filepath`: `name [output]` etc. pick the base folder."""
        name, base = self.split_annotation(name)
        return os.path.join(base or default_dir or self.input, name)

    def split_annotation(self, name: str) -> tuple[str, str | None]:
        for suffix, base in ((" [output]", self.output), (" [input]", self.input)):
            if name.endswith(suffix.strip()):
                return name[: -len(suffix)], base
        if name.endswith("[temp]"):
            return name[:-7], self.temp
        return name, None


def _content_type(name: str) -> str | None:
    mime, _ = mimetypes.guess_type(name, strict=False)
    return mime.split("/")[0] if mime else None


def save_path(prefix: str, output_dir: str, width: int = 0, height: int = 0):
    """`folder_paths.get_save_image_path`: (folder, filename, counter, subfolder, prefix).

    Raises like ComfyUI when the prefix climbs out of `output_dir`.
    """
    if "%" in prefix:
        prefix = _expand_variables(prefix, width, height)
    subfolder = os.path.dirname(os.path.normpath(prefix))
    filename = os.path.basename(os.path.normpath(prefix))
    folder = os.path.join(output_dir, subfolder)
    common = os.path.commonpath((output_dir, os.path.abspath(folder)))
    if common != output_dir:
        raise Exception(
            "**** ERROR: Saving image outside the output folder is not allowed."
            f"\n full_output_folder: {os.path.abspath(folder)}"
            f"\n         output_dir: {output_dir}"
            f"\n         commonpath: {common}"
        )
    try:
        taken = [_counter_of(name, filename) for name in os.listdir(folder)]
        counter = max(c for c in taken if c is not None) + 1
    except ValueError:
        counter = 1
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
        counter = 1
    return folder, filename, counter, subfolder, prefix


def _counter_of(existing: str, filename: str) -> int | None:
    # ComfyUI compares the name's first len(prefix)+1 characters with `<prefix>_` and reads the
    # digits up to the next `_` (0 when they are not digits) -- hence its quirks, kept here.
    prefix_len = len(os.path.basename(filename))
    head = existing[: prefix_len + 1]
    if os.path.normcase(head[:-1]) != os.path.normcase(filename) or head[-1:] != "_":
        return None
    try:
        return int(existing[prefix_len + 1 :].split("_")[0])
    except ValueError:
        return 0


def _expand_variables(prefix: str, width: int, height: int) -> str:
    now = time.localtime()
    values = {
        "%width%": str(width),
        "%height%": str(height),
        "%year%": str(now.tm_year),
        "%month%": f"{now.tm_mon:02}",
        "%day%": f"{now.tm_mday:02}",
        "%hour%": f"{now.tm_hour:02}",
        "%minute%": f"{now.tm_min:02}",
        "%second%": f"{now.tm_sec:02}",
    }
    for key, value in values.items():
        prefix = prefix.replace(key, value)
    return prefix


def load_extra_model_paths(config: Path) -> dict[str, list[str]]:
    """`utils/extra_config.py` `load_extra_path_config`: each section's folders, each line of a
    value one path, relative ones under the section's `base_path` (itself relative to the
    file's folder)."""
    import yaml  # only when a config is given

    extra: dict[str, list[str]] = {}
    sections = yaml.safe_load(config.read_text()) or {}
    for section in sections.values():
        section = dict(section or {})
        base = os.path.expanduser(str(section.pop("base_path", "")))
        if base and not os.path.isabs(base):
            base = os.path.abspath(os.path.join(config.parent, base))
        section.pop("is_default", None)
        for folder, paths in section.items():
            for line in str(paths).split("\n"):
                if line.strip():
                    full = os.path.normpath(os.path.join(base, os.path.expanduser(line.strip())))
                    extra.setdefault(LEGACY_FOLDER_NAMES.get(folder, folder), []).append(full)
    return extra
