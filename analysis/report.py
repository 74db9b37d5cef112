"""The report: load -> align -> metrics -> figures -> ``report.md``, ``report.html``, ``summary.csv``.

:func:`analyse` computes every table (no file written), :func:`write_report` draws and writes them, and
:func:`build_report` does both; each stage is timed (``Analysis.timings``).
"""

from __future__ import annotations

import base64
import functools
import html
import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
import pandas as pd

from analysis import export, plots
from analysis.align import AlignedRuns, align_runs, check_lengths
from analysis.load import LoadResult, PathLike, load_runs
from analysis.metrics import (
    AGGREGATES,
    aggregate_iqm,
    all_aggregates,
    area_under_curve,
    bootstrap_mean_curve_ci,
    final_return,
    make_rng,
    max_of_mean,
    probability_of_improvement,
    run_score_distribution,
    stratified_bootstrap_ci,
)
from analysis.scores import SCORE_TABLE, TaskScores, lookup_scores, normalize, score_table_frame

SUMMARY_COLUMNS = [
    "task",
    "variant",
    "n_runs",
    "n_excluded",
    "n_diverged",
    "final_mean",
    "final_ci_low",
    "final_ci_high",
    "final_std",
    "max_of_mean",
    "auc_mean",
    "final_norm_mean",
    "final_norm_ci_low",
    "final_norm_ci_high",
    "final_k",
    "few_runs",
    "last_step",
    "n_evals",
]

#: Cells (task/variant, or a variant's tasks) with fewer runs than this are flagged: a percentile bootstrap
#: interval from so few runs under-covers, and with 2 runs a probability of improvement of 1 [1, 1] is common.
MIN_RUNS = 5
AGGREGATE_COLUMNS = ["variant", "metric", "point", "low", "high", "n_tasks", "n_runs", "min_runs_per_task", "few_runs"]
POI_COLUMNS = ["variant", "baseline", "point", "low", "high", "n_tasks", "min_runs_per_task", "few_runs"]


@dataclass
class ReportSettings:
    """Settings of an analysis.

    :param reps: bootstrap replicates.
    :param confidence: CI coverage.
    :param seed: seed of the bootstrap's ``numpy.random.Generator``.
    :param final_k: final return = mean of the last ``final_k`` evaluations (all of them if a cell has fewer: the
        report says so and ``summary.csv`` gives the ``final_k`` used).
    :param baseline: variant the others are compared with (default: ``"baseline"`` if present, else the first
        variant in sorted order).
    :param min_fraction: runs whose last evaluation is below this fraction of their task's longest run are
        excluded as incomplete.
    :param curve_step: step spacing of 1-D curve arrays.
    :param n_curve_points: points of the sample-efficiency curves.
    :param n_taus: thresholds of the performance profiles.
    :param figures: draw figures (disable for metric-only use).
    :param smooth: learning curves are drawn as a centred moving average over this many evaluations (1 = raw);
        only the figure (and the ``mean_smoothed`` column of ``curves.csv``): every metric uses the raw returns.
    :param zoo_export: write ``zoo/<variant>/<algo>/<task>_<seed>/evaluations.npz`` for the zoo's ``all_plots``.
    """

    reps: int = 2000
    confidence: float = 0.95
    seed: int = 0
    final_k: int = 5
    baseline: Optional[str] = None
    min_fraction: float = 0.95
    curve_step: int = 5000
    n_curve_points: int = 50
    n_taus: int = 81
    figures: bool = True
    smooth: int = 1
    zoo_export: bool = True

    def __post_init__(self) -> None:
        if self.reps < 1:
            raise ValueError(f"ReportSettings: reps must be >= 1, got {self.reps}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"ReportSettings: confidence must be in (0, 1), got {self.confidence}")
        if self.final_k < 1:
            raise ValueError(f"ReportSettings: final_k must be >= 1, got {self.final_k}")
        if self.curve_step < 1:
            raise ValueError(f"ReportSettings: curve_step must be >= 1, got {self.curve_step}")
        if self.smooth < 1:
            raise ValueError(f"ReportSettings: smooth must be >= 1 (evaluations), got {self.smooth}")
        if not 0 < self.min_fraction <= 1:
            raise ValueError(f"ReportSettings: min_fraction must be in (0, 1], got {self.min_fraction}")
        if self.n_curve_points < 2 or self.n_taus < 2:
            raise ValueError(f"ReportSettings: n_curve_points/n_taus must be >= 2, got {self.n_curve_points}/{self.n_taus}")


@dataclass
class Analysis:
    """All computed tables of one report."""

    settings: ReportSettings
    inputs: list[str]
    loaded: LoadResult
    aligned: AlignedRuns
    summary: pd.DataFrame
    curves: pd.DataFrame
    run_scores: pd.DataFrame
    aggregates: pd.DataFrame
    poi: pd.DataFrame
    profiles: pd.DataFrame
    sample_efficiency: pd.DataFrame
    sample_efficiency_x: str
    normalisation: pd.DataFrame
    baseline: Optional[str]
    variants: list[str]
    factors: dict[str, list[str]]
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


class _Timer:
    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings

    def stage(self, name: str) -> _Stage:
        return _Stage(self.timings, name)


class _Stage:
    def __init__(self, timings: dict[str, float], name: str) -> None:
        self.timings, self.name = timings, name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()
        self.c0 = time.process_time()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.name] = self.timings.get(self.name, 0.0) + time.perf_counter() - self.t0
        cpu = f"{self.name} (cpu)"
        self.timings[cpu] = self.timings.get(cpu, 0.0) + time.process_time() - self.c0


def timing_table(timings: dict[str, float]) -> pd.DataFrame:
    """Stages with their wall-clock and CPU (this process) seconds."""
    rows = [
        {"stage": k, "wall_s": v, "cpu_s": timings.get(f"{k} (cpu)", np.nan)}
        for k, v in timings.items()
        if not k.endswith("(cpu)")
    ]
    return pd.DataFrame(rows, columns=["stage", "wall_s", "cpu_s"])


# ------------------------------------------------------------------------------------------------------------
# Computation
# ------------------------------------------------------------------------------------------------------------
def analyse(
    paths: Union[PathLike, list[PathLike], LoadResult],
    settings: Optional[ReportSettings] = None,
    score_table: Optional[dict[str, TaskScores]] = None,
) -> Analysis:
    """Compute every table of the report.

    :param paths: run folders / files (see :func:`analysis.load.load_runs`) or an already loaded result.
    :param settings: analysis settings.
    :param score_table: normalisation table (default :data:`analysis.scores.SCORE_TABLE`).
    :return: an :class:`Analysis`.
    """
    settings = settings or ReportSettings()
    table = SCORE_TABLE if score_table is None else score_table
    timings: dict[str, float] = {}
    timer = _Timer(timings)
    notes: list[str] = []
    rng = make_rng(settings.seed)

    with timer.stage("load"):
        if isinstance(paths, LoadResult):
            loaded, inputs = paths, ["<LoadResult>"]
        else:
            plist: list[PathLike] = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
            loaded = load_runs(plist, curve_step=settings.curve_step)
            inputs = [str(p) for p in plist]

    with timer.stage("align"):
        runs = loaded.runs
        incomplete = check_lengths(runs, loaded.inventory, settings.min_fraction)
        if incomplete:
            runs.loc[runs["run"].isin(incomplete), ["included", "reason"]] = [False, "incomplete"]
        evals = loaded.evals[~loaded.evals["run"].isin(incomplete)]
        aligned = align_runs(evals) if len(evals) else AlignedRuns()

    variants, tasks = aligned.variants, aligned.tasks
    baseline = settings.baseline
    if baseline is not None and baseline not in variants:
        raise ValueError(f"analyse: baseline variant {baseline!r} not among the loaded variants {variants}")
    if baseline is None and variants:
        baseline = "baseline" if "baseline" in variants else _default_baseline(aligned, variants)
    if baseline is not None:  # then variants is not empty
        variants = [baseline] + [v for v in variants if v != baseline]

    # Normalisation rows for the tasks present
    norm = score_table_frame(tasks, table) if tasks else pd.DataFrame(columns=["task", "random", "reference", "note"])
    task_scores = {t: lookup_scores(t, table) for t in tasks}
    unnormalised = [t for t, s in task_scores.items() if s is None]
    if unnormalised:
        notes.append(
            "No random/reference score for " + ", ".join(unnormalised) + ": these tasks are left out of every "
            "normalised (cross-task) metric; their per-task rows in summary.csv are still given."
        )

    with timer.stage("per-task metrics"):
        summary, curves, run_scores = _per_task(aligned, runs, task_scores, settings, rng)
    few = summary[summary["few_runs"].astype(bool)]
    if len(few):
        cells = ", ".join(f"{t}/{v} ({n})" for t, v, n in zip(few["task"], few["variant"], few["n_runs"]))
        notes.append(
            f"WARNING: {len(few)} task/variant cells have fewer than {MIN_RUNS} runs (few_runs = True): {cells}. "
            "Bootstrap intervals from so few runs are too narrow; a single run has no interval (CI columns left "
            "empty). Aggregates and probabilities of improvement involving them are flagged too."
        )
    clamped = summary[summary["final_k"].notna() & (summary["final_k"] < settings.final_k)]
    if len(clamped):
        cells = ", ".join(f"{t}/{v} (k={int(k)})" for t, v, k in zip(clamped["task"], clamped["variant"], clamped["final_k"]))
        notes.append(
            f"WARNING: --final-k {settings.final_k} is more than the number of evaluations of {len(clamped)} cells: "
            f"their final return is the mean of all their evaluations instead (final_k column): {cells}."
        )

    norm_tasks = [t for t in tasks if task_scores[t] is not None]
    with timer.stage("aggregate metrics"):
        aggregates = _aggregates(run_scores, variants, norm_tasks, settings, rng)
    with timer.stage("probability of improvement"):
        poi = _poi(run_scores, variants, baseline, norm_tasks, settings, rng)
    with timer.stage("performance profiles"):
        profiles = _profiles(run_scores, variants, norm_tasks, settings, rng)
    with timer.stage("sample-efficiency curves"):
        sample_eff, x_kind = _sample_efficiency(aligned, variants, norm_tasks, task_scores, settings, rng, notes)
    if x_kind == "fraction":
        notes.append(
            "Tasks have different budgets: sample-efficiency curves use the fraction of each task's budget on the x axis."
        )

    factors: dict[str, list[str]] = {}
    inc = runs[runs["variant"].isin(variants)]
    for v in variants:
        f = inc.loc[inc["variant"] == v, "factor"].dropna()
        # the baseline is drawn in every ablation figure; the runner records factor "baseline" for it
        if len(f) and v != baseline and str(f.iloc[0]).lower() not in ("baseline", "none", ""):
            factors.setdefault(str(f.iloc[0]), []).append(v)
    if not factors:
        notes.append("No run records an ablation factor (run.json `factor`): no ablation figure.")

    return Analysis(
        settings=settings,
        inputs=inputs,
        loaded=loaded,
        aligned=aligned,
        summary=summary,
        curves=curves,
        run_scores=run_scores,
        aggregates=aggregates,
        poi=poi,
        profiles=profiles,
        sample_efficiency=sample_eff,
        sample_efficiency_x=x_kind,
        normalisation=norm,
        baseline=baseline,
        variants=variants,
        factors=factors,
        notes=notes,
        timings=timings,
    )


def _default_baseline(aligned: AlignedRuns, variants: list[str]) -> str:
    """The variant sharing tasks with the most other variants' tasks (ties: first in sorted order)."""
    task_sets = {v: {t for t, w in aligned.cells if w == v} for v in variants}
    shared = {v: sum(len(task_sets[v] & task_sets[w]) for w in variants if w != v) for v in variants}
    return max(variants, key=lambda v: (shared[v], -variants.index(v)))


def _child_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**63 - 1))


def _per_task(
    aligned: AlignedRuns,
    runs: pd.DataFrame,
    task_scores: dict[str, Optional[TaskScores]],
    settings: ReportSettings,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rows, curve_frames, score_rows = [], [], []
    excluded = runs[~runs["included"].astype(bool)]
    for c in aligned:
        task, variant, run_ids, seeds, steps, mat = c.task, c.variant, c.runs, c.seeds, c.steps, c.values
        keep = ~np.isnan(mat).any(axis=0)  # a grid point some run does not cover (only with an explicit grid)
        steps, mat = steps[keep], mat[:, keep]
        if mat.shape[1] == 0:
            continue
        n_runs = mat.shape[0]
        k = min(settings.final_k, mat.shape[1])
        finals = final_return(mat, k)
        aucs = area_under_curve(mat, steps)
        point, low, high = stratified_bootstrap_ci(
            finals[:, None], lambda s: np.nanmean(s, axis=(-2, -1)), settings.reps, settings.confidence, _child_seed(rng)
        )
        m, lo, hi = bootstrap_mean_curve_ci(mat, settings.reps, settings.confidence, _child_seed(rng))
        if n_runs < 2:  # no interval from a single run
            low, high = np.full_like(low, np.nan), np.full_like(high, np.nan)
            lo, hi = np.full_like(lo, np.nan), np.full_like(hi, np.nan)
        curve_frames.append(
            pd.DataFrame(
                {"task": task, "variant": variant, "timesteps": steps, "mean": m, "low": lo, "high": hi, "n_runs": n_runs}
            )
        )
        s = task_scores.get(task)
        norm_finals = normalize(finals, s.random, s.reference) if s is not None else np.full(n_runs, np.nan)
        # normalisation is affine: the percentile interval of the normalised mean is the normalised interval
        norm_ci = np.sort(normalize([low, high], s.random, s.reference)) if s is not None else np.full(2, np.nan)
        ex = excluded[(excluded["task"] == task) & (excluded["variant"] == variant)]
        for run, seed, f, nf, a in zip(run_ids, seeds, finals, norm_finals, aucs):
            score_rows.append(
                {"task": task, "variant": variant, "run": run, "seed": seed, "final": f, "final_norm": nf, "auc": a}
            )
        rows.append(
            {
                "task": task,
                "variant": variant,
                "n_runs": n_runs,
                "n_excluded": len(ex),
                "n_diverged": int((ex["status"] == "diverged").sum()),
                "final_mean": float(point),
                "final_ci_low": float(low),
                "final_ci_high": float(high),
                "final_std": float(finals.std(ddof=1)) if n_runs > 1 else np.nan,
                "max_of_mean": float(max_of_mean(mat)),
                "auc_mean": float(aucs.mean()),
                "final_norm_mean": float(np.mean(norm_finals)),
                "final_norm_ci_low": float(norm_ci[0]),
                "final_norm_ci_high": float(norm_ci[1]),
                "final_k": k,
                "few_runs": n_runs < MIN_RUNS,
                "last_step": int(steps[-1]),
                "n_evals": len(steps),
            }
        )
    # task/variant cells where every run was excluded still get a row (n_runs = 0)
    present = {(r["task"], r["variant"]) for r in rows}
    for (task, variant), ex in excluded.groupby(["task", "variant"], dropna=False):
        if (task, variant) not in present and pd.notna(task):
            rows.append(
                {
                    "task": task,
                    "variant": variant,
                    "n_runs": 0,
                    "few_runs": True,
                    "n_excluded": len(ex),
                    "n_diverged": int((ex["status"] == "diverged").sum()),
                }
            )
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS).sort_values(["task", "variant"]).reset_index(drop=True)
    curves = (
        pd.concat(curve_frames, ignore_index=True)
        if curve_frames
        else pd.DataFrame(columns=["task", "variant", "timesteps", "mean", "low", "high", "n_runs"])
    )
    if settings.smooth > 1 and len(curves):
        curves["mean_smoothed"] = curves.groupby(["task", "variant"], sort=False)["mean"].transform(
            lambda m: plots.smooth_values(m, settings.smooth)
        )
    run_scores = pd.DataFrame(score_rows, columns=["task", "variant", "run", "seed", "final", "final_norm", "auc"])
    return summary, curves, run_scores


def score_matrix(run_scores: pd.DataFrame, variant: str, tasks: list[str], value: str = "final_norm") -> np.ndarray:
    """``(n_runs_max, n_tasks)`` matrix of one variant's scores, NaN-padded where a task has fewer runs."""
    vdf = run_scores[(run_scores["variant"] == variant) & run_scores["task"].isin(tasks)]
    cols = [vdf.loc[vdf["task"] == t, value].to_numpy(float) for t in tasks]
    n = max((len(c) for c in cols), default=0)
    mat = np.full((n, len(tasks)), np.nan)
    for j, c in enumerate(cols):
        mat[: len(c), j] = c
    return mat


def _tasks_of(run_scores: pd.DataFrame, variant: str, tasks: list[str]) -> list[str]:
    have = set(run_scores.loc[run_scores["variant"] == variant, "task"])
    return [t for t in tasks if t in have]


def _aggregates(
    run_scores: pd.DataFrame, variants: list[str], tasks: list[str], settings: ReportSettings, rng: np.random.Generator
) -> pd.DataFrame:
    rows = []
    for v in variants:
        vt = _tasks_of(run_scores, v, tasks)
        if not vt:
            continue
        mat = score_matrix(run_scores, v, vt)
        point, low, high = stratified_bootstrap_ci(mat, all_aggregates, settings.reps, settings.confidence, _child_seed(rng))
        counts = np.count_nonzero(~np.isnan(mat), axis=0)
        if counts.max() < 2:  # one run per task: no interval
            low, high = np.full_like(low, np.nan), np.full_like(high, np.nan)
        for i, name in enumerate(AGGREGATES):
            rows.append(
                {
                    "variant": v,
                    "metric": name,
                    "point": point[i],
                    "low": low[i],
                    "high": high[i],
                    "n_tasks": len(vt),
                    "n_runs": int(counts.sum()),
                    "min_runs_per_task": int(counts.min()),
                    "few_runs": bool(counts.min() < MIN_RUNS),
                }
            )
    return pd.DataFrame(rows, columns=AGGREGATE_COLUMNS)


def _poi(
    run_scores: pd.DataFrame,
    variants: list[str],
    baseline: Optional[str],
    tasks: list[str],
    settings: ReportSettings,
    rng: np.random.Generator,
) -> pd.DataFrame:
    rows = []
    if baseline is None:
        return pd.DataFrame(columns=POI_COLUMNS)
    base_tasks = set(_tasks_of(run_scores, baseline, tasks))
    for v in variants:
        if v == baseline:
            continue
        common = [t for t in _tasks_of(run_scores, v, tasks) if t in base_tasks]
        if not common:
            continue
        # Raw returns are fine here (the statistic is per task and scale free), but keep normalised for consistency.
        x = score_matrix(run_scores, v, common)
        y = score_matrix(run_scores, baseline, common)
        # the statistic compares all (x-run, y-run) pairs: bound the chunk by that size
        chunk = max(1, 4_000_000 // (x.shape[0] * y.shape[0] * x.shape[1]))
        point, low, high = stratified_bootstrap_ci(
            (x, y), probability_of_improvement, settings.reps, settings.confidence, _child_seed(rng), chunk_size=chunk
        )
        cx, cy = np.count_nonzero(~np.isnan(x), axis=0), np.count_nonzero(~np.isnan(y), axis=0)
        if max(cx.max(), cy.max()) < 2:
            low, high = np.full_like(low, np.nan), np.full_like(high, np.nan)
        min_runs = int(min(cx.min(), cy.min()))
        rows.append(
            {
                "variant": v,
                "baseline": baseline,
                "point": float(point),
                "low": float(low),
                "high": float(high),
                "n_tasks": len(common),
                "min_runs_per_task": min_runs,
                "few_runs": min_runs < MIN_RUNS,
            }
        )
    return pd.DataFrame(rows, columns=POI_COLUMNS)


def _profile_stat(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    return run_score_distribution(scores, taus)


def _profiles(
    run_scores: pd.DataFrame, variants: list[str], tasks: list[str], settings: ReportSettings, rng: np.random.Generator
) -> pd.DataFrame:
    vals = run_scores.loc[run_scores["task"].isin(tasks), "final_norm"].to_numpy(float)
    vals = vals[np.isfinite(vals)]
    if len(vals) == 0:
        return pd.DataFrame(columns=["variant", "tau", "point", "low", "high"])
    lo, hi = min(0.0, float(vals.min())), max(1.0, float(vals.max()))
    taus = np.linspace(lo, hi, settings.n_taus)
    frames = []
    for v in variants:
        vt = _tasks_of(run_scores, v, tasks)
        if not vt:
            continue
        mat = score_matrix(run_scores, v, vt)
        chunk = max(1, 4_000_000 // (mat.size * len(taus)))  # the statistic compares every score with every tau
        point, low, high = stratified_bootstrap_ci(
            mat,
            functools.partial(_profile_stat, taus=taus),
            settings.reps,
            settings.confidence,
            _child_seed(rng),
            chunk_size=chunk,
        )
        if np.count_nonzero(~np.isnan(mat), axis=0).max() < 2:
            low, high = np.full_like(low, np.nan), np.full_like(high, np.nan)
        frames.append(pd.DataFrame({"variant": v, "tau": taus, "point": point, "low": low, "high": high}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["variant", "tau", "point", "low", "high"])


def _subsample(n: int, k: int) -> np.ndarray:
    """At most ``k`` evenly spread indices of ``range(n)``, always including the first and the last."""
    return np.arange(n) if n <= k else np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))


def _sample_efficiency(
    aligned: AlignedRuns,
    variants: list[str],
    tasks: list[str],
    task_scores: dict[str, Optional[TaskScores]],
    settings: ReportSettings,
    rng: np.random.Generator,
    notes: list[str],
) -> tuple[pd.DataFrame, str]:
    """Per-step IQM of normalised returns over all runs and tasks, with stratified-bootstrap bands.

    Evaluated at recorded evaluation steps when the runs share their evaluation grid (or, across budgets, the same
    relative schedule); otherwise each run is interpolated linearly between its evaluations (said in ``notes``).
    """
    empty = pd.DataFrame(columns=["variant", "x", "point", "low", "high"])
    if not tasks or not len(aligned):
        return empty, "timesteps"
    # normalised runs x steps matrix per (task, variant)
    mats: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for c in aligned:
        s = task_scores.get(c.task)
        if c.task in tasks and s is not None:
            mats[(c.task, c.variant)] = (c.steps, normalize(c.values, s.random, s.reference))
    if not mats:
        return empty, "timesteps"
    npts = settings.n_curve_points
    grids = [st for st, _ in mats.values()]
    g0 = grids[0]
    if all(len(g) == len(g0) and np.array_equal(g, g0) for g in grids):
        # every run of every task shares its evaluation steps: use recorded steps (at most npts of them)
        x = g0[_subsample(len(g0), npts)].astype(float)
        x_kind, interpolated = "timesteps", False
    else:
        fracs = [(g - g[0]) / max(g[-1] - g[0], 1) for g in grids]
        if all(len(f) == len(fracs[0]) and np.allclose(f, fracs[0]) for f in fracs):
            # different budgets, same relative evaluation schedule: recorded evaluations at the same fractions
            x = fracs[0][_subsample(len(fracs[0]), npts)]
            interpolated = False
        else:
            x = np.linspace(0.0, 1.0, npts)
            interpolated = True
        x_kind = "fraction"
    if interpolated:
        notes.append(
            "Tasks have different evaluation schedules: sample-efficiency curves interpolate each run linearly "
            f"between its recorded evaluations at {npts} evenly spaced fractions of its task's budget."
        )
    frames = []
    for v in variants:
        vt = [t for t in tasks if (t, v) in mats]
        if not vt:
            continue
        n = max(mats[(t, v)][1].shape[0] for t in vt)
        data = np.full((len(x), n, len(vt)), np.nan)
        for j, t in enumerate(vt):
            steps, mat = mats[(t, v)]
            if not interpolated:
                data[:, : mat.shape[0], j] = mat[:, _subsample(len(steps), npts)].T
            else:
                xt = steps[0] + x * (steps[-1] - steps[0])
                for r in range(mat.shape[0]):
                    data[:, r, j] = np.interp(xt, steps, mat[r])
        point, low, high = stratified_bootstrap_ci(data, aggregate_iqm, settings.reps, settings.confidence, _child_seed(rng))
        if n < 2:
            low, high = np.full_like(low, np.nan), np.full_like(high, np.nan)
        frames.append(pd.DataFrame({"variant": v, "x": x, "point": point, "low": low, "high": high}))
    return (pd.concat(frames, ignore_index=True) if frames else empty), x_kind


# ------------------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------------------
@dataclass
class _Block:
    kind: str  # "h1" | "h2" | "p" | "table" | "figure" | "pre"
    content: Any
    caption: str = ""


def _figures(a: Analysis, fig_dir: Path) -> list[tuple[str, str, dict[str, Path]]]:
    """Draw every figure; returns (title, caption, {png, svg}) in report order."""
    out: list[tuple[str, str, dict[str, Path]]] = []
    variants = a.variants
    conf = f"{a.settings.confidence:.0%}"

    def add(name: str, title: str, caption: str, make: Callable[[], Any], empty_msg: Optional[str]) -> None:
        fig = plots.placeholder(empty_msg) if empty_msg else make()
        out.append((title, caption, plots.save(fig, fig_dir, name)))

    add(
        "learning_curves",
        "Learning curves",
        f"Evaluation return vs environment steps, mean over seeds with {conf} bootstrap band (no band for single runs); "
        "n = runs per task in the legend"
        + (f"; centred moving average over {a.settings.smooth} evaluations" if a.settings.smooth > 1 else "")
        + ". Data: curves.csv.",
        lambda: plots.learning_curves(a.curves, variants, confidence=a.settings.confidence, smooth=a.settings.smooth),
        None if len(a.curves) else "no evaluation data",
    )
    norm_msg = None if len(a.aggregates) else "no normalised scores (no task with random/reference scores)"
    for factor, fvars in sorted(a.factors.items()):
        shown = ([a.baseline] if a.baseline and a.baseline not in fvars else []) + fvars
        tab = a.aggregates[a.aggregates["variant"].isin(shown) & a.aggregates["metric"].isin(["IQM", "Mean"])]
        add(
            f"ablation_{factor}",
            f"Ablation: {factor}",
            f"Final normalised score (mean of the last {a.settings.final_k} evaluations) of the `{factor}` variants "
            f"and {a.baseline}: IQM and mean over runs and tasks, {conf} stratified-bootstrap CIs.",
            functools.partial(
                plots.interval_plot,
                tab,
                ["IQM", "Mean"],
                [v for v in shown if v in set(tab["variant"])],
                f"Ablation: {factor}",
                palette_order=variants,
            ),
            norm_msg,
        )
    add(
        "aggregate_intervals",
        "Aggregate metrics",
        f"Final normalised score over all runs and tasks, {conf} stratified-bootstrap CIs (optimality gap: lower is better).",
        lambda: plots.interval_plot(
            a.aggregates,
            list(AGGREGATES),
            [v for v in variants if v in set(a.aggregates["variant"])],
            "Aggregate final normalised score",
            palette_order=variants,
        ),
        norm_msg,
    )
    add(
        "probability_of_improvement",
        "Probability of improvement",
        f"P(a run of the variant beats a run of {a.baseline} on a random task), tasks both ran, {conf} CI.",
        lambda: plots.probability_of_improvement(a.poi, str(a.baseline), palette_order=variants),
        None if len(a.poi) else "no variant shares a normalised task with the baseline",
    )
    add(
        "performance_profiles",
        "Performance profiles",
        f"Fraction of runs with final normalised score > tau (averaged over tasks), {conf} CI bands.",
        lambda: plots.band_curves(
            a.profiles.rename(columns={"tau": "x"}),
            [v for v in variants if v in set(a.profiles["variant"])],
            "x",
            "normalised score tau",
            "fraction of runs with score > tau",
            "Performance profiles",
            palette_order=variants,
        ),
        None if len(a.profiles) else "no normalised scores",
    )
    xlabel = "environment steps" if a.sample_efficiency_x == "timesteps" else "fraction of the task's training budget"
    add(
        "sample_efficiency",
        "Sample efficiency",
        f"IQM of normalised evaluation return over runs and tasks at each point of training, {conf} CI bands.",
        lambda: plots.band_curves(
            a.sample_efficiency,
            [v for v in variants if v in set(a.sample_efficiency["variant"])],
            "x",
            xlabel,
            "IQM normalised return",
            "Sample-efficiency curves",
            hline=1.0,
            palette_order=variants,
            step_axis=a.sample_efficiency_x == "timesteps",
        ),
        None if len(a.sample_efficiency) else "no normalised curves",
    )
    return out


def final_scores_table(a: Analysis) -> pd.DataFrame:
    """Per task and variant: final return and normalised final score with their CIs (``point [low, high]``)."""
    sm = a.summary[a.summary["n_runs"] > 0]
    return pd.DataFrame(
        {
            "task": sm["task"],
            "variant": sm["variant"],
            "n_runs": sm["n_runs"].astype(int),
            "final return": [export.fmt_ci(*r) for r in zip(sm["final_mean"], sm["final_ci_low"], sm["final_ci_high"])],
            "normalised": [
                export.fmt_ci(*r) for r in zip(sm["final_norm_mean"], sm["final_norm_ci_low"], sm["final_norm_ci_high"])
            ],
            "few runs": sm["few_runs"].map(lambda f: "yes" if f else ""),
        }
    ).reset_index(drop=True)


def aggregates_table(a: Analysis) -> pd.DataFrame:
    """One row per variant, one column per aggregate metric (``point [low, high]``)."""
    rows = []
    for v, vdf in a.aggregates.groupby("variant", sort=False):
        m = vdf.set_index("metric")
        row: dict[str, Any] = {
            "variant": v,
            "n_tasks": int(m["n_tasks"].iloc[0]),
            "min runs/task": int(m["min_runs_per_task"].iloc[0]),
        }
        for name in AGGREGATES:
            row[name] = export.fmt_ci(m.loc[name, "point"], m.loc[name, "low"], m.loc[name, "high"])
        row["few runs"] = "yes" if bool(m["few_runs"].iloc[0]) else ""
        rows.append(row)
    return pd.DataFrame(rows, columns=["variant", "n_tasks", "min runs/task", *AGGREGATES, "few runs"])


def poi_table(a: Analysis) -> pd.DataFrame:
    """Probability of improvement over the baseline (``point [low, high]``)."""
    return pd.DataFrame(
        {
            "variant": a.poi["variant"],
            "P(variant > baseline)": [export.fmt_ci(*r) for r in zip(a.poi["point"], a.poi["low"], a.poi["high"])],
            "baseline": a.poi["baseline"],
            "n_tasks": a.poi["n_tasks"],
            "min runs/task": a.poi["min_runs_per_task"],
            "few runs": a.poi["few_runs"].map(lambda f: "yes" if f else ""),
        }
    )


def latex_tables(a: Analysis) -> str:
    """``tables.tex``: the per-task final scores, aggregate metrics and probability of improvement (booktabs)."""
    conf = f"{a.settings.confidence:.0%}"
    k = a.settings.final_k
    parts = [
        "% Generated by python -m analysis report; needs \\usepackage{booktabs}\n",
        export.latex_table(
            final_scores_table(a),
            f"Final return (mean of the last {k} evaluations) per task, mean over runs with {conf} bootstrap CI, "
            "raw and normalised ((return - random) / (reference - random)).",
            "tab:final-scores",
        ),
    ]
    if len(a.aggregates):
        parts.append(
            export.latex_table(
                aggregates_table(a),
                f"Aggregate final normalised score with {conf} stratified-bootstrap CIs (as in rliable: median and mean "
                "over tasks of per-task means, IQM of all runs pooled; optimality gap: lower is better).",
                "tab:aggregates",
            )
        )
    if len(a.poi):
        parts.append(
            export.latex_table(poi_table(a), f"Probability of improvement over {a.baseline} with {conf} CIs.", "tab:poi")
        )
    return "\n".join(parts)


def _report_options(s: ReportSettings) -> dict[str, object]:
    return {
        "--reps": s.reps,
        "--confidence": s.confidence,
        "--seed": s.seed,
        "--final-k": s.final_k,
        "--baseline": s.baseline,
        "--min-fraction": s.min_fraction,
        "--curve-step": s.curve_step,
        "--smooth": s.smooth if s.smooth > 1 else None,
        "--no-figures": not s.figures,
        "--no-zoo-export": not s.zoo_export,
    }


def _versions_table(runs: pd.DataFrame) -> pd.DataFrame:
    recs = []
    for v, grp in runs.groupby(runs["versions"].map(lambda d: json.dumps(d or {}, sort_keys=True))):
        d = json.loads(v)
        recs.append(
            {
                "versions": ", ".join(f"{k}={val}" for k, val in d.items()) or "not recorded (zoo logs / curves)",
                "n_runs": len(grp),
            }
        )
    return pd.DataFrame(recs)


def _settings_table(runs: pd.DataFrame) -> pd.DataFrame:
    recs = []
    inc = runs[runs["included"].astype(bool)]
    for (variant, task), grp in inc.groupby(["variant", "task"], sort=True):
        configs = pd.Series(
            [
                # per-run paths (e.g. the divergence guard's marker file) would make every run's settings differ
                "; ".join(f"{k}={c[k]}" for k in sorted(c)).replace(str(path), "<run>") if c else "not recorded"
                for c, path in zip(grp["config"], grp["path"])
            ]
        )
        uniq = configs.unique()
        recs.append(
            {
                "variant": variant,
                "task": task,
                "n_runs": len(grp),
                "hyperparameters": uniq[0] + (f" (+{len(uniq) - 1} other settings)" if len(uniq) > 1 else ""),
            }
        )
    return pd.DataFrame(recs)


INVENTORY_COLUMNS = ["run", "path", "task", "variant", "seed", "status", "level", "reason"]


def inventory_frame(a: Analysis) -> pd.DataFrame:
    """Every run found (one row each: level ``counted`` or ``excluded`` with the reason), then every handled
    problem (``warning``), file that is not a run (``skipped``) and duplicate input (``info``): ``inventory.csv``."""
    runs = a.loaded.runs
    inv = a.loaded.inventory.to_frame()
    excluded_msgs = inv[inv["level"] == "excluded"].groupby("run")["reason"].agg("; ".join).to_dict()
    rows = []
    for r in runs.itertuples(index=False):
        used = bool(r.included)
        rows.append(
            {
                "run": r.run,
                "path": r.path,
                "task": r.task,
                "variant": r.variant,
                "seed": r.seed,
                "status": r.status,
                "level": "counted" if used else "excluded",
                "reason": "" if used else excluded_msgs.get(r.run, r.reason),
            }
        )
    known = set(runs["run"])
    for e in a.loaded.inventory.entries:
        if e["level"] != "excluded" or e["run"] not in known:
            rows.append({"run": e["run"], "path": e["path"], "level": e["level"], "reason": e["reason"]})
    return pd.DataFrame(rows, columns=INVENTORY_COLUMNS)


def _inventory_tables(a: Analysis) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = a.loaded.runs
    inv = a.loaded.inventory.to_frame()
    status = runs["status"].fillna("unknown")
    counts = pd.DataFrame(
        [
            {"what": "runs found", "count": len(runs)},
            {"what": "runs used in the metrics", "count": int(runs["included"].astype(bool).sum())},
            {"what": "excluded: failed", "count": int((status == "failed").sum())},
            {"what": "excluded: diverged", "count": int((status == "diverged").sum())},
            {
                "what": "excluded: incomplete (shorter than the task's other runs)",
                "count": int((runs["reason"] == "incomplete").sum()),
            },
            {
                "what": "excluded: other (unreadable/missing data, still running)",
                "count": int(
                    (
                        ~runs["included"].astype(bool)
                        & ~status.isin(["failed", "diverged"])
                        & (runs["reason"] != "incomplete")
                    ).sum()
                ),
            },
            {"what": "warnings (handled, run kept)", "count": int((inv["level"] == "warning").sum()) if len(inv) else 0},
            {"what": "files skipped (not runs)", "count": int((inv["level"] == "skipped").sum()) if len(inv) else 0},
            {
                "what": "inputs given more than once (loaded once)",
                "count": int(inv["reason"].str.startswith("given more than once").sum()) if len(inv) else 0,
            },
            {"what": "training episodes (monitor files)", "count": len(a.loaded.episodes)},
        ]
    )
    return counts, inv


def _blocks(a: Analysis, figures: list[tuple[str, str, dict[str, Path]]], out: Path, zoo_cmd: str = "") -> list[_Block]:
    s = a.settings
    b: list[_Block] = [_Block("h1", "DDPG benchmark report")]
    b.append(_Block("p", f"Inputs: {', '.join(a.inputs)}. Generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')}."))
    b.append(
        _Block(
            "p",
            f"Variants: {', '.join(a.variants) or 'none'}; baseline: {a.baseline} (the variant named 'baseline', else "
            f"--baseline, else the variant sharing the most tasks with the others). Tasks: {a.summary['task'].nunique()}. "
            f"Final return = mean of the last {s.final_k} evaluations of a run (fewer if it has fewer). "
            f"CIs: {s.confidence:.0%} percentile intervals of {s.reps} stratified-bootstrap replicates "
            f"(runs resampled within each task), numpy Generator seed {s.seed}. "
            "Aggregates as in rliable (Agarwal et al. 2021): median and mean = median and mean over tasks of the "
            "per-task mean scores (every task weighs the same, whatever its number of runs); IQM = 25% trimmed mean "
            "of all runs and tasks pooled; optimality gap at 1 = 1 - mean of min(score, 1), averaged like the mean; "
            "normalised score = (return - random) / (reference - random).",
        )
    )
    for note in a.notes:
        b.append(_Block("p", "Note: " + note))
    b.append(_Block("h2", "How to reproduce"))
    b.append(
        _Block(
            "p",
            "Runs: the command of each variant below, from the repository root at the code commit listed, with {task} "
            "and {seed} replaced by each task and seed listed (taken from the runner's command.txt; zoo logs and curve "
            "files record none). Package versions of the runs: see 'Package versions of the runs'.",
        )
    )
    b.append(_Block("table", export.run_commands(a.loaded.runs[a.loaded.runs["included"].astype(bool)]), "Run commands"))
    b.append(_Block("table", export.code_commits(a.loaded.runs), "Code commits of the runs (run.json git_commit)"))
    b.append(
        _Block(
            "pre",
            "# this report (analysis code "
            + export.analysis_commit()
            + ")\n"
            + export.report_command(a.inputs, out, _report_options(s)),
        )
    )
    if zoo_cmd:
        b.append(
            _Block(
                "p",
                "The zoo's own plotting: the runs' evaluations are laid out one experiment folder per variant "
                "(zoo/<variant>/<algo>/<task>_<seed>/evaluations.npz, list in zoo/exported.csv); rl_zoo3's all_plots "
                "groups the seeds of each variant with:",
            )
        )
        b.append(_Block("pre", zoo_cmd))
    counts, inv = _inventory_tables(a)
    b.append(_Block("h2", "Inventory"))
    b.append(_Block("table", counts))
    if len(inv):
        b.append(_Block("table", inv, "Excluded runs, handled problems, skipped files (inventory.csv lists every run)"))
    b.append(_Block("h2", "Final scores per task"))
    b.append(
        _Block(
            "table",
            final_scores_table(a),
            f"Mean over runs of the final return (last {s.final_k} evaluations) [{s.confidence:.0%} bootstrap CI], raw "
            "and normalised; empty CI: a single run. LaTeX: tables.tex.",
        )
    )
    b.append(_Block("h2", "Per task and variant (summary.csv)"))
    b.append(
        _Block(
            "table",
            a.summary,
            "max_of_mean = maximum over evaluations of the seed-mean curve (TD3 paper Table 1); "
            "auc_mean = mean over runs of the average return over training.",
        )
    )
    if len(a.aggregates):
        b.append(_Block("h2", "Aggregate metrics (final normalised score)"))
        b.append(_Block("table", aggregates_table(a), "point [CI]; data: aggregates.csv"))
    if len(a.poi):
        b.append(_Block("h2", f"Probability of improvement over {a.baseline}"))
        b.append(_Block("table", poi_table(a), "point [CI]; data: poi.csv"))
    b.append(_Block("h2", "Figures"))
    for title, caption, paths in figures:
        b.append(_Block("figure", paths, f"{title}: {caption}"))
    b.append(_Block("h2", "Normalisation scores used"))
    b.append(_Block("table", a.normalisation, "Sources: see analysis/scores.py."))
    b.append(_Block("h2", "Settings of the runs"))
    b.append(_Block("table", _settings_table(a.loaded.runs)))
    b.append(_Block("h2", "Package versions of the runs"))
    b.append(_Block("table", _versions_table(a.loaded.runs)))
    b.append(
        _Block(
            "p", f"Analysis environment: python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}."
        )
    )
    timing = timing_table(a.timings).round(3)
    b.append(_Block("h2", "Timing"))
    b.append(_Block("table", timing))
    return b


def _fmt_table(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].map(lambda x: "" if pd.isna(x) else f"{x:.4g}" if abs(x) < 1e4 else f"{x:.6g}")
    return out.astype(str)


def _md_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "_(empty)_\n"
    t = _fmt_table(df)
    esc = lambda s: s.replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(esc(str(c)) for c in t.columns) + " |", "|" + "---|" * len(t.columns)]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in t.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _render_md(blocks: list[_Block], out: Path) -> str:
    parts = []
    for bl in blocks:
        if bl.kind == "h1":
            parts.append(f"# {bl.content}\n")
        elif bl.kind == "h2":
            parts.append(f"## {bl.content}\n")
        elif bl.kind == "p":
            parts.append(f"{bl.content}\n")
        elif bl.kind == "table":
            if bl.caption:
                parts.append(f"_{bl.caption}_\n")
            parts.append(_md_table(bl.content))
        elif bl.kind == "pre":
            parts.append("```\n" + str(bl.content) + "\n```\n")
        elif bl.kind == "figure":
            png = bl.content["png"].relative_to(out)
            svg = bl.content["svg"].relative_to(out)
            parts.append(f"![{bl.caption}]({png})\n\n{bl.caption} ([SVG]({svg}))\n")
    return "\n".join(parts)


_CSS = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:12px;margin:0.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
th{background:#eee}td:first-child,td:nth-child(2){text-align:left}figure{margin:1em 0}img{max-width:100%}
figcaption{font-size:13px;color:#444}.cap{font-style:italic;font-size:13px}"""


def _render_html(blocks: list[_Block]) -> str:
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>DDPG benchmark report</title>",
        f"<style>{_CSS}</style></head><body>",
    ]
    for bl in blocks:
        if bl.kind in ("h1", "h2"):
            parts.append(f"<{bl.kind}>{html.escape(str(bl.content))}</{bl.kind}>")
        elif bl.kind == "p":
            parts.append(f"<p>{html.escape(str(bl.content))}</p>")
        elif bl.kind == "table":
            if bl.caption:
                parts.append(f"<p class='cap'>{html.escape(bl.caption)}</p>")
            parts.append(
                _fmt_table(bl.content).to_html(index=False, escape=True, border=0) if len(bl.content) else "<p>(empty)</p>"
            )
        elif bl.kind == "pre":
            parts.append(f"<pre>{html.escape(str(bl.content))}</pre>")
        elif bl.kind == "figure":
            data = base64.b64encode(bl.content["png"].read_bytes()).decode("ascii")
            parts.append(
                f"<figure><img alt='{html.escape(bl.caption)}' src='data:image/png;base64,{data}'/>"
                f"<figcaption>{html.escape(bl.caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(a: Analysis, out: PathLike) -> dict[str, Path]:
    """Draw the figures and write ``report.md``, ``report.html``, ``summary.csv``, ``inventory.csv``,
    ``aggregates.csv``, ``poi.csv``, ``run_scores.csv``, the figures' data (``curves.csv``, ``profiles.csv``,
    ``sample_efficiency.csv``), ``tables.tex`` (booktabs), ``commands.csv``, ``zoo/`` (the layout of
    :func:`analysis.export.export_zoo_layout`) and ``figures/*.png|svg`` into ``out``.

    :return: paths of the main outputs.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timer = _Timer(a.timings)
    with timer.stage("figures"):
        figures = _figures(a, out / "figures") if a.settings.figures else []
    with timer.stage("write"):
        a.summary.to_csv(out / "summary.csv", index=False)
        inventory_frame(a).to_csv(out / "inventory.csv", index=False)
        a.aggregates.to_csv(out / "aggregates.csv", index=False)
        a.poi.to_csv(out / "poi.csv", index=False)
        a.run_scores.to_csv(out / "run_scores.csv", index=False)
        a.normalisation.to_csv(out / "normalisation.csv", index=False)
        # the data of every figure (the ablation figures show rows of aggregates.csv)
        a.curves.to_csv(out / "curves.csv", index=False)
        a.profiles.to_csv(out / "profiles.csv", index=False)
        a.sample_efficiency.rename(columns={"x": a.sample_efficiency_x}).to_csv(out / "sample_efficiency.csv", index=False)
        (out / "tables.tex").write_text(latex_tables(a), encoding="utf-8")
        export.run_commands(a.loaded.runs[a.loaded.runs["included"].astype(bool)]).to_csv(out / "commands.csv", index=False)
        zoo_cmd = ""
        if a.settings.zoo_export:
            zoo = export.export_zoo_layout(a.loaded.runs, out / "zoo")
            zoo_cmd = export.zoo_plot_command(zoo, out / "zoo")
            if zoo_cmd:
                zoo.to_csv(out / "zoo" / "exported.csv", index=False)
        blocks = _blocks(a, figures, out, zoo_cmd)
        (out / "report.md").write_text(_render_md(blocks, out), encoding="utf-8")
        (out / "report.html").write_text(_render_html(blocks), encoding="utf-8")
    return {"md": out / "report.md", "html": out / "report.html", "summary": out / "summary.csv", "figures": out / "figures"}


def build_report(
    paths: Union[PathLike, list[PathLike], LoadResult],
    out: PathLike,
    settings: Optional[ReportSettings] = None,
) -> Analysis:
    """:func:`analyse` then :func:`write_report`; returns the analysis (with ``timings`` per stage)."""
    a = analyse(paths, settings)
    write_report(a, out)
    return a
