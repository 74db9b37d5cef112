#!/usr/bin/env bash
# README test command: set up, lint, type-check and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RAY_AUTH_MODE=disabled
python -m ruff check .
python -m mypy
python -m pytest -n 2 --durations=15 "$@"
