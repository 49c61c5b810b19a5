#!/usr/bin/env bash
# Set up (idempotent) and run the checks: ruff, then the test suite. The suite runs inside a
# private network namespace (loopback only) where it can, because its ROS tests start real DDS.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m ruff check lrcfuse_model lrcfuse_ros tests
bash scripts/private_net.sh .venv/bin/python -m pytest -q "$@"
