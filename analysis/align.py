"""Put runs on a common step grid.

All the curve metrics (seed-mean curves, CI bands, per-step IQM) need every run of a task evaluated at the
same steps. :func:`align_runs` is the one place where that happens: runs that share their evaluation steps
are used as they are, otherwise each run is linearly interpolated onto the task's grid, which is restricted
to the steps that *all* runs of the task cover (never extrapolated).

The result, :class:`AlignedRuns`, is the one representation of aligned curves used by the rest of the package:
one runs x steps matrix (:class:`Curves`) per task and variant, with its step grid, run ids and seeds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd

from .load import Inventory

ALIGNED_COLUMNS = ["task", "variant", "seed", "run", "timesteps", "eval_return_mean"]


@dataclass(frozen=True)
class Curves:
    """Aligned curves of the runs of one task and variant.

    :param task: environment id.
    :param variant: variant name.
    :param runs: ``(n_runs,)`` run ids, ordered by seed then run id.
    :param seeds: ``(n_runs,)`` int64 seeds of the runs.
    :param steps: ``(n_steps,)`` int64 step grid of the task (the same for every variant of it).
    :param values: ``(n_runs, n_steps)`` float values (NaN where an explicit grid leaves a run's range).
    """

    task: str
    variant: str
    runs: np.ndarray
    seeds: np.ndarray
    steps: np.ndarray
    values: np.ndarray

    @property
    def n_runs(self) -> int:
        """Number of runs (rows of ``values``)."""
        return int(self.values.shape[0])


@dataclass
class AlignedRuns:
    """Output of :func:`align_runs`: one :class:`Curves` per (task, variant), sorted by task then variant.

    A task whose runs share no step (empty grid) has no cell.

    :param cells: ``{(task, variant): Curves}`` in sorted order.
    :param value: name of the aligned column (e.g. ``eval_return_mean``).
    """

    cells: dict[tuple[str, str], Curves] = field(default_factory=dict)
    value: str = "eval_return_mean"

    def __iter__(self) -> Iterator[Curves]:
        return iter(self.cells.values())

    def __len__(self) -> int:
        return len(self.cells)

    @property
    def tasks(self) -> list[str]:
        """Sorted tasks with at least one cell."""
        return sorted({t for t, _ in self.cells})

    @property
    def variants(self) -> list[str]:
        """Sorted variants with at least one cell."""
        return sorted({v for _, v in self.cells})

    def task_matrix(self, task: str) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Curves of every run of one task (all its variants, which share the task's grid) as one matrix.

        :param task: environment id.
        :return: ``(run ids, steps (n_steps,), values (n_runs, n_steps))``, runs ordered by variant, seed, run id.
        """
        cells = [c for (t, _), c in self.cells.items() if t == task]
        if not cells:
            raise KeyError(f"AlignedRuns.task_matrix: no aligned runs of task {task!r}")
        runs = [str(r) for c in cells for r in c.runs]
        return runs, cells[0].steps, np.concatenate([c.values for c in cells], axis=0)

    def to_frame(self) -> pd.DataFrame:
        """The same curves as a long table, columns ``task, variant, seed, run, timesteps, <value>`` (one row
        per run and grid step)."""
        columns = [*ALIGNED_COLUMNS[:-1], self.value]
        if not self.cells:
            return pd.DataFrame(columns=columns)
        frames = []
        for c in self:
            n = len(c.steps)
            frames.append(
                pd.DataFrame(
                    {
                        "task": c.task,
                        "variant": c.variant,
                        "seed": np.repeat(c.seeds, n),
                        "run": np.repeat(c.runs, n),
                        "timesteps": np.tile(c.steps, c.n_runs),
                        self.value: c.values.ravel(),
                    },
                    columns=columns,
                )
            )
        return pd.concat(frames, ignore_index=True)


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
) -> AlignedRuns:
    """Align every run onto its task's common step grid.

    :param evals: tidy evaluations (columns ``task, variant, seed, run, timesteps`` and ``value``).
    :param grid: steps to use for every task (default: :func:`task_grid` per task, over all variants of it).
    :param n_points: passed to :func:`task_grid` when ``grid`` is None.
    :param value: column to align.
    :return: an :class:`AlignedRuns`: for each (task, variant) the runs x steps matrix on the task's grid. Runs
        whose steps coincide with the grid are copied, the others linearly interpolated (grid points outside a
        run's range would be extrapolation: NaN).
    """
    for col in ("task", "variant", "seed", "run", "timesteps", value):
        if col not in evals.columns:
            raise ValueError(f"align_runs: evals lacks column {col!r}")
    cells: dict[tuple[str, str], Curves] = {}
    for task, tdf in evals.groupby("task", sort=True):
        steps = np.asarray(grid, dtype=np.int64) if grid is not None else task_grid(tdf, n_points)
        if len(steps) == 0:  # the runs of the task share no step
            continue
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
        variant_col = keys[starts, 0]
        seeds = keys[starts, 1].astype(np.int64)
        runs = keys[starts, 2]
        # runs are sorted by variant: each variant is one block of rows
        vb = np.r_[0, np.flatnonzero(variant_col[1:] != variant_col[:-1]) + 1, len(starts)]
        for a, b in zip(vb[:-1], vb[1:]):
            variant = str(variant_col[a])
            cells[(str(task), variant)] = Curves(str(task), variant, runs[a:b], seeds[a:b], steps, values[a:b])
    return AlignedRuns(cells, value)


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


def window_means(evals: pd.DataFrame, step: int, window: int) -> pd.DataFrame:
    """Each run's mean evaluation return over the evaluations in ``(step - window, step]``: a run's "final return"
    at a step it trained past (e.g. a published 1M-step curve read at the study's 100k budget).

    :param evals: evaluations of :class:`~analysis.load.LoadResult` (``task, variant, seed, run, timesteps,
        eval_return_mean``).
    :param step: last step of the window.
    :param window: width of the window, in steps (> 0).
    :return: ``task, variant, seed, run, n_evals, first_step, last_step, mean`` per run with at least one evaluation in
        the window, ``n_evals`` the evaluations averaged; runs that stop before ``step`` are left out, so that a
        shorter run is never read at another step.
    """
    if window <= 0:
        raise ValueError(f"window_means: window must be > 0 steps, got {window}")
    keys = ["task", "variant", "seed", "run"]
    reached = evals.groupby("run")["timesteps"].max()
    e = evals[evals["run"].isin(reached.index[reached >= step])]
    e = e[(e["timesteps"] > step - window) & (e["timesteps"] <= step)]
    out = (
        e.groupby(keys, dropna=False)
        .agg(
            n_evals=("eval_return_mean", "size"),
            first_step=("timesteps", "min"),
            last_step=("timesteps", "max"),
            mean=("eval_return_mean", "mean"),
        )
        .reset_index()
    )
    return out[[*keys, "n_evals", "first_step", "last_step", "mean"]]
