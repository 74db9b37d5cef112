"""
Published (or any) runs read at a step they trained past: each run's mean evaluation return in (STEP - WINDOW, STEP],
then per task and variant the mean over runs, with the runs' values. The study compares its final return (mean of the
last 5 evaluations, every 5k steps: (75k, 100k]) with the zoo's published logs and the TD3 paper's curves this way.

    python scripts/published_at_step.py ../shared/datasets/td3-paper-curves --step 100000 --window 25000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from analysis.align import window_means  # noqa: E402
from analysis.load import load_runs  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("runs", nargs="+", help="zoo log folders, runner folders or per-seed curve arrays")
    parser.add_argument("--step", type=int, required=True, help="last step of the window")
    parser.add_argument("--window", type=int, default=25_000, help="width of the window in steps (default 25000)")
    parser.add_argument("--curve-step", type=int, default=5000, help="steps between points of 1-D curve arrays")
    args = parser.parse_args(argv)
    loaded = load_runs(args.runs, curve_step=args.curve_step)
    per_run = window_means(loaded.evals, args.step, args.window)
    if per_run.empty:
        print(f"no run has evaluations in ({args.step - args.window}, {args.step}] and reaches step {args.step}")
        return 1
    print(f"mean evaluation return in ({args.step - args.window}, {args.step}] per run, then over runs")
    for (task, variant), cell in per_run.groupby(["task", "variant"]):
        values = ", ".join(f"{v:.0f}" for v in cell.sort_values("seed")["mean"])
        n_evals = "/".join(str(n) for n in sorted(set(cell["n_evals"])))
        print(f"{task}  {variant}: {cell['mean'].mean():.0f} over {len(cell)} runs ({n_evals} evaluations each): {values}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
