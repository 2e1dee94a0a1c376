#!/usr/bin/env bash
# Build (once) the virtual environment a ComfyUI checkout runs in for `make test-comfyui`.
# Usage: build_comfyui_venv.sh VENV COMFYUI_CHECKOUT
#
# torch 2.9.1 is the newest release that has all three of torch, torchvision and torchaudio
# on PyPI for Linux x86-64 and arm64 (torchaudio ends at 2.11, and PyPI's torchvision does
# not load beside a CPU-only torch); ComfyUI needs torchvision to start and torchaudio for
# its audio nodes. PyPI's build carries CUDA libraries (about 7.5 GB on x86-64) and runs on
# the CPU with --cpu. Re-running is a no-op while the pins and requirements.txt are the same.
set -euo pipefail
venv=$1
checkout=$2
python=${PYTHON:-python3}
pins="torch==2.9.1 torchvision==0.24.1 torchaudio==2.9.1"
requirements="$checkout/requirements.txt"
[ -f "$requirements" ] || { echo "no requirements.txt in $checkout: is it a ComfyUI checkout?" >&2; exit 2; }
stamp="$venv/.myspinbot-ready"
want="$pins $(sha256sum "$requirements" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
started=$(date +%s)
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet torch==2.9.1 torchvision==0.24.1
"$venv/bin/pip" install --quiet torch==2.9.1 torchaudio==2.9.1
"$venv/bin/pip" install --quiet -r "$requirements" requests
"$venv/bin/python" -c "import torch, torchvision, torchaudio, av"
echo "$want" > "$stamp"
echo "ComfyUI environment ready in $venv ($(( $(date +%s) - started )) s)"
