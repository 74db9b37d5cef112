"""Put runs on a common step grid.

All the curve metrics (seed-mean curves, CI bands, per-step IQM) need every run of a task evaluated at the
same steps. :func:`align_runs` is the one place where that happens: runs that share their evaluation steps
are used as they are, otherwise each run is linearly interpolated onto the task's grid, which is restricted
to the steps that *all* runs of the task cover (never extrapolated).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from analysis.load import Inventory

ALIGNED_COLUMNS = ["task", "variant", "seed", "run", "timesteps", "eval_return_mean"]


def task_grid(evals: pd.DataFrame, n_points: Optional[int] = None) -> np.ndarray:
    """Common step grid of the runs in ``evals`` (one task).

    :param evals: evaluation rows of one task (columns ``run``, ``timesteps``).
    :param n_points: if given, that many evenly spaced steps over the common support; otherwise the
        evaluation steps of the run with the most evaluations, restricted to the common support.
    :return: 1-D int64 array of steps (possibly empty if the runs do not overlap).
    """
    if n_points is not None and n_points < 2:
        raise ValueError(f"task_grid: n_points must be >= 2, got {n_points}")
    by_run = evals.groupby("run", sort=False)["timesteps"]
    lo = by_run.min().max()
    hi = by_run.max().min()
    if n_points is not None:
        return np.unique(np.linspace(lo, hi, n_points).round().astype(np.int64)) if hi > lo else np.array([lo], np.int64)
    counts = by_run.size()
    ref = counts.idxmax()
    steps = np.sort(evals.loc[evals["run"] == ref, "timesteps"].to_numpy(np.int64))
    return steps[(steps >= lo) & (steps <= hi)]


def align_runs(
    evals: pd.DataFrame,
    grid: Optional[np.ndarray] = None,
    n_points: Optional[int] = None,
    value: str = "eval_return_mean",
) -> pd.DataFrame:
    """Align every run onto its task's common step grid.

    :param evals: tidy evaluations (columns ``task, variant, seed, run, timesteps`` and ``value``).
    :param grid: steps to use for every task (default: :func:`task_grid` per task, over all variants of it).
    :param n_points: passed to :func:`task_grid` when ``grid`` is None.
    :param value: column to align.
    :return: DataFrame with columns ``task, variant, seed, run, timesteps, <value>``: for each task, every run
        has exactly one row per grid step. Runs whose steps coincide with the grid are copied, the others
        linearly interpolated (grid points outside a run's range would be extrapolation: NaN).
    """
    for col in ("task", "variant", "seed", "run", "timesteps", value):
        if col not in evals.columns:
            raise ValueError(f"align_runs: evals lacks column {col!r}")
    out = []
    for task, tdf in evals.groupby("task", sort=True):
        steps = np.asarray(grid, dtype=np.int64) if grid is not None else task_grid(tdf, n_points)
        tdf = tdf.sort_values(["variant", "seed", "run", "timesteps"], kind="stable")
        keys = tdf[["variant", "seed", "run"]].to_numpy(object)
        x_all = tdf["timesteps"].to_numpy(float)
        y_all = tdf[value].to_numpy(float)
        run_col = tdf["run"].to_numpy(object)
        bounds = np.flatnonzero(run_col[1:] != run_col[:-1]) + 1
        starts = np.r_[0, bounds]
        ends = np.r_[bounds, len(run_col)]
        values = np.empty((len(starts), len(steps)))
        for i, (a, b) in enumerate(zip(starts, ends)):
            x, y = x_all[a:b], y_all[a:b]
            if b - a == len(steps) and np.array_equal(x, steps):
                values[i] = y
            else:  # linear interpolation; grid points outside the run's range would be extrapolation: NaN
                values[i] = np.interp(steps, x, y, left=np.nan, right=np.nan)
        n = len(steps)
        out.append(
            pd.DataFrame(
                {
                    "task": task,
                    "variant": np.repeat(keys[starts, 0], n),
                    "seed": np.repeat(keys[starts, 1].astype(np.int64), n),
                    "run": np.repeat(keys[starts, 2], n),
                    "timesteps": np.tile(steps, len(starts)),
                    value: values.ravel(),
                }
            )
        )
    if not out:
        return pd.DataFrame(columns=[*ALIGNED_COLUMNS[:-1], value])
    return pd.concat(out, ignore_index=True)


def to_array(aligned: pd.DataFrame, value: str = "eval_return_mean") -> tuple[list[str], np.ndarray, np.ndarray]:
    """Curves of aligned runs (one task, typically one variant) as a matrix.

    :param aligned: output of :func:`align_runs` restricted to one task.
    :param value: column holding the values.
    :return: ``(run ids, steps (n_steps,), values (n_runs, n_steps))``.
    """
    if aligned["task"].nunique() > 1:
        raise ValueError(f"to_array: expected one task, got {sorted(aligned['task'].unique())}")
    wide = aligned.pivot_table(index="run", columns="timesteps", values=value, aggfunc="first", dropna=False)
    return list(wide.index), wide.columns.to_numpy(np.int64), wide.to_numpy(float)


def check_lengths(
    runs: pd.DataFrame,
    inventory: Inventory,
    min_fraction: float = 0.95,
) -> set[str]:
    """Find included runs that stopped well before the others of their task.

    A run whose last evaluation is below ``min_fraction`` times the largest last evaluation step of its task
    (over all variants) is reported in ``inventory`` as excluded (``"incomplete"``) and returned.

    :param runs: run table of :class:`~analysis.load.LoadResult` (``task, run, included, last_timestep``).
    :param inventory: where the exclusions are recorded.
    :param min_fraction: required fraction of the task's longest run, in (0, 1].
    :return: run ids to exclude.
    """
    if not 0 < min_fraction <= 1:
        raise ValueError(f"check_lengths: min_fraction must be in (0, 1], got {min_fraction}")
    excluded: set[str] = set()
    inc = runs[runs["included"].astype(bool)]
    for task, tdf in inc.groupby("task"):
        last = tdf["last_timestep"].astype(float)
        longest = float(last.max())
        for run, lt, path in zip(tdf["run"], last, tdf["path"]):
            if lt < min_fraction * longest:
                inventory.add(
                    run,
                    path,
                    "excluded",
                    f"incomplete: last evaluation at step {int(lt)} < {min_fraction:.0%} of the longest run of {task} "
                    f"({int(longest)})",
                )
                excluded.add(run)
    return excluded
