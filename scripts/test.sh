#!/usr/bin/env bash
# Set up (idempotent) and run the checks: ruff, then the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m ruff check lrcfuse_model lrcfuse_ros tests
.venv/bin/python -m pytest -q "$@"
