"""Figures (matplotlib, Agg backend, colour-blind palette). Plotting only: every number drawn here is
computed in :mod:`analysis.study` and read from its :class:`~analysis.study.Analysis` (:func:`draw_figures`)."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from .metrics import AGGREGATES
from .study import MIN_RUNS, Analysis, smooth_values

_LINESTYLES = ["-", "--", ":", "-."]
_PALETTE_SIZE = 10


def variant_styles(variants: Sequence[str]) -> dict[str, dict[str, object]]:
    """Colour (seaborn ``colorblind`` palette, 10 distinct colours) and line style for each variant: past the
    palette the colours repeat with the next line style, so up to 40 variants get distinct (colour, style) pairs."""
    palette = sns.color_palette("colorblind", _PALETTE_SIZE)
    return {
        v: {"color": palette[i % _PALETTE_SIZE], "linestyle": _LINESTYLES[(i // _PALETTE_SIZE) % len(_LINESTYLES)]}
        for i, v in enumerate(variants)
    }


def format_steps(x: float, _pos: object = None) -> str:
    """Step tick label in k / M: 250000 -> ``250k``, 1500000 -> ``1.5M``."""
    a = abs(x)
    if a >= 1e6:
        return f"{x / 1e6:g}M"
    if a >= 1e3:
        return f"{x / 1e3:g}k"
    return f"{x:g}"


def save(fig: Figure, out_dir: Path, name: str) -> dict[str, Path]:
    """Save ``fig`` as ``<name>.png`` (150 dpi) and ``<name>.svg`` and close it.

    Figures that lay themselves out completely (``fig._sb3_ddpg_ext_laid_out``, e.g. the learning curves) are
    saved as they are; the others with a tight bounding box (one extra draw).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    bbox = None if getattr(fig, "_sb3_ddpg_ext_laid_out", False) else "tight"
    for ext in ("png", "svg"):
        p = out_dir / f"{name}.{ext}"
        fig.savefig(p, dpi=150 if ext == "png" else None, bbox_inches=bbox)
        paths[ext] = p
    plt.close(fig)
    return paths


def _fmt_steps(ax: plt.Axes) -> None:
    ax.xaxis.set_major_formatter(FuncFormatter(format_steps))


def _n_label(counts: Sequence[int]) -> str:
    lo, hi = min(counts), max(counts)
    return f"n={lo}" if lo == hi else f"n={lo}-{hi}"


def _draw_curves(
    ax: plt.Axes,
    tdf: pd.DataFrame,
    variants: Sequence[str],
    styles: dict[str, dict[str, object]],
    smooth: int,
    band_alpha: float,
    n_in_label: bool = False,
) -> None:
    """One task's curves on ``ax``: a line per variant (seed mean) and its CI band (none for a single run)."""
    for v in variants:
        vdf = tdf[tdf["variant"] == v]
        if vdf.empty:
            continue
        n = int(vdf["n_runs"].iloc[0])
        x = vdf["timesteps"].to_numpy()
        label = f"{v} (n={n})" if n_in_label else v
        ax.plot(x, smooth_values(vdf["mean"], smooth), label=label, lw=1.4, **styles[v])  # type: ignore[arg-type]
        if n > 1:
            low, high = smooth_values(vdf["low"], smooth), smooth_values(vdf["high"], smooth)
            ax.fill_between(x, low, high, color=styles[v]["color"], alpha=band_alpha, lw=0)
    ax.set_xlabel("environment steps", fontsize=9)
    ax.set_ylabel("evaluation return", fontsize=9)
    ax.tick_params(labelsize=8)
    _fmt_steps(ax)
    ax.grid(alpha=0.3)


def learning_curves(
    curves: pd.DataFrame, variants: Sequence[str], ncols: int = 4, confidence: float = 0.95, smooth: int = 1
) -> Figure:
    """One panel per task, one line per variant: seed-mean evaluation return with its bootstrap CI band.

    :param curves: columns ``task, variant, timesteps, mean, low, high, n_runs``.
    :param variants: variants in legend order (the legend gives each one's number of runs per task).
    :param ncols: panels per row.
    :param confidence: coverage of the bands (for the title).
    :param smooth: centred moving average over this many evaluations (mean and band), 1 = none.
    """
    tasks = sorted(curves["task"].unique())
    styles = variant_styles(variants)
    ncols = max(1, min(ncols, len(tasks)))
    nrows = max(1, math.ceil(len(tasks) / ncols))
    # at least 8 inches wide so that the title and a row of 4 legend entries fit when there are few tasks
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(3.6 * ncols, 8.0), 2.7 * nrows + 0.4), squeeze=False)
    band_alpha = 0.2 if len(variants) <= 6 else 0.08  # many overlapping bands: lighter, the lines stay readable
    for ax, task in zip(axes.flat, tasks):
        _draw_curves(ax, curves[curves["task"] == task], variants, styles, smooth, band_alpha)
        ax.set_title(task, fontsize=10)
    for ax in list(axes.flat)[len(tasks) :]:
        ax.set_visible(False)
    handles = [plt.Line2D([], [], lw=2, **styles[v]) for v in variants]  # type: ignore[arg-type]
    n_runs = curves.groupby("variant")["n_runs"].agg(list).to_dict()
    labels = [f"{v} ({_n_label(n_runs[v])})" if v in n_runs else v for v in variants]
    ncol = min(max(1, len(variants)), 4)
    legend_h = (0.25 * math.ceil(len(variants) / ncol) + 0.15) / fig.get_figheight()
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=ncol, frameon=False, fontsize=9)
    fig.tight_layout(rect=(0, legend_h, 1, 1 - 0.35 / fig.get_figheight()))
    fig.suptitle(
        f"Learning curves: mean over seeds, shaded {confidence:.0%} bootstrap CI"
        + (f", moving average over {smooth} evaluations" if smooth > 1 else ""),
        fontsize=11,
        y=1 - 0.08 / fig.get_figheight(),
    )
    fig._sb3_ddpg_ext_laid_out = True  # type: ignore[attr-defined]
    return fig


def task_factor_curves(
    curves: pd.DataFrame,
    task: str,
    factors: dict[str, list[str]],
    baseline: Optional[str],
    variants: Sequence[str],
    confidence: float = 0.95,
    smooth: int = 1,
) -> Figure:
    """One task, one panel per ablation factor: the baseline and the factor's variants, seed mean with CI band.

    A readable view of every variant of a task (the all-variants panel of :func:`learning_curves` has one line per
    variant of the study); colours are those of :func:`variant_styles` over ``variants``, as in every figure.

    :param curves: columns ``task, variant, timesteps, mean, low, high, n_runs``.
    :param task: the task drawn.
    :param factors: ablation factor -> its variants (``Analysis.factors``).
    :param baseline: variant drawn in every panel (``None``: none).
    :param variants: every variant, in palette order.
    :param confidence: coverage of the bands (for the title).
    :param smooth: centred moving average over this many evaluations (mean and band), 1 = none.
    """
    names = list(factors)  # panels in the order of the variants (Analysis.factors is built in that order)
    if not names:
        raise ValueError("task_factor_curves: no ablation factor to draw")
    styles = variant_styles(variants)
    tdf = curves[curves["task"] == task]
    panels = [([baseline] if baseline else []) + [v for v in factors[f] if v != baseline] for f in names]
    # inches: title, axes, x label, then the legends below the axes (one entry per line)
    top, axes_h, xlabel_h = 0.6, 2.6, 0.45
    legend_h = 0.18 * max(len(p) for p in panels) + 0.1
    height = top + axes_h + xlabel_h + legend_h
    fig, axes = plt.subplots(1, len(names), figsize=(max(4.2 * len(names), 6.0), height), squeeze=False)
    fig.subplots_adjust(top=1 - top / height, bottom=(xlabel_h + legend_h) / height, left=0.07, right=0.98, wspace=0.3)
    for ax, factor, shown in zip(axes.flat, names, panels):
        _draw_curves(ax, tdf, shown, styles, smooth, 0.15, n_in_label=True)
        ax.set_title(factor, fontsize=10)
        if ax.get_lines():
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -xlabel_h / axes_h), ncol=1, frameon=False, fontsize=8)
    fig.suptitle(
        f"{task}: mean over seeds, shaded {confidence:.0%} bootstrap CI"
        + (f", moving average over {smooth} evaluations" if smooth > 1 else ""),
        fontsize=11,
        y=1 - 0.1 / height,
    )
    return fig


def figure_name(text: str) -> str:
    """A file-name-safe version of a task id (``ALE/Pong-v5`` -> ``ALE_Pong-v5``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def interval_plot(
    table: pd.DataFrame,
    metrics: Sequence[str],
    variants: Sequence[str],
    title: str,
    xlabel: str = "normalised score",
    palette_order: Optional[Sequence[str]] = None,
) -> Figure:
    """Horizontal point-and-interval plot, one panel per metric, one row per variant.

    :param table: columns ``variant, metric, point, low, high``.
    :param palette_order: all variants of the report, so that a variant keeps its colour across figures.
    """
    styles = variant_styles(palette_order or variants)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 0.45 * len(variants) + 1.4), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        mdf = table[table["metric"] == metric].set_index("variant")
        for i, v in enumerate(variants):
            if v not in mdf.index:
                continue
            row = mdf.loc[v]
            c = styles[v]["color"]
            ax.plot([row["low"], row["high"]], [i, i], color=c, lw=6, alpha=0.45, solid_capstyle="butt")
            ax.plot([row["point"]], [i], marker="|", color="black", ms=12, mew=1.5)
        ax.set_yticks(range(len(variants)))
        ax.set_yticklabels(variants if ax is axes.flat[0] else [], fontsize=9)
        ax.set_ylim(-0.6, len(variants) - 0.4)
        ax.invert_yaxis()
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def probability_of_improvement(
    table: pd.DataFrame,
    baseline: str,
    palette_order: Optional[Sequence[str]] = None,
    confidence: float = 0.95,
    min_runs: int = MIN_RUNS,
) -> Figure:
    """P(variant > baseline) with its CI, one row per variant.

    :param table: columns ``variant, point, low, high, n_tasks`` (and ``few_runs``: flagged in the labels).
    :param palette_order: all variants of the report (stable colours).
    :param confidence: coverage of the intervals (for the axis label).
    :param min_runs: the run count below which a variant is flagged (for the labels).
    """
    variants = list(table["variant"])
    styles = variant_styles(palette_order or variants)
    fig, ax = plt.subplots(figsize=(6.0, 0.45 * len(variants) + 1.5))
    for i, row in enumerate(table.itertuples()):
        c = styles[row.variant]["color"]
        if pd.notna(row.low) and pd.notna(row.high):
            ax.plot([row.low, row.high], [i, i], color=c, lw=6, alpha=0.45, solid_capstyle="butt", clip_on=False)
        # a filled marker as well as the tick: a point at 0 or 1 (or without interval) stays visible on the frame
        ax.plot([row.point], [i], marker="o", color=c, ms=6, mec="black", mew=0.8, clip_on=False, zorder=3)
        ax.plot([row.point], [i], marker="|", color="black", ms=12, mew=1.5, clip_on=False, zorder=4)
    ax.axvline(0.5, color="grey", ls="--", lw=1)
    few = table["few_runs"] if "few_runs" in table.columns else pd.Series(False, index=table.index)
    labels = [
        f"{v} (n_tasks={n}{f', < {min_runs} runs per task' if flag else ''})"
        for v, n, flag in zip(variants, table["n_tasks"], few)
    ]
    ax.set_yticks(range(len(variants)))
    ax.set_yticklabels(labels, fontsize=9)
    ax.set_ylim(-0.6, len(variants) - 0.4)
    ax.invert_yaxis()
    ax.set_xlim(-0.04, 1.04)
    ax.set_xlabel(f"P(variant > {baseline}) ({confidence:.0%} CI)", fontsize=9)
    ax.set_title(f"Probability of improvement over {baseline}", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def band_curves(
    table: pd.DataFrame,
    variants: Sequence[str],
    x: str,
    xlabel: str,
    ylabel: str,
    title: str,
    hline: Optional[float] = None,
    palette_order: Optional[Sequence[str]] = None,
    step_axis: bool = False,
) -> Figure:
    """Lines with CI bands, one per variant (performance profiles, sample-efficiency curves).

    :param table: columns ``variant, <x>, point, low, high``.
    :param palette_order: all variants of the report (stable colours).
    :param step_axis: the x axis counts environment steps (scientific tick labels).
    """
    styles = variant_styles(palette_order or variants)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for v in variants:
        vdf = table[table["variant"] == v]
        if vdf.empty:
            continue
        ax.plot(vdf[x], vdf["point"], label=v, lw=1.6, **styles[v])  # type: ignore[arg-type]
        ax.fill_between(vdf[x], vdf["low"], vdf["high"], color=styles[v]["color"], alpha=0.2, lw=0)
    if hline is not None:
        ax.axhline(hline, color="grey", ls="--", lw=1)
    ax.set_xlabel(xlabel, fontsize=10)
    ax.set_ylabel(ylabel, fontsize=10)
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    if step_axis:
        _fmt_steps(ax)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def placeholder(message: str) -> Figure:
    """A figure that says why there is nothing to plot (kept so the report's layout never silently changes)."""
    fig, ax = plt.subplots(figsize=(6, 1.4))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=10)
    return fig


def draw_figures(a: Analysis, fig_dir: Path) -> list[tuple[str, str, dict[str, Path]]]:
    """Draw every figure of the report from the analysis (placeholders where there is nothing to draw).

    :param a: the analysis.
    :param fig_dir: where ``<name>.png`` and ``<name>.svg`` are written.
    :return: ``(title, caption, {"png": path, "svg": path})`` per figure, in report order.
    """
    out: list[tuple[str, str, dict[str, Path]]] = []
    variants = a.variants
    conf = f"{a.settings.confidence:.0%}"

    def add(name: str, title: str, caption: str, make: Callable[[], Any], empty_msg: Optional[str]) -> None:
        fig = placeholder(empty_msg) if empty_msg else make()
        out.append((title, caption, save(fig, fig_dir, name)))

    add(
        "learning_curves",
        "Learning curves",
        f"Evaluation return vs environment steps, mean over seeds with {conf} bootstrap band (no band for single runs); "
        "n = runs per task in the legend"
        + (f"; centred moving average over {a.settings.smooth} evaluations" if a.settings.smooth > 1 else "")
        + ". Data: curves.csv.",
        lambda: learning_curves(a.curves, variants, confidence=a.settings.confidence, smooth=a.settings.smooth),
        None if len(a.curves) else "no evaluation data",
    )
    if a.factors:
        for task in sorted(a.curves["task"].unique()):
            add(
                f"learning_curves_{figure_name(str(task))}",
                f"Learning curves: {task}",
                f"One panel per ablation factor: {a.baseline} and the factor's variants, mean over seeds with {conf} "
                "bootstrap band; n = runs in the legend"
                + (f"; centred moving average over {a.settings.smooth} evaluations" if a.settings.smooth > 1 else "")
                + ". Data: curves.csv.",
                functools.partial(
                    task_factor_curves,
                    a.curves,
                    str(task),
                    a.factors,
                    a.baseline,
                    variants,
                    confidence=a.settings.confidence,
                    smooth=a.settings.smooth,
                ),
                None,
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
                interval_plot,
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
        lambda: interval_plot(
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
        lambda: probability_of_improvement(a.poi, str(a.baseline), palette_order=variants, confidence=a.settings.confidence),
        None if len(a.poi) else "no variant shares a normalised task with the baseline",
    )
    add(
        "performance_profiles",
        "Performance profiles",
        f"Fraction of runs with final normalised score > tau (averaged over tasks), {conf} CI bands.",
        lambda: band_curves(
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
        lambda: band_curves(
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


__all__ = [
    "band_curves",
    "draw_figures",
    "figure_name",
    "format_steps",
    "interval_plot",
    "learning_curves",
    "placeholder",
    "probability_of_improvement",
    "save",
    "smooth_values",
    "task_factor_curves",
    "variant_styles",
]
