"""Benchmark of the analysis report (not a test): 1,000 synthetic runs x 100 evaluation points, 2,000 bootstrap
replicates, timed per stage.

    python perf/report_perf.py [--tasks 10 --variants 10 --seeds 10 --points 100 --reps 2000] [--keep DIR]

The runs are written in the benchmark runner's exact folder layout (``analysis.synthetic``), then
``analysis.report.build_report`` loads, aligns, computes every metric with stratified-bootstrap CIs, draws every
figure and writes the report. Target: under 30 s on 2 cores (excluding writing the synthetic runs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from sb3_ddpg_ext.analysis.report import ReportSettings, build_report, timing_table
from sb3_ddpg_ext.analysis.scores import SCORE_TABLE
from sb3_ddpg_ext.analysis.synthetic import synthetic_suite

from sb3_ddpg_ext.variants import FACTORS


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", type=int, default=10)
    p.add_argument("--variants", type=int, default=10)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--points", type=int, default=100)
    p.add_argument("--reps", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", default=None, help="write runs and report here and keep them (default: a temp dir)")
    args = p.parse_args()

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="report_perf_"))
    # Task names from the score table, so that normalisation applies (synthetic names beyond it)
    tasks = [*SCORE_TABLE, *(f"Synthetic{i}-v0" for i in range(args.tasks - len(SCORE_TABLE)))][: args.tasks]
    levels = {t: (SCORE_TABLE[t].random, SCORE_TABLE[t].reference) for t in tasks if t in SCORE_TABLE}
    variants: dict[str, tuple[str | None, float]] = {"baseline": (None, 1.0)}
    for i in range(1, args.variants):
        variants[f"{FACTORS[i % len(FACTORS)]}_{i}"] = (FACTORS[i % len(FACTORS)], 0.7 + 0.06 * i)
    n_runs = len(tasks) * len(variants) * args.seeds
    t0 = time.perf_counter()
    synthetic_suite(
        root / "runs", tasks, variants, args.seeds, n_points=args.points, budget=1_000_000, seed=args.seed, levels=levels
    )
    t_write = time.perf_counter() - t0
    print(f"{n_runs} synthetic runs x {args.points} points written in {t_write:.1f} s ({root / 'runs'}) [not counted]")

    t0 = time.perf_counter()
    a = build_report(root / "runs", root / "report", ReportSettings(reps=args.reps, seed=args.seed))
    total = time.perf_counter() - t0
    print(f"report: {root / 'report' / 'report.html'} ({int(a.loaded.runs['included'].sum())} runs used)")
    table = timing_table(a.timings)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    print(
        f"total: wall {total:.2f} s, cpu {table['cpu_s'].sum():.2f} s (target < 30 s on 2 cores); "
        f"load average {os.getloadavg()[0]:.1f} (other processes share the cores)"
    )
    if not args.keep:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
