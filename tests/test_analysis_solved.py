"""Runs reaching the task's reward threshold: Fisher's exact test, the ``solved`` table, ``solved.csv`` and the
report's section."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from analysis.metrics import fisher_exact
from analysis.report import ReportSettings, analyse, build_report
from analysis.synthetic import synthetic_suite, write_runner_run


def test_fisher_exact_by_hand():
    # 5/5 vs 0/5: margins 5 and 5 of 10; only the two extreme tables are as improbable: 2 / comb(10, 5)
    assert fisher_exact(5, 5, 0, 5) == pytest.approx(2 / 252, rel=1e-12)
    assert round(fisher_exact(5, 5, 0, 5), 5) == 0.00794
    # equal counts: the observed table is the most probable one
    assert fisher_exact(3, 5, 3, 5) == 1.0
    # 1/4 vs 3/4 (R's TeaTasting): table weights comb(4, x) comb(4, 4 - x) = 1, 16, 36, 16, 1 of 70
    assert fisher_exact(1, 4, 3, 4) == pytest.approx(34 / 70, rel=1e-12)
    # 4/5 vs 0/5: weights comb(5, x) comb(5, 4 - x) = 5, 50, 100, 50, 5 of 210; observed x = 0 (or 4): 5 + 5
    assert fisher_exact(0, 5, 4, 5) == pytest.approx(10 / 210, rel=1e-12)
    # unequal groups, 1/1 vs 0/3: weights comb(1, x) comb(3, 1 - x) = 3, 1 of 4
    assert fisher_exact(1, 1, 0, 3) == pytest.approx(1 / 4, rel=1e-12)


@pytest.mark.parametrize(
    "table",
    [
        (0, 0, 0, 0),  # no runs at all
        (0, 0, 3, 5),  # an empty group
        (2, 4, 0, 0),
        (0, 5, 0, 3),  # no run succeeds
        (5, 5, 3, 3),  # every run succeeds
    ],
)
def test_fisher_exact_empty_margins_give_one(table):
    assert fisher_exact(*table) == 1.0


def test_fisher_exact_symmetries():
    """Swapping the groups, or successes and failures, does not change the p-value."""
    for n1, n2 in itertools.product(range(7), repeat=2):
        for k1, k2 in itertools.product(range(n1 + 1), range(n2 + 1)):
            p = fisher_exact(k1, n1, k2, n2)
            assert 0 < p <= 1
            assert fisher_exact(k2, n2, k1, n1) == pytest.approx(p, rel=1e-12)
            assert fisher_exact(n1 - k1, n1, n2 - k2, n2) == pytest.approx(p, rel=1e-12)


def test_fisher_exact_large_counts_stay_exact():
    # 0/200 vs 200/200: the two extreme tables out of comb(400, 200) ~ 1e119, far below float's relative epsilon
    assert fisher_exact(0, 200, 200, 200) == pytest.approx(2 / math.comb(400, 200), rel=1e-12)
    assert fisher_exact(100, 200, 100, 200) == 1.0


@pytest.mark.parametrize(
    ("args", "name"),
    [((6, 5, 0, 5), "k1"), ((0, 5, 4, 3), "k2"), ((-1, 5, 0, 5), "k1"), ((0, -1, 0, 5), "n1"), ((0, 5, 0, -2), "n2")],
)
def test_fisher_exact_rejects_impossible_counts(args, name):
    with pytest.raises(ValueError, match=rf"fisher_exact: {name} "):
        fisher_exact(*args)


def test_fisher_exact_matches_scipy_on_every_small_table():
    stats = pytest.importorskip("scipy.stats")
    for n1, n2 in itertools.product(range(9), repeat=2):
        for k1, k2 in itertools.product(range(n1 + 1), range(n2 + 1)):
            # index 1: scipy < 1.11 returns a plain (statistic, pvalue) tuple, later a result object
            expected = stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]])[1]
            assert fisher_exact(k1, n1, k2, n2) == pytest.approx(expected, rel=1e-12, abs=0), (k1, n1, k2, n2)


# ----------------------------------------------------------------------------------------------------------
# The solved table of an analysis
# ----------------------------------------------------------------------------------------------------------
STEPS = np.linspace(1000, 10_000, 10).astype(np.int64)
MCC = "MountainCarContinuous-v0"  # reward_threshold 90
# the baseline's last run ends 80, 85, 100: above 90 at the last evaluation, not on the mean of the last 3 (88.3)
RAMP = [0.0] * 7 + [80.0, 85.0, 100.0]
FINALS = {
    (MCC, "baseline"): [95.0, 100.0, 120.0, 90.0, RAMP],  # 4 / 5 (90 reaches 90)
    (MCC, "noise_ou"): [-30.0, 0.0, 89.9, 10.0, -5.0],  # 0 / 5
    (MCC, "ln_both"): [95.0, 91.0, 0.0, 0.0, 0.0],  # 2 / 5
    ("Pendulum-v1", "baseline"): [-150.0, -160.0],  # no reward threshold: not in the table
    ("Pendulum-v1", "noise_ou"): [-200.0, -210.0],
    ("Hopper-v5", "noise_ou"): [4000.0, 100.0],  # 1 / 2, no baseline run on the task
}
FACTORS = {"baseline": None, "noise_ou": "noise", "ln_both": "layer_norm"}


@pytest.fixture(scope="module")
def solved_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("solved_runs")
    for (task, variant), finals in FINALS.items():
        for seed, f in enumerate(finals):
            curve = np.asarray(f if isinstance(f, list) else [f] * len(STEPS), dtype=float)
            results = np.repeat(curve[:, None], 2, axis=1)  # two evaluation episodes with the same return
            write_runner_run(out, "synthetic", task, variant, seed, STEPS, results, factor=FACTORS[variant])
    return out


@pytest.fixture(scope="module")
def solved_report(solved_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("solved_report")
    a = build_report(solved_runs, out, ReportSettings(reps=20, final_k=3, figures=False, zoo_export=False))
    return a, out


def test_solved_counts_and_p_values(solved_report):
    a, _ = solved_report
    assert a.baseline == "baseline"
    s = a.solved
    assert list(s.columns) == ["task", "variant", "threshold", "n_runs", "n_solved", "p_vs_baseline"]
    assert "Pendulum-v1" not in set(s["task"])
    got = {(t, v): (thr, n, k) for t, v, thr, n, k in zip(s["task"], s["variant"], s["threshold"], s["n_runs"], s["n_solved"])}
    assert got == {
        (MCC, "baseline"): (90.0, 5, 4),
        (MCC, "noise_ou"): (90.0, 5, 0),
        (MCC, "ln_both"): (90.0, 5, 2),
        ("Hopper-v5", "noise_ou"): (3800.0, 2, 1),
    }
    p = s.set_index(["task", "variant"])["p_vs_baseline"]
    assert np.isnan(p[(MCC, "baseline")])  # the baseline against itself
    assert np.isnan(p[("Hopper-v5", "noise_ou")])  # no baseline run on Hopper-v5
    # 0/5 vs 4/5: 10/210 (see test_fisher_exact_by_hand); 2/5 vs 4/5: weights 5, 50, 100, 50, 5 of 210, observed 50
    assert p[(MCC, "noise_ou")] == pytest.approx(10 / 210, rel=1e-12)
    assert p[(MCC, "ln_both")] == pytest.approx(110 / 210, rel=1e-12)
    # the count is of run_scores' final (mean of the last final_k evaluations)
    rs = a.run_scores[(a.run_scores["task"] == MCC) & (a.run_scores["variant"] == "baseline")]
    assert sorted(rs["final"].round(6)) == [88.333333, 90.0, 95.0, 100.0, 120.0]


def test_solved_thresholds_argument(solved_runs):
    """``analyse(..., solved_thresholds=...)`` replaces the table: exact ids only, no other version's threshold."""
    thresholds = {"Pendulum-v1": -155.0, "Hopper-v1": 0.0}
    a = analyse(solved_runs, ReportSettings(reps=10, figures=False), solved_thresholds=thresholds)
    assert list(a.solved["task"]) == ["Pendulum-v1", "Pendulum-v1"]
    assert list(a.solved["n_solved"]) == [1, 0]  # -150 of the baseline reaches -155
    assert a.solved["p_vs_baseline"].iloc[1] == pytest.approx(fisher_exact(0, 2, 1, 2))
    assert analyse(solved_runs, ReportSettings(reps=10, figures=False), solved_thresholds={}).solved.empty


def test_solved_csv_and_report_section(solved_report):
    a, out = solved_report
    csv = pd.read_csv(out / "solved.csv")
    pd.testing.assert_frame_equal(csv, a.solved, check_dtype=False)
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    title = "## Runs reaching the reward threshold"
    assert md.count(title) == 1 and "<h2>Runs reaching the reward threshold</h2>" in html
    # after the per-factor ablation tables, before the figures
    assert md.index("## Ablation: layer_norm") < md.index("## Ablation: noise") < md.index(title) < md.index("## Figures")
    section = md.split(title)[1].split("\n## ")[0]  # up to the next section
    assert "| task | variant | threshold | solved | p |" in section
    assert f"| {MCC} | baseline | 90 | 4 / 5 |  |" in section
    assert f"| {MCC} | noise_ou | 90 | 0 / 5 | 0.0476 |" in section  # 10/210 to 3 significant digits
    assert f"| {MCC} | ln_both | 90 | 2 / 5 | 0.524 |" in section
    assert "| Hopper-v5 | noise_ou | 3800 | 1 / 2 |  |" in section
    assert "Pendulum-v1" not in section
    caption = section.split("|")[0]
    for words in (
        "final return (mean of the last 3 evaluations) >= the task's gymnasium reward_threshold",
        "two-sided Fisher's exact test against baseline's count on the same task",
        "no correction for multiple comparisons",
    ):
        assert words in caption


def test_no_section_without_a_thresholded_task(tmp_path):
    synthetic_suite(tmp_path / "runs", ["Pendulum-v1"], {"baseline": (None, 1.0), "noise_ou": ("noise", 0.8)}, 2, n_points=5)
    a = build_report(tmp_path / "runs", tmp_path / "out", ReportSettings(reps=10, figures=False, zoo_export=False))
    assert a.solved.empty and list(a.solved.columns) == ["task", "variant", "threshold", "n_runs", "n_solved", "p_vs_baseline"]
    assert "reward threshold" not in (tmp_path / "out" / "report.md").read_text()
    assert pd.read_csv(tmp_path / "out" / "solved.csv").empty
