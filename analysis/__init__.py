"""Analysis of DDPG benchmark runs: load zoo / runner / curve logs into tidy tables, align them on a common
step grid, compute metrics with stratified-bootstrap confidence intervals, draw figures, write a report.

Pipeline (one module per hop; computation apart from rendering)::

    load.load_runs(paths)              -> LoadResult(evals, episodes, runs, inventory)
    align.align_runs(evals)            -> AlignedRuns: runs x steps matrix per task/variant on the task's grid
    metrics.*                          -> pure numpy estimators + vectorised stratified bootstrap
    scores.SCORE_TABLE, normalize      -> random / reference scores (with sources); the normalisation;
                                          SOLVED_THRESHOLDS: the tasks' reward thresholds
    study.analyse(paths)               -> Analysis: every table, curve, note and count of a report (no file written)
    plots.draw_figures(analysis, dir)  -> matplotlib figures (Agg, colour-blind palette)
    export.write_tables(analysis, dir) -> summary.csv, inventory.csv, ... figure data CSVs, tables.tex, commands.csv;
                                          run commands / commits, the zoo plotting layout (zoo/)
    report.write_report(analysis, out) -> report.md, report.html (and the figures, tables, zoo/ above)
    report.build_report(paths, out)    -> analyse, then write_report

Command line: ``python -m analysis report RUNS_DIR... --out DIR``.
"""

from .align import AlignedRuns, Curves, align_runs, check_lengths, task_grid
from .load import Inventory, LoadResult, load_curve_arrays, load_runs, load_yaml, load_zoo_run
from .metrics import (
    aggregate_iqm,
    aggregate_mean,
    aggregate_median,
    aggregate_optimality_gap,
    aggregate_pooled_median,
    area_under_curve,
    bootstrap_mean_curve_ci,
    detectable_difference,
    final_return,
    fisher_exact,
    iqm,
    max_of_mean,
    pooled_std,
    probability_of_improvement,
    run_score_distribution,
    stratified_bootstrap_ci,
    task_means,
)
from .report import build_report, write_report
from .scores import SCORE_TABLE, SOLVED_THRESHOLDS, TaskScores, lookup_scores, normalize
from .study import Analysis, ReportSettings, analyse

__all__ = [
    "SCORE_TABLE",
    "SOLVED_THRESHOLDS",
    "AlignedRuns",
    "Analysis",
    "Curves",
    "Inventory",
    "LoadResult",
    "ReportSettings",
    "TaskScores",
    "aggregate_iqm",
    "aggregate_mean",
    "aggregate_median",
    "aggregate_optimality_gap",
    "aggregate_pooled_median",
    "align_runs",
    "analyse",
    "area_under_curve",
    "bootstrap_mean_curve_ci",
    "build_report",
    "check_lengths",
    "detectable_difference",
    "final_return",
    "fisher_exact",
    "iqm",
    "load_curve_arrays",
    "load_runs",
    "load_yaml",
    "load_zoo_run",
    "lookup_scores",
    "max_of_mean",
    "normalize",
    "pooled_std",
    "probability_of_improvement",
    "run_score_distribution",
    "stratified_bootstrap_ci",
    "task_grid",
    "task_means",
    "write_report",
]
