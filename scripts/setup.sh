#!/usr/bin/env bash
# Install sb3_ddpg_ext with every optional part into the current Python environment.
# torch is pinned (constraints.txt) to the CPU wheel: an unpinned torch pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet -c constraints.txt "torch==2.13.0"
python -m pip install --quiet -c constraints.txt -e ".[all,test]"
