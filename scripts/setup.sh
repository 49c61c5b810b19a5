#!/usr/bin/env bash
# Idempotent setup: a virtual environment in .venv with the CPU build of PyTorch installed
# first (so nothing pulls the CUDA wheels), then this package with the extras named in
# $LRCFUSE_EXTRAS (default: dev,export,openvino,ros,detect). Re-running it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRAS=${LRCFUSE_EXTRAS:-dev,export,openvino,ros,detect}
TORCH_VERSION=${LRCFUSE_TORCH_VERSION:-2.13.0}

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  echo "[setup] installing torch==$TORCH_VERSION (CPU build) first"
  "$VPY" -m pip install -q "torch==$TORCH_VERSION"
fi

stamp=.venv/.lrcfuse-installed
want="$(cat setup.py | sha256sum | cut -c1-16)-$EXTRAS"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! "$VPY" -c "import lrcfuse_model" >/dev/null 2>&1; then
  echo "[setup] installing lrcfuse_ros[$EXTRAS] (editable)"
  "$VPY" -m pip install -q -e ".[$EXTRAS]"
  echo "$want" > "$stamp"
fi
echo "[setup] ready: $("$VPY" -c 'import torch, lrcfuse_model; print("lrcfuse", lrcfuse_model.__version__, "torch", torch.__version__)')"
