#!/usr/bin/env bash
# Set up (idempotent) and run the main job on the bundled samples:
# fuse samples/{ir,vi} with the shipped weights into runs/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/lrcfuse fuse --ir samples/ir --vi samples/vi --out runs/demo "$@"
echo "[demo] fused images are in runs/demo/ (report: runs/demo/report.json)"
