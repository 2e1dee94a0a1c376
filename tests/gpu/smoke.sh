#!/usr/bin/env bash
# GPU smoke run of the shipped workflows, with random weights (no download).
#
#   tests/gpu/smoke.sh /path/to/ComfyUI [python]
#
# On a machine with an NVIDIA GPU and ComfyUI's dependencies (`python` defaults to $PYTHON,
# else python3: the one that runs ComfyUI), in a scratch folder of its own:
#   1. makes random-weight checkpoints of Wan 2.1 T2V 1.3B, its VAE and the UMT5-XXL text
#      encoder with ComfyUI's own model classes (make_checkpoints.py);
#   2. starts that ComfyUI on a free loopback port, output/loras among its loras paths;
#   3. runs the training workflow chosen for that server on 4 photos (4 steps), then the
#      generate workflow with the LoRA it saved (4 steps, 256x256, 9 frames) (run_smoke.py);
#   4. prints times, the dataset size the trainer logged, any node error, and the peak GPU
#      memory nvidia-smi saw.
# All of it within 10 minutes (SMOKE_SECONDS); exit status 0 when both prompts succeed.
# The outputs are noise: the point is that every node, shape and LoRA key works.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
comfyui=$(cd "${1:?usage: tests/gpu/smoke.sh /path/to/ComfyUI [python]}" && pwd)
python=${2:-${PYTHON:-python3}}
limit=${SMOKE_SECONDS:-600}
work=$(mktemp -d "${TMPDIR:-/tmp}/myspinbot-smoke.XXXXXX")
base=$work/base
mkdir -p "$base/models" "$base/output/loras" "$base/input" "$base/custom_nodes"
printf 'myspinbot:\n  base_path: %s\n  loras: output/loras\n' "$base" >"$work/extra_model_paths.yaml"
began=$(date +%s)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
left() { echo $((limit - ($(date +%s) - began))); }

command -v nvidia-smi >/dev/null || { echo "no nvidia-smi: this needs an NVIDIA GPU" >&2; exit 2; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$python" -c 'import sys; print("python", sys.version.split()[0])'
"$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
echo "ComfyUI $(cd "$comfyui" && git describe --tags --always 2>/dev/null || echo '(not a git checkout)')"
echo "scratch folder: $work"

echo "== random-weight checkpoints"
timeout "$(left)" "$python" "$here/make_checkpoints.py" \
    --comfyui "$comfyui" --models "$base/models" --device cuda
echo "checkpoints made after $(($(date +%s) - began)) s"

nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 250 >"$work/gpu-memory.log" &
pids+=($!)

echo "== ComfyUI"
port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
options=(--listen 127.0.0.1 --port "$port" --base-directory "$base"
    --extra-model-paths-config "$work/extra_model_paths.yaml" --disable-auto-launch)
if "$python" "$comfyui/main.py" --help 2>/dev/null | grep -q -- --database-url; then
    options+=(--database-url "sqlite:///:memory:")
fi
(cd "$work" && exec "$python" "$comfyui/main.py" "${options[@]}" >"$work/comfyui.log" 2>&1) &
pids+=($!)
until curl -fs "http://127.0.0.1:$port/system_stats" >/dev/null; do
    if ! kill -0 "${pids[-1]}" 2>/dev/null || [ "$(left)" -le 0 ]; then
        echo "ComfyUI did not start:" >&2
        tail -40 "$work/comfyui.log" >&2
        exit 1
    fi
    sleep 1
done
echo "ComfyUI up after $(($(date +%s) - began)) s"

echo "== shipped workflows"
status=0
PYTHONPATH="$repo" timeout "$(left)" "$python" "$here/run_smoke.py" \
    --url "http://127.0.0.1:$port" --base "$base" --log "$work/comfyui.log" \
    --photos 4 --train-steps 4 --sample-steps 4 --width 256 --height 256 --length 9 \
    --timeout "$(left)" || status=$?

echo "== summary"
peak=$(sort -n "$work/gpu-memory.log" | tail -1)
echo "peak GPU memory in use (nvidia-smi, whole GPU): ${peak:-?} MiB"
echo "total: $(($(date +%s) - began)) s, exit status $status"
grep -E "Traceback|Error|error" "$work/comfyui.log" | tail -20 || true
echo "ComfyUI log: $work/comfyui.log"
exit "$status"
