"""Small samples and clamped settings are said, never shown as if they were solid numbers."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from analysis import plots
from analysis.report import MIN_RUNS, ReportSettings, analyse
from analysis.scores import lookup_scores
from analysis.synthetic import synthetic_suite
from sb3_ddpg_ext.run_folder import read_evaluations

TASKS = ["Hopper-v5", "HalfCheetah-v5"]
LEVELS = {"Hopper-v5": (30.0, 3000.0), "HalfCheetah-v5": (-230.0, 9000.0)}


def _suite(root, n_seeds):
    # "better" reaches 1.5x the level of "baseline": every run of it beats every baseline run
    synthetic_suite(
        root,
        TASKS,
        {"baseline": (None, 1.0), "better": ("x", 1.5)},
        n_seeds=n_seeds,
        n_points=10,
        budget=10_000,
        levels=LEVELS,
    )
    return analyse(root, ReportSettings(reps=300, seed=0, figures=False))


def test_two_seeds_are_flagged_everywhere(tmp_path):
    a = _suite(tmp_path, 2)
    assert (a.summary["n_runs"] == 2).all() and a.summary["few_runs"].all()
    poi = a.poi.set_index("variant").loc["better"]
    # the case of the issue: 1 [1, 1] from two seeds; shown, but flagged
    assert (poi["point"], poi["low"], poi["high"]) == (1.0, 1.0, 1.0)
    assert poi["few_runs"] and poi["min_runs_per_task"] == 2
    assert a.aggregates["few_runs"].all() and (a.aggregates["min_runs_per_task"] == 2).all()
    # two runs do give an interval (not left empty), only a flagged one
    assert a.aggregates["low"].notna().all()
    warning = [n for n in a.notes if n.startswith("WARNING") and f"fewer than {MIN_RUNS} runs" in n]
    assert len(warning) == 1 and "Hopper-v5/better (2)" in warning[0]


def test_five_seeds_are_not_flagged(tmp_path):
    a = _suite(tmp_path, MIN_RUNS)
    assert not a.summary["few_runs"].any()
    assert not a.aggregates["few_runs"].any() and not a.poi["few_runs"].any()
    assert not any(f"fewer than {MIN_RUNS} runs" in n for n in a.notes)


def test_normalised_ci_per_task(tmp_path):
    a = _suite(tmp_path, MIN_RUNS)
    for row in a.summary.itertuples():
        s = lookup_scores(row.task)
        assert s is not None
        # percentile intervals commute with the (increasing) affine normalisation
        assert row.final_norm_ci_low == pytest.approx((row.final_ci_low - s.random) / (s.reference - s.random))
        assert row.final_norm_ci_high == pytest.approx((row.final_ci_high - s.random) / (s.reference - s.random))
        assert row.final_norm_ci_low < row.final_norm_mean < row.final_norm_ci_high


def test_poi_marker_at_one_is_visible(tmp_path):
    table = pd.DataFrame(
        {"variant": ["a", "b"], "point": [1.0, 0.0], "low": [1.0, np.nan], "high": [1.0, np.nan], "n_tasks": [2, 2]}
    )
    table["few_runs"] = [True, False]
    fig = plots.probability_of_improvement(table, "base")
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    assert lo < 0.0 and hi > 1.0  # markers at 0 and 1 are not on the frame line
    markers = [ln for ln in ax.get_lines() if ln.get_marker() == "o"]
    assert sorted(float(ln.get_xdata()[0]) for ln in markers) == [0.0, 1.0]
    assert all(not ln.get_clip_on() for ln in markers)
    assert "< 5 runs" in ax.get_yticklabels()[0].get_text() and "< 5 runs" not in ax.get_yticklabels()[1].get_text()
    assert ax.get_xlabel() == "P(variant > base) (95% CI)"
    plt.close(fig)
    fig = plots.probability_of_improvement(table, "base", confidence=0.9, min_runs=10)  # the report's settings
    ax = fig.axes[0]
    assert ax.get_xlabel() == "P(variant > base) (90% CI)" and "< 10 runs" in ax.get_yticklabels()[0].get_text()
    plt.close(fig)


def test_final_k_clamped_is_said(shared_datasets):
    """The zoo's Pendulum-v1 TD3 run has 2 evaluations: --final-k 5 averages both (-664), its last is -164."""
    root = shared_datasets / "rl-trained-agents" / "td3"
    a = analyse(root, ReportSettings(reps=20, final_k=5, figures=False))
    row = a.summary.set_index("task").loc["Pendulum-v1"]
    ev = read_evaluations(root / "Pendulum-v1_1" / "evaluations.npz")["results"].mean(axis=1)
    assert len(ev) == 2 and ev[-1] == pytest.approx(-164, abs=1) and ev.mean() == pytest.approx(-664, abs=1)
    assert row["final_k"] == 2 and row["final_mean"] == pytest.approx(ev.mean())
    note = [n for n in a.notes if "--final-k 5" in n]
    assert len(note) == 1 and "Pendulum-v1/td3 (k=2)" in note[0]
    # Hopper-v3 has 40 evaluations: not clamped, not listed
    assert a.summary.set_index("task").loc["Hopper-v3", "final_k"] == 5
    assert "Hopper-v3" not in note[0]
