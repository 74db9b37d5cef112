#!/usr/bin/env bash
# Commit the finished runs of a suite under results/ (running runs are left out): tails, path check, git add, commit.
#   bash scripts/commit_study.sh [results/study_v1]
set -euo pipefail
cd "$(dirname "$0")/.."
folder="${1:-results/study_v1}"
python scripts/publish_results.py "$folder"
python - "$folder" <<'PY' | xargs -0 -r git add --
import sys
from pathlib import Path
from benchmarks.runner import run_status
for run_json in sorted(Path(sys.argv[1]).rglob("run.json")):
    if run_status(run_json.parent) in ("done", "diverged", "failed", "corrupt"):
        sys.stdout.write(str(run_json.parent) + "\0")
PY
n=$(git diff --cached --name-only -- "$folder" | grep -c "/run.json$" || true)
if [ "$n" -gt 0 ]; then
  git commit -q -m "results: $n finished runs of $(basename "$folder")" -- "$folder"
  echo "committed $n finished runs"
else
  echo "nothing new to commit"
fi
