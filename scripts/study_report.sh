#!/usr/bin/env bash
# Make a suite's report from its committed runs only (runs still in flight or finished but not yet committed are
# left out): a temporary worktree at HEAD, the report command of results/<suite>/report/command.txt run there, the
# report copied back into this checkout's results/<suite>/report (the command that rebuilds it in its command.txt; then commit it).
# Options after the folder go to `python -m analysis report`, e.g. a study in progress at a balanced point:
#   bash scripts/study_report.sh [results/study_v1] [--run-seeds 0 1 2 3]
set -euo pipefail
cd "$(dirname "$0")/.."
folder="${1:-results/study_v1}"
shift || true
if [ -n "$(git status --porcelain --untracked-files=no -- analysis sb3_ddpg_ext "$folder")" ]; then
  echo "study_report: uncommitted changes to analysis/, sb3_ddpg_ext/ or $folder: commit them first" >&2
  exit 1
fi
tmp="$(mktemp -d)"
trap 'git worktree remove --force "$tmp/tree" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
git worktree add --detach -q "$tmp/tree" HEAD
(cd "$tmp/tree" && python -m analysis report "$folder" --out "$folder/report" "$@")
rm -rf "$folder/report"
cp -r "$tmp/tree/$folder/report" "$folder/report"
echo "study_report: $folder/report made from the runs committed at $(git rev-parse --short HEAD)"
