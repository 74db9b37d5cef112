"""
Prepare a suite's finished runs under ``results/`` for committing, then list what ``git add`` would take.

    python scripts/publish_results.py results/study_v1 [--max-lines 200]

Cuts the output files of every finished run to their tails (:func:`benchmarks.publish.publish_run`) and fails
(exit status 1) if a text file under the folder still holds an absolute path of this machine (the repository root,
its parent or the home folder). Running runs are left alone.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.publish import absolute_paths, publish_run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("folder", help="a suite's output folder, e.g. results/study_v1")
    parser.add_argument("--max-lines", type=int, default=200, help="lines kept of stdout.txt / stderr.txt")
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"error: {folder}: not a folder", file=sys.stderr)
        return 2
    cut = 0
    for run_json in sorted(folder.rglob("run.json")):
        cut += len(publish_run(run_json.parent, args.max_lines))
    needles = {os.path.abspath(REPO_ROOT), os.path.realpath(REPO_ROOT), str(Path.home()), os.path.dirname(REPO_ROOT)}
    needles.discard("/")
    hits = absolute_paths(folder, sorted(needles, key=len, reverse=True))
    print(f"{folder}: {cut} output files cut to their last {args.max_lines} lines")
    for path, needle in hits:
        print(f"absolute path {needle!r} in {path}", file=sys.stderr)
    return 1 if hits else 0


if __name__ == "__main__":
    sys.exit(main())
