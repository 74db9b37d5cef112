#!/usr/bin/env bash
# README demo command: set up, run the small real `demo` benchmark suite (resumable), then build the report.
#   bash scripts/demo.sh [OUT_DIR]      (default: ./runs ; the report goes to OUT_DIR/report)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs}"
bash scripts/setup.sh
export RAY_AUTH_MODE=disabled
# A non-zero exit of the runner means some runs failed; the report still lists them in its inventory.
python -m benchmarks run demo --out "$out" || echo "demo: some runs failed (see the report's inventory)" >&2
# the demo evaluates every 1k of 6k steps: "final" = mean of the last 2 evaluations (5k and 6k steps)
python -m analysis report "$out/demo" --out "$out/report" --final-k 2
echo "report: $out/report/report.html (and report.md, summary.csv, figures/)"
