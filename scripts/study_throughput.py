"""
Compute of a suite from its run folders: throughput reached per task and variant (``run.json``), core-hours used,
and the projection for the whole grid (runs x steps / measured steps/s).

    python scripts/study_throughput.py study_v1 --out results [--markdown]

``env_steps_per_s`` is the runner's figure: training env steps over the run's whole wall time (process start, the
uniform-random warm-up, every update and every evaluation episode included), one thread per run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.runner import run_status  # noqa: E402
from benchmarks.suite import expand_grid, load_suite  # noqa: E402
from sb3_ddpg_ext.run_folder import read_run_json  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("suite")
    parser.add_argument("--out", default="results")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    args = parser.parse_args(argv)
    suite = load_suite(args.suite, check_envs=False)
    specs = expand_grid(suite)
    speed: dict[tuple[str, str], list[float]] = defaultdict(list)
    wall_done = 0.0
    seed_wall: dict[int, float] = defaultdict(float)
    seed_runs: dict[int, int] = defaultdict(int)
    run_wall: dict[tuple[int, str, str], float] = {}
    counts: dict[str, int] = defaultdict(int)
    for spec in specs:
        status = run_status(spec.run_dir(args.out))
        counts[status] += 1
        info = read_run_json(spec.run_dir(args.out)) or {}
        if status == "done" and info.get("env_steps_per_s"):
            speed[(spec.task, spec.variant)].append(float(info["env_steps_per_s"]))
            wall_done += float(info.get("wall_time_s") or 0.0)
            seed_wall[spec.seed] += float(info.get("wall_time_s") or 0.0)
            seed_runs[spec.seed] += 1
            run_wall[(spec.seed, spec.task, spec.variant)] = float(info.get("wall_time_s") or 0.0)
    tasks = [t.env_id for t in suite.tasks]
    n_cells = len(tasks) * len(suite.variants)
    complete = [k for k in sorted(seed_runs) if seed_runs[k] == n_cells]
    budget = {t.env_id: t.n_timesteps for t in suite.tasks}
    print(f"suite {suite.name}: {len(specs)} runs; " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print(f"core-hours used by done runs: {wall_done / 3600:.2f}")
    print("by seed: " + ", ".join(f"seed {k} {seed_wall[k] / 3600:.2f} ({seed_runs[k]} runs)" for k in sorted(seed_wall)))
    if complete:
        # what one seed costs per task and per variant, mean over the seeds every cell has finished
        def per_seed(key: int, name: str) -> float:
            return sum(w for k, w in run_wall.items() if k[0] in complete and k[key] == name) / 3600 / len(complete)

        seeds_text = ", ".join(map(str, complete))
        print(
            f"core-hours per seed (mean over seeds {seeds_text}, every cell done), by task: "
            + ", ".join(f"{t} {per_seed(1, t):.2f}" for t in sorted(tasks, key=lambda t: -per_seed(1, t)))
        )
        print(
            f"core-hours per seed (mean over seeds {seeds_text}), by variant: "
            + ", ".join(f"{v} {per_seed(2, v):.2f}" for v in sorted(suite.variants, key=lambda v: -per_seed(2, v)))
        )
    # projection: each cell's median measured speed, else the task's median over measured cells
    projected = 0.0
    missing = []
    sep = " | " if args.markdown else "  "
    header = ["variant", *tasks]
    rows = []
    for variant in suite.variants:
        row = [variant]
        for task in tasks:
            values = speed.get((task, variant))
            row.append(f"{statistics.median(values):.0f} ({len(values)})" if values else "-")
        rows.append(row)
    for task in tasks:
        task_values = [v for (t, _), vs in speed.items() if t == task for v in vs]
        for variant in suite.variants:
            values = speed.get((task, variant)) or task_values
            if not values:
                missing.append(task)
                break
            projected += len(suite.seeds) * budget[task] / statistics.median(values)
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + sep.join(row) + " |")
    else:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print(sep.join(c.ljust(w) for c, w in zip(row, widths)))
    if missing:
        print(f"projection: no measured run yet for {sorted(set(missing))}")
    else:
        print(f"projection for the whole grid: {projected / 3600:.1f} core-hours ({projected / 3600 / 2:.1f} h on 2 cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
