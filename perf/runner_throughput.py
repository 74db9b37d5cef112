"""Throughput of the benchmark runner: runs/hour of a suite at ``--jobs 1`` vs ``--jobs 2`` (a script, not a test).

    python perf/runner_throughput.py [--suite smoke] [--jobs 1 2] [--out DIR] [--backend local]

Each setting runs the whole suite from scratch into its own folder and reports wall time, runs/hour, env steps/s
(whole grid) and the parallel efficiency ``(runs/hour at N jobs) / (N x runs/hour at 1 job)``.
Results depend on what else the machine runs: note the load average printed with them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from sb3_ddpg_ext.benchmarks.grid import run_suite
from sb3_ddpg_ext.benchmarks.suite import expand_grid, load_suite


def measure(suite_name: str, jobs: int, out: Path, backend: str = "local") -> dict[str, Any]:
    """Run ``suite_name`` from scratch with ``jobs`` parallel runs; return wall time and throughput."""
    suite = load_suite(suite_name)
    n_runs = suite.n_runs
    steps = sum(spec.n_timesteps for spec in expand_grid(suite))
    if out.exists():
        shutil.rmtree(out)
    start = time.monotonic()
    summary = run_suite(suite, out=out, backend=backend, jobs=jobs, use_tqdm=False)
    wall = time.monotonic() - start
    return {
        "jobs": jobs,
        "runs": n_runs,
        "done": summary.total["done"],
        "wall_s": wall,
        "runs_per_hour": 3600.0 * n_runs / wall,
        "env_steps_per_s": steps / wall,
        "load_avg": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="smoke")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--backend", default="local")
    parser.add_argument("--out", default=None, help="scratch folder (default: a temporary folder, removed after)")
    args = parser.parse_args(argv)
    scratch = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="runner_throughput_"))
    try:
        results = [measure(args.suite, jobs, scratch / f"jobs_{jobs}", args.backend) for jobs in args.jobs]
    finally:
        if args.out is None:
            shutil.rmtree(scratch, ignore_errors=True)
    base = next((r for r in results if r["jobs"] == 1), None)
    print(f"\nsuite {args.suite} ({results[0]['runs']} runs), backend {args.backend}, {os.cpu_count()} CPUs")
    print(f"{'jobs':>4}  {'done':>4}  {'wall s':>8}  {'runs/hour':>10}  {'steps/s':>8}  {'load avg':>8}  {'efficiency':>10}")
    for r in results:
        efficiency = r["runs_per_hour"] / (r["jobs"] * base["runs_per_hour"]) if base else float("nan")
        load = f"{r['load_avg']:.1f}" if r["load_avg"] is not None else "?"
        print(
            f"{r['jobs']:>4}  {r['done']:>4}  {r['wall_s']:>8.1f}  {r['runs_per_hour']:>10.1f}  "
            f"{r['env_steps_per_s']:>8.1f}  {load:>8}  {efficiency:>10.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
