"""The computation of a report: load -> align -> metrics, into one :class:`Analysis` (no file written).

:func:`analyse` computes every table, note and count the renderers need (:mod:`analysis.report`: Markdown and
HTML; :mod:`analysis.plots`: figures; :mod:`analysis.export`: CSV and LaTeX); each stage is timed
(``Analysis.timings``). Nothing here draws or formats text.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np
import pandas as pd

from .align import AlignedRuns, align_runs, check_lengths
from .load import LoadResult, PathLike, load_runs
from .metrics import (
    AGGREGATES,
    aggregate_iqm,
    all_aggregates,
    area_under_curve,
    bootstrap_mean_curve_ci,
    detectable_difference,
    final_return,
    fisher_exact,
    make_rng,
    max_of_mean,
    pooled_std,
    probability_of_improvement,
    run_score_distribution,
    stratified_bootstrap_ci,
)
from .scores import SCORE_TABLE, SOLVED_THRESHOLDS, TaskScores, lookup_scores, normalize, score_table_frame

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
SOLVED_COLUMNS = ["task", "variant", "threshold", "n_runs", "n_solved", "p_vs_baseline"]
RESOLUTION_COLUMNS = ["task", "n_cells", "runs_per_cell", "pooled_sd", "df", "detectable", "detectable_5", "detectable_10"]
#: level and power of :data:`Analysis.resolution` (``detectable*`` columns)
RESOLUTION_ALPHA, RESOLUTION_POWER = 0.05, 0.8
INVENTORY_COLUMNS = ["run", "path", "task", "variant", "seed", "status", "level", "reason"]
#: ``reason`` of the runs left out by ``ReportSettings.run_seeds``.
SEED_NOT_SELECTED = "seed not selected"


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
    :param run_seeds: use only the runs of these seeds (``None``: all); the others are listed as excluded
        (``"seed not selected"``). For a report of a study in progress at a balanced point (every cell at seeds
        0..k) while runs of seed k + 1 are already committed.
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
    run_seeds: Optional[tuple[int, ...]] = None

    def __post_init__(self) -> None:
        if self.run_seeds is not None:
            self.run_seeds = tuple(sorted({int(x) for x in self.run_seeds}))
            if not self.run_seeds:
                raise ValueError("ReportSettings: run_seeds must name at least one seed (None: every seed)")
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
    """Everything the renderers need, computed once by :func:`analyse` (no figure, Markdown or HTML in it).

    :param settings: the settings used.
    :param inputs: the run folders / files given.
    :param loaded: the loaded runs (``runs.included`` / ``reason`` updated with the incomplete runs).
    :param aligned: the runs x steps matrix of every task and variant (:class:`~analysis.align.AlignedRuns`).
    :param summary: one row per task and variant (``summary.csv``).
    :param curves: seed-mean curves with CI bands per task and variant (``curves.csv``).
    :param run_scores: final and normalised final score and AUC per run (``run_scores.csv``).
    :param aggregates: aggregate metrics per variant (``aggregates.csv``).
    :param poi: probability of improvement over the baseline (``poi.csv``).
    :param profiles: performance profiles (``profiles.csv``).
    :param solved: per task with a reward threshold and variant: runs whose final return reaches the threshold, and
        the two-sided Fisher's exact p-value of that count against the baseline's on the task (``solved.csv``).
    :param resolution: per task, the seed-to-seed spread of the final return pooled over the task's variants
        (``pooled_sd`` with ``df`` degrees of freedom) and the difference of two cells' means that a two-sided 5 %
        test detects with 80 % power at the cells' runs (the smallest, ``runs_per_cell``), at 5 and at 10 runs per cell
        (``resolution.csv``; :func:`~analysis.metrics.detectable_difference`).
    :param sample_efficiency: per-step IQM curves (``sample_efficiency.csv``, x column ``sample_efficiency_x``).
    :param sample_efficiency_x: ``"timesteps"`` or ``"fraction"`` (of each task's budget).
    :param normalisation: random / reference scores of the tasks (``normalisation.csv``).
    :param baseline: the variant the others are compared with.
    :param variants: variants, baseline first.
    :param factors: ablation factor -> its variants.
    :param inventory: every run found and every handled problem (``inventory.csv``).
    :param inventory_counts: counts of runs found, used, excluded by reason, warnings, skipped files.
    :param inventory_entries: the loader's inventory entries (excluded runs, warnings, skipped files).
    :param run_settings: hyperparameters per variant and task.
    :param run_versions: package versions of the runs.
    :param notes: notes and warnings for the reader.
    :param timings: wall-clock and CPU seconds per stage (the renderers add theirs).
    """

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
    solved: pd.DataFrame = field(default_factory=pd.DataFrame)
    resolution: pd.DataFrame = field(default_factory=pd.DataFrame)
    inventory: pd.DataFrame = field(default_factory=pd.DataFrame)
    inventory_counts: pd.DataFrame = field(default_factory=pd.DataFrame)
    inventory_entries: pd.DataFrame = field(default_factory=pd.DataFrame)
    run_settings: pd.DataFrame = field(default_factory=pd.DataFrame)
    run_versions: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


class Timer:
    """Adds the wall-clock and CPU seconds of named stages to ``timings`` (``name`` and ``"name (cpu)"``).

    :param timings: where the seconds are added up (e.g. ``Analysis.timings``).
    """

    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings

    def stage(self, name: str) -> _Stage:
        """Context manager timing one stage."""
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
    solved_thresholds: Optional[dict[str, float]] = None,
) -> Analysis:
    """Compute every table of the report.

    :param paths: run folders / files (see :func:`analysis.load.load_runs`) or an already loaded result.
    :param settings: analysis settings.
    :param score_table: normalisation table (default :data:`analysis.scores.SCORE_TABLE`).
    :param solved_thresholds: reward threshold per task, for ``Analysis.solved`` (default
        :data:`analysis.scores.SOLVED_THRESHOLDS`; exact ids, tasks without one are left out).
    :return: an :class:`Analysis`.
    """
    settings = settings or ReportSettings()
    table = SCORE_TABLE if score_table is None else score_table
    thresholds = SOLVED_THRESHOLDS if solved_thresholds is None else solved_thresholds
    timings: dict[str, float] = {}
    timer = Timer(timings)
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
        unselected: set[str] = set()
        if settings.run_seeds is not None:
            out = runs["included"].astype(bool) & ~runs["seed"].isin(settings.run_seeds)
            unselected = set(runs.loc[out, "run"])
            runs.loc[out, ["included", "reason"]] = [False, SEED_NOT_SELECTED]
            for run, path in zip(runs.loc[out, "run"], runs.loc[out, "path"]):
                loaded.inventory.add(run, path, "excluded", f"{SEED_NOT_SELECTED} (run_seeds {list(settings.run_seeds)})")
            notes.append(
                f"Only the runs of seeds {', '.join(map(str, settings.run_seeds))} are used (--run-seeds): "
                f"{len(unselected)} runs of other seeds are excluded and listed in the inventory."
            )
        incomplete = check_lengths(runs, loaded.inventory, settings.min_fraction)
        if incomplete:
            runs.loc[runs["run"].isin(incomplete), ["included", "reason"]] = [False, "incomplete"]
        evals = loaded.evals[~loaded.evals["run"].isin(incomplete | unselected)]
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

    with timer.stage("solved counts"):
        solved = _solved(run_scores, variants, baseline, tasks, thresholds)
    with timer.stage("resolution"):
        resolution = _resolution(run_scores, tasks)

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

    counts, entries = _inventory_tables(loaded)
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
        solved=solved,
        resolution=resolution,
        sample_efficiency=sample_eff,
        sample_efficiency_x=x_kind,
        normalisation=norm,
        baseline=baseline,
        variants=variants,
        factors=factors,
        inventory=inventory_frame(loaded),
        inventory_counts=counts,
        inventory_entries=entries,
        run_settings=_settings_table(runs),
        run_versions=_versions_table(runs),
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
    # runs of seeds left out by run_seeds are outside the analysis (listed in the inventory only), not excluded runs
    excluded = runs[~runs["included"].astype(bool) & (runs["reason"] != SEED_NOT_SELECTED)]
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
            lambda m: smooth_values(m, settings.smooth)
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


def _variant_scores(
    run_scores: pd.DataFrame, variants: list[str], tasks: list[str]
) -> Iterator[tuple[str, list[str], np.ndarray]]:
    """Each variant with scores on some of ``tasks``: ``(variant, its tasks, score_matrix over them)``."""
    for v in variants:
        vt = _tasks_of(run_scores, v, tasks)
        if vt:
            yield v, vt, score_matrix(run_scores, v, vt)


def _aggregates(
    run_scores: pd.DataFrame, variants: list[str], tasks: list[str], settings: ReportSettings, rng: np.random.Generator
) -> pd.DataFrame:
    rows = []
    for v, vt, mat in _variant_scores(run_scores, variants, tasks):
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


def _solved(
    run_scores: pd.DataFrame,
    variants: list[str],
    baseline: Optional[str],
    tasks: list[str],
    thresholds: dict[str, float],
) -> pd.DataFrame:
    """Runs reaching their task's reward threshold (``final >= threshold``), per task with a threshold (in ``tasks``
    order) and variant with runs (in ``variants`` order), with Fisher's exact test against the baseline's count.

    :return: columns :data:`SOLVED_COLUMNS`; ``p_vs_baseline`` is NaN for the baseline and where it has no runs.
    """
    counts: dict[tuple[str, str], tuple[int, int]] = {}
    for (task, variant), grp in run_scores.groupby(["task", "variant"], sort=False):
        if task in thresholds:
            final = grp["final"].to_numpy(float)
            counts[(str(task), str(variant))] = (int(np.count_nonzero(final >= thresholds[task])), len(final))
    rows = []
    for task in (t for t in tasks if t in thresholds):
        base = counts.get((task, baseline)) if baseline is not None else None
        for v in variants:
            if (task, v) not in counts:
                continue
            k, n = counts[(task, v)]
            rows.append(
                {
                    "task": task,
                    "variant": v,
                    "threshold": float(thresholds[task]),
                    "n_runs": n,
                    "n_solved": k,
                    "p_vs_baseline": fisher_exact(k, n, *base) if base is not None and v != baseline else np.nan,
                }
            )
    return pd.DataFrame(rows, columns=SOLVED_COLUMNS)


def _resolution(run_scores: pd.DataFrame, tasks: list[str]) -> pd.DataFrame:
    """Per task (in ``tasks`` order): the pooled seed-to-seed spread of the final return over the task's cells and
    the differences it lets 2-cell comparisons detect (:data:`RESOLUTION_COLUMNS`)."""
    rows = []
    for task in tasks:
        cells = [g["final"].to_numpy(float) for _, g in run_scores[run_scores["task"] == task].groupby("variant")]
        if not cells:
            continue
        sd, df = pooled_std(cells)
        n = min(len(c) for c in cells)
        det = [detectable_difference(sd, k, RESOLUTION_ALPHA, RESOLUTION_POWER) if df else np.nan for k in (n, 5, 10)]
        rows.append(
            {
                "task": task,
                "n_cells": len(cells),
                "runs_per_cell": n,
                "pooled_sd": sd,
                "df": df,
                "detectable": det[0],
                "detectable_5": det[1],
                "detectable_10": det[2],
            }
        )
    return pd.DataFrame(rows, columns=RESOLUTION_COLUMNS)


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
    for v, _, mat in _variant_scores(run_scores, variants, tasks):
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


def smooth_values(values: Sequence[float], window: int) -> np.ndarray:
    """Centred moving average over ``window`` points (shorter at the ends); ``window = 1`` returns the values."""
    y = pd.Series(np.asarray(values, dtype=float))
    return y.to_numpy() if window <= 1 else y.rolling(window, center=True, min_periods=1).mean().to_numpy()


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


def inventory_frame(loaded: LoadResult) -> pd.DataFrame:
    """Every run found (one row each: level ``counted`` or ``excluded`` with the reason), then every handled
    problem (``warning``), file that is not a run (``skipped``) and duplicate input (``info``): ``inventory.csv``.

    :param loaded: the loaded runs.
    """
    runs = loaded.runs
    inv = loaded.inventory.to_frame()
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
    for e in loaded.inventory.entries:
        if e["level"] != "excluded" or e["run"] not in known:
            rows.append({"run": e["run"], "path": e["path"], "level": e["level"], "reason": e["reason"]})
    return pd.DataFrame(rows, columns=INVENTORY_COLUMNS)


def _inventory_tables(loaded: LoadResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Counts of runs by outcome, and the loader's inventory entries."""
    runs = loaded.runs
    inv = loaded.inventory.to_frame()
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
            {"what": "excluded: seed not selected (--run-seeds)", "count": int((runs["reason"] == SEED_NOT_SELECTED).sum())},
            {
                "what": "excluded: other (unreadable/missing data, still running)",
                "count": int(
                    (
                        ~runs["included"].astype(bool)
                        & ~status.isin(["failed", "diverged"])
                        & ~runs["reason"].isin(["incomplete", SEED_NOT_SELECTED])
                    ).sum()
                ),
            },
            {"what": "warnings (handled, run kept)", "count": int((inv["level"] == "warning").sum()) if len(inv) else 0},
            {"what": "files skipped (not runs)", "count": int((inv["level"] == "skipped").sum()) if len(inv) else 0},
            {
                "what": "inputs given more than once (loaded once)",
                "count": int(inv["reason"].str.startswith("given more than once").sum()) if len(inv) else 0,
            },
            {"what": "training episodes (monitor files)", "count": len(loaded.episodes)},
        ]
    )
    return counts, inv
