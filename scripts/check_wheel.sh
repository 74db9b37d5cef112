#!/usr/bin/env bash
# Wheel acceptance check (CI runs it from .ci/run): build the wheel, install it with the zoo and analysis extras into
# a fresh venv, and from a folder outside the repository run what a user of the installed package runs:
# `sb3_ddpg_ext.zoo resolve`, `sb3_ddpg_ext.train --algo ddpg_ext` with its default config (the shipped YAMLs), the
# runner's `list` and `run smoke`, a run's command.txt re-run from that folder, and the report. Also checks that the
# wheel installs no top-level `analysis` or `benchmarks` package.
#
#   bash scripts/check_wheel.sh
#
# Environment: WHEEL_VENV=DIR keeps the venv in DIR (default: a temporary folder, removed at exit);
# PYTHON=python3.11 picks the interpreter (default: python; torch 2.13.0's CPU wheel is for Python 3.11).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
start=$(date +%s)
PYTHON=${PYTHON:-python}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
venv=${WHEEL_VENV:-$tmp/venv}

"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$tmp/dist" .
wheel=$(ls "$tmp"/dist/sb3_ddpg_ext-*.whl)
echo "wheel check: built $(basename "$wheel")"
[[ -x "$venv/bin/python" ]] || "$PYTHON" -m venv "$venv"
py=$venv/bin/python
"$py" -m pip install --quiet --upgrade pip
# torch first, from its pin (the CPU wheel on disk), so nothing below can pull another build.
"$py" -m pip install --quiet -c constraints.txt "torch==2.13.0"
"$py" -m pip install --quiet -c constraints.txt --force-reinstall --no-deps "$wheel"
"$py" -m pip install --quiet -c constraints.txt "$wheel[zoo,analysis]"
echo "wheel check: installed in $(( $(date +%s) - start ))s"

work=$tmp/work
mkdir "$work"
cd "$work"
export RAY_AUTH_MODE=disabled
# Nothing may come from the repository: not on sys.path, no editable install.
"$py" - "$repo" <<'EOF'
import importlib.util
import sys
from importlib.metadata import distribution
from pathlib import Path

repo = Path(sys.argv[1]).resolve()
import sb3_ddpg_ext
import sb3_ddpg_ext.analysis
import sb3_ddpg_ext.benchmarks

for module in (sb3_ddpg_ext, sb3_ddpg_ext.analysis, sb3_ddpg_ext.benchmarks):
    path = Path(module.__file__).resolve()
    assert repo not in path.parents, f"{module.__name__} imported from the repository: {path}"
files = distribution("sb3_ddpg_ext").files or []
top = sorted({f.parts[0] for f in files if not f.parts[0].endswith((".dist-info", ".data"))})
assert top == ["sb3_ddpg_ext"], f"the wheel installs top-level names {top}"
for name in ("analysis", "benchmarks"):
    assert importlib.util.find_spec(name) is None, f"a top-level {name!r} is importable"
shipped = [str(f) for f in files if f.suffix in (".yml", ".json")]
for needed in ("sb3_ddpg_ext/hyperparams/ddpg.yml", "sb3_ddpg_ext/hyperparams/variants.yml",
               "sb3_ddpg_ext/benchmarks/suites/smoke.yml", "sb3_ddpg_ext/benchmarks/suites/study_v1.yml"):
    assert needed in shipped, f"{needed} is not in the wheel"
from sb3_ddpg_ext.benchmarks.suite import SOURCE_ROOT

assert SOURCE_ROOT is None, SOURCE_ROOT
print(f"wheel check: only sb3_ddpg_ext installed ({len(shipped)} YAML/JSON files), nothing from the repository")
EOF

"$py" -m sb3_ddpg_ext.zoo resolve --env HalfCheetah-v5 --variant tn_per_sample -o halfcheetah_tn.yml
grep -q "target_noise" halfcheetah_tn.yml
echo "wheel check: resolve wrote halfcheetah_tn.yml"

OMP_NUM_THREADS=1 "$py" -m sb3_ddpg_ext.train --algo ddpg_ext --env Pendulum-v1 -n 400 --seed 0 -f zoo_logs \
    --eval-freq 200 --eval-episodes 1 --n-eval-envs 1 -params learning_starts:100 --num-threads 1 > train.log 2>&1 \
    || { tail -30 train.log; exit 1; }
test -f zoo_logs/ddpg_ext/Pendulum-v1_1/evaluations.npz
echo "wheel check: train --algo ddpg_ext (default config) wrote zoo_logs/ddpg_ext/Pendulum-v1_1/evaluations.npz"

"$py" -m sb3_ddpg_ext.benchmarks list > suites.txt
grep -q "^smoke" suites.txt
"$py" -m sb3_ddpg_ext.benchmarks run smoke --out runs --jobs 2 --no-progress
"$py" -m sb3_ddpg_ext.benchmarks status smoke --out runs
run=runs/smoke/Pendulum-v1/baseline/seed_0
grep -q "^OMP_NUM_THREADS=1 .*-f $run/logs" "$run/command.txt"
if grep -rq "$work" runs; then echo "wheel check: absolute paths of the work folder in runs/:"; grep -rl "$work" runs; exit 1; fi
"$py" - "$run" <<'EOF'
import json
import sys

info = json.load(open(f"{sys.argv[1]}/run.json"))
assert info["status"] == "done" and info["git_commit"] is None and info["versions"]["sb3_ddpg_ext"], info
EOF
# command.txt re-runs the run from the folder the runner was started in (into a copy of its log folder).
cp -r "$run" rerun && rm -r rerun/logs
sed "s|$run/|rerun/|g" "$run/command.txt" > rerun.sh
PATH="$venv/bin:$PATH" bash rerun.sh > rerun.log 2>&1 || { tail -30 rerun.log; exit 1; }
"$py" - "$run" <<'EOF'
import sys
from pathlib import Path

import numpy as np

(first,) = Path(sys.argv[1], "logs").rglob("evaluations.npz")
(second,) = Path("rerun/logs").rglob("evaluations.npz")
a, b = np.load(first), np.load(second)
assert all(np.array_equal(a[k], b[k]) for k in ("timesteps", "results", "ep_lengths")), "the re-run differs"
print("wheel check: command.txt re-ran the run from the work folder with the same evaluations.npz")
EOF

"$py" -m sb3_ddpg_ext.analysis report runs/smoke --out report
test -s report/summary.csv && test -s report/report.md
grep -q "python -m sb3_ddpg_ext.analysis report runs/smoke --out report" report/report.md
echo "wheel check: report written; finished in $(( $(date +%s) - start ))s"
