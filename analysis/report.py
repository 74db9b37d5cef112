"""Rendering of a report: ``report.md`` and ``report.html`` from an :class:`~analysis.study.Analysis`.

:func:`analysis.study.analyse` computes every table (no file written), :func:`write_report` draws and writes
them (figures: :mod:`analysis.plots`; CSV and LaTeX: :mod:`analysis.export`), :func:`build_report` does both.
The renderers only read the analysis (they add the time they take to ``Analysis.timings``).
"""

from __future__ import annotations

import base64
import html
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import pandas as pd

from . import export, plots
from .export import aggregates_table, final_scores_table, latex_tables, poi_table
from .load import LoadResult, PathLike
from .study import (
    AGGREGATE_COLUMNS,
    INVENTORY_COLUMNS,
    MIN_RUNS,
    POI_COLUMNS,
    SUMMARY_COLUMNS,
    Analysis,
    ReportSettings,
    Timer,
    analyse,
    inventory_frame,
    timing_table,
)


@dataclass
class _Block:
    kind: str  # "h1" | "h2" | "p" | "table" | "figure" | "pre"
    content: Any
    caption: str = ""


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
        "--run-seeds": list(s.run_seeds) if s.run_seeds is not None else None,
    }


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
            "# this report (analysis code " + export.analysis_commit() + ")\n" + report_command_line(a, out),
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
    counts, inv = a.inventory_counts, a.inventory_entries
    b.append(_Block("h2", "Inventory"))
    b.append(_Block("table", counts))
    if len(inv):
        b.append(_Block("table", inv, "Excluded runs, handled problems, skipped files (inventory.csv lists every run)"))
    b.append(_Block("h2", "Final scores per task"))
    b.append(
        _Block(
            "table",
            export.final_scores_table(a),
            f"Mean over runs of the final return (last {s.final_k} evaluations) [{s.confidence:.0%} bootstrap CI], raw "
            "and normalised; empty CI: a single run. LaTeX: tables.tex.",
        )
    )
    b.append(_Block("h2", "Final return of every run"))
    b.append(
        _Block(
            "table",
            export.run_finals_table(a),
            f"Final return (mean of the last {s.final_k} evaluations) of each included run, by seed (empty: no included "
            "run of that seed; the inventory says why). Data: run_scores.csv.",
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
        b.append(_Block("table", export.aggregates_table(a), "point [CI]; data: aggregates.csv"))
    if len(a.poi):
        b.append(_Block("h2", f"Probability of improvement over {a.baseline}"))
        b.append(_Block("table", export.poi_table(a), "point [CI]; data: poi.csv"))
    for factor in sorted(a.factors):
        table = export.factor_table(a, factor)
        if len(table):
            b.append(_Block("h2", f"Ablation: {factor}"))
            b.append(
                _Block(
                    "table",
                    table,
                    f"Final return per task (mean of the last {s.final_k} evaluations, mean over runs) "
                    f"[{s.confidence:.0%} bootstrap CI], runs in brackets where fewer than {MIN_RUNS}; IQM of the final "
                    f"normalised score and probability of improvement over {a.baseline} over all tasks, "
                    f"[{s.confidence:.0%} stratified-bootstrap CI]. Data: summary.csv, aggregates.csv, poi.csv.",
                )
            )
    if len(a.solved):
        b.append(_Block("h2", "Runs reaching the reward threshold"))
        b.append(
            _Block(
                "table",
                export.solved_table(a),
                f"solved = final return (mean of the last {s.final_k} evaluations) >= the task's gymnasium "
                "reward_threshold (analysis/scores.py), runs solved / runs; p = two-sided Fisher's exact test against "
                f"{a.baseline}'s count on the same task (empty for {a.baseline} and where it has no runs), no correction "
                "for multiple comparisons. Tasks without a reward_threshold are not listed. Data: solved.csv.",
            )
        )
    if len(a.resolution):
        b.append(_Block("h2", "What these runs can resolve"))
        b.append(
            _Block(
                "table",
                a.resolution,
                "pooled_sd = seed-to-seed standard deviation of the final return, pooled over the task's cells (variants), "
                "with df degrees of freedom; detectable = the difference between two cells' mean final returns that a "
                "two-sided 5% test detects with 80% power (normal approximation, 2.80 pooled_sd sqrt(2 / n)) at "
                "runs_per_cell runs per cell (the fewest of the task), detectable_5 / detectable_10 at 5 / 10 runs per "
                "cell. Differences well below it are not resolved at that sample size, whatever the test. Cells whose "
                "runs spread more than the pooled value (a collapsed seed) resolve less. Data: resolution.csv.",
            )
        )
    b.append(_Block("h2", "Figures"))
    for title, caption, paths in figures:
        b.append(_Block("figure", paths, f"{title}: {caption}"))
    b.append(_Block("h2", "Normalisation scores used"))
    b.append(_Block("table", a.normalisation, "Sources: see analysis/scores.py."))
    b.append(_Block("h2", "Settings of the runs"))
    b.append(_Block("table", a.run_settings))
    b.append(_Block("h2", "Package versions of the runs"))
    b.append(_Block("table", a.run_versions))
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
    """Every cell as text: floats to 4 (6 from 1e4) significant digits, missing values (any column) empty."""
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].map(lambda x: "" if pd.isna(x) else f"{x:.4g}" if abs(x) < 1e4 else f"{x:.6g}")
    # pandas 3's astype(str) keeps missing values missing (e.g. the sources of a task without scores)
    return out.astype(object).where(out.notna(), "").astype(str)


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


def report_command_line(a: Analysis, out: PathLike) -> str:
    """The ``python -m analysis report`` command that rebuilds this report into ``out`` (its ``command.txt``)."""
    return export.report_command(a.inputs, out, _report_options(a.settings))


def write_report(a: Analysis, out: PathLike) -> dict[str, Path]:
    """Draw the figures and write ``report.md``, ``report.html``, ``command.txt`` (the command that rebuilds it),
    ``summary.csv``, ``inventory.csv``,
    ``aggregates.csv``, ``poi.csv``, ``solved.csv``, ``run_scores.csv``, the figures' data (``curves.csv``, ``profiles.csv``,
    ``sample_efficiency.csv``), ``tables.tex`` (booktabs), ``commands.csv``, ``zoo/`` (the layout of
    :func:`analysis.export.export_zoo_layout`) and ``figures/*.png|svg`` into ``out``.

    :return: paths of the main outputs.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timer = Timer(a.timings)
    with timer.stage("figures"):
        figures = plots.draw_figures(a, out / "figures") if a.settings.figures else []
    with timer.stage("write"):
        export.write_tables(a, out)
        zoo_cmd = ""
        if a.settings.zoo_export:
            zoo = export.export_zoo_layout(a.loaded.runs, out / "zoo")
            zoo_cmd = export.zoo_plot_command(zoo, out / "zoo")
            if zoo_cmd:
                zoo.to_csv(out / "zoo" / "exported.csv", index=False)
        blocks = _blocks(a, figures, out, zoo_cmd)
        (out / "report.md").write_text(_render_md(blocks, out), encoding="utf-8")
        (out / "report.html").write_text(_render_html(blocks), encoding="utf-8")
        (out / "command.txt").write_text(report_command_line(a, out) + "\n", encoding="utf-8")
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


__all__ = [
    "AGGREGATE_COLUMNS",
    "INVENTORY_COLUMNS",
    "MIN_RUNS",
    "POI_COLUMNS",
    "SUMMARY_COLUMNS",
    "Analysis",
    "ReportSettings",
    "aggregates_table",
    "analyse",
    "build_report",
    "final_scores_table",
    "inventory_frame",
    "latex_tables",
    "poi_table",
    "report_command_line",
    "timing_table",
    "write_report",
]
