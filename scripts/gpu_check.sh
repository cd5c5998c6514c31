#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU (under 8 minutes):
#   scripts/gpu_check.sh [--out gpu_check.json] [--reps 20] [--model ViT-B-16]
#   scripts/gpu_check.sh --device cpu --smoke        # checks the script itself, no GPU needed
# fp16/bf16 vs fp32 (labels, probabilities), frames/s at 448x448 batch 1 and 4 and 640x480,
# peak VRAM, sync points per production frame, onnxruntime-gpu/TensorRT when installed
# (pip install onnxruntime-gpu onnx onnxscript). Seeded random weights; nothing is downloaded.
# Uses .venv (scripts/setup.sh) when present, else python3 with torch and open_clip installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY=python3
if [[ -x .venv/bin/python ]]; then
  set +u
  # shellcheck source=scripts/env.sh
  source scripts/env.sh
  set -u
  PY=python
fi
if ! "$PY" -c 'import torch, open_clip' 2>/dev/null; then
  echo "gpu_check.sh: $PY lacks torch or open_clip; run scripts/setup.sh or" \
       "pip install torch open_clip_torch==3.3.0 timm opencv-python-headless" >&2
  exit 2
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec timeout 480 "$PY" -m ovseg_ros.bench.gpu_check "$@"
