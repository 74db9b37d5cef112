#!/usr/bin/env bash
# Lowest-versions check (CI runs it from .ci/run): in a fresh venv, install the LOWEST versions that setup.cfg
# declares for the direct dependencies (pinned in constraints-lowest.txt) and run the fast tests against them.
#
#   bash scripts/check_lowest_versions.sh [extra pytest args]
#
# Environment: LOWEST_VENV=DIR keeps the venv in DIR (default: a temporary folder, removed at exit);
# PYTHON=python3.11 picks the interpreter (default: python; torch 2.13.0's CPU wheel is for Python 3.11).
#
# Before installing it checks that constraints-lowest.txt pins exactly the lower bounds declared in setup.cfg
# (install_requires and the extras below), so the two cannot drift apart. Extras installed: zoo, mujoco, bullet,
# analysis, tensorboard, test. Not installed: ray and slurm (their fast tests skip without ray / submitit),
# box2d (the Box2D env tests skip without it). Transitive dependencies resolve to the newest compatible releases.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
PYTHON=${PYTHON:-python}
LOWEST=constraints-lowest.txt
EXTRAS=zoo,mujoco,bullet,analysis,tensorboard,test

"$PYTHON" - "$LOWEST" "$EXTRAS" <<'EOF'
"""Fail unless constraints-lowest.txt pins (==) exactly the >= lower bound of every checked setup.cfg requirement."""
import configparser
import re
import sys

# Tools that only the main CI run uses (lint / type check at their newest versions): no lower bound to test.
UNBOUNDED_OK = {"ruff", "mypy", "types-pyyaml"}
lowest_file, extras = sys.argv[1], sys.argv[2].split(",")


def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


cfg = configparser.ConfigParser()
cfg.read("setup.cfg")
reqs = cfg["options"]["install_requires"].strip().splitlines()
for extra in extras:
    reqs += cfg["options.extras_require"][extra].strip().splitlines()
declared, errors = {}, []
for req in (r.split("#")[0].strip() for r in reqs):
    if not req:
        continue
    m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)$", req)
    name, spec = norm(m.group(1)), m.group(3)
    low = re.search(r">=\s*([^,\s;]+)", spec)
    if low:
        declared[name] = low.group(1)
    elif name not in UNBOUNDED_OK:
        errors.append(f"setup.cfg: {req!r} declares no lower bound (>=): add one and pin it in {lowest_file}")
# The "all" extra repeats the other extras' requirements: each must carry the same bounds there.
specs = {}
for extra, value in cfg["options.extras_require"].items():
    for req in (r.strip() for r in value.strip().splitlines()):
        if req:
            specs.setdefault(norm(re.split(r"[\[<>=!~;\s]", req, maxsplit=1)[0]), {})[extra] = req.replace(" ", "")
for name, by_extra in specs.items():
    if "all" in by_extra and len(set(by_extra.values())) > 1:
        errors.append(f"setup.cfg: {name} differs between extras: {by_extra}")
pinned = {}
for line in open(lowest_file):
    line = line.split("#")[0].strip()
    if line:
        name, _, version = line.partition("==")
        pinned[norm(name.strip())] = version.strip()
for name, version in declared.items():
    if pinned.get(name) != version:
        errors.append(f"{lowest_file}: {name} must be pinned =={version} (setup.cfg's lower bound), found {pinned.get(name)}")
for name in pinned.keys() - declared.keys():
    errors.append(f"{lowest_file}: {name} is pinned but setup.cfg declares no lower bound for it in {extras}")
if errors:
    sys.exit("lowest-versions check: constraints do not match setup.cfg:\n  " + "\n  ".join(errors))
print(f"lowest-versions check: {len(declared)} lower bounds in setup.cfg match {lowest_file}")
EOF

if [[ -n "${LOWEST_VENV:-}" ]]; then
    venv=$LOWEST_VENV
else
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    venv=$tmp/venv
fi
"$PYTHON" -m venv "$venv"
py=$venv/bin/python
"$py" -m pip install --quiet --upgrade pip
# torch first, from its pin (the CPU wheel on disk), so nothing below can pull another build.
"$py" -m pip install --quiet -c "$LOWEST" "torch==2.13.0"
"$py" -m pip install --quiet -c "$LOWEST" -e ".[$EXTRAS]"
"$py" -m pip check
# What was installed, for the log: each pinned package's version.
"$py" - "$LOWEST" <<'EOF'
import sys
from importlib.metadata import version

names = [line.split("#")[0].split("==")[0].strip() for line in open(sys.argv[1])]
print("lowest-versions check: installed", " ".join(f"{n}=={version(n)}" for n in names if n))
EOF
echo "lowest-versions check: installed in $(( $(date +%s) - start ))s"

# SB3's TensorBoard output format needs the tensorboard extra.
"$py" - <<'EOF'
import tempfile

from stable_baselines3.common.logger import configure

with tempfile.TemporaryDirectory() as d:
    logger = configure(d, ["tensorboard"])
    logger.record("check/value", 1.0)
    logger.dump(step=1)
    logger.close()
print("lowest-versions check: SB3 tensorboard logging works")
EOF

export PATH="$venv/bin:$PATH"
python -m pytest -m "not slow" -n 2 -p no:cacheprovider --durations=10 "$@"
echo "lowest-versions check: finished in $(( $(date +%s) - start ))s"
