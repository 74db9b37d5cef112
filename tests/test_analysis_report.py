"""End-to-end report: synthetic runner folders (with failed / diverged / incomplete / corrupt runs) and the
external zoo data sets."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from analysis import export
from analysis.__main__ import main
from analysis.report import ReportSettings, analyse, build_report
from analysis.synthetic import synthetic_suite, write_runner_run

TASKS = ["Pendulum-v1", "HalfCheetah-v5"]
VARIANTS = {"baseline": (None, 1.0), "noise_ou": ("noise", 0.8), "ln_both": ("layer_norm", 1.1)}
FIGURES = [
    "learning_curves",
    "learning_curves_HalfCheetah-v5",  # one per task: a panel per ablation factor
    "learning_curves_Pendulum-v1",
    "ablation_noise",
    "ablation_layer_norm",
    "aggregate_intervals",
    "probability_of_improvement",
    "performance_profiles",
    "sample_efficiency",
]


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    levels = {"Pendulum-v1": (-1225.0, -150.0), "HalfCheetah-v5": (-230.0, 9000.0)}
    synthetic_suite(out, TASKS, VARIANTS, n_seeds=3, n_points=20, budget=20_000, seed=1, levels=levels)
    # the runner records factor "baseline" for the baseline variant: it must not become an ablation figure
    baseline_jsons = list(out.glob("synthetic/*/baseline/*/run.json"))
    assert len(baseline_jsons) == 6
    for rj in baseline_jsons:
        text = rj.read_text()
        assert '"factor": null' in text
        rj.write_text(text.replace('"factor": null', '"factor": "baseline"'))
    steps = np.linspace(1000, 20_000, 20).astype(np.int64)
    res = np.zeros((20, 2))
    write_runner_run(out, "synthetic", "Pendulum-v1", "noise_ou", 10, steps, res, factor="noise", status="diverged")
    write_runner_run(out, "synthetic", "Pendulum-v1", "noise_ou", 11, steps, res, factor="noise", status="failed")
    write_runner_run(out, "synthetic", "Pendulum-v1", "baseline", 12, steps[:8], res[:8])  # stopped at 40%: incomplete
    bad = write_runner_run(out, "synthetic", "HalfCheetah-v5", "baseline", 13, steps, res)
    (bad / "logs" / "ddpg" / "HalfCheetah-v5_1" / "evaluations.npz").write_bytes(b"PK\x03\x04 truncated")
    return out


@pytest.fixture(scope="module")
def report(suite, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    a = build_report(suite, out, ReportSettings(reps=200, seed=3, final_k=3))
    return a, out


def test_report_files(report):
    _, out = report
    for name in FIGURES:
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
        assert (out / "figures" / f"{name}.svg").stat().st_size > 1000
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    assert "figures/learning_curves.png" in md
    # self-contained: every image is embedded, nothing is fetched
    assert html.count("data:image/png;base64,") == len(FIGURES)
    assert not re.search(r"<img[^>]+src=['\"](?!data:)", html)
    for section in ("Inventory", "Settings of the runs", "Package versions of the runs", "Normalisation scores used"):
        assert section in md and section in html
    assert "stable_baselines3=2.9.0" in md


def test_summary_numbers(report, suite):
    a, out = report
    summary = pd.read_csv(out / "summary.csv")
    for col in ("task", "variant", "n_runs", "final_mean", "final_ci_low", "final_ci_high", "max_of_mean"):
        assert col in summary.columns
    s = summary.set_index(["task", "variant"])
    assert s.loc[("Pendulum-v1", "noise_ou"), "n_runs"] == 3
    assert s.loc[("Pendulum-v1", "noise_ou"), "n_diverged"] == 1
    assert s.loc[("Pendulum-v1", "noise_ou"), "n_excluded"] == 2  # diverged + failed
    assert s.loc[("Pendulum-v1", "baseline"), "n_excluded"] == 1  # incomplete
    assert s.loc[("HalfCheetah-v5", "baseline"), "n_excluded"] == 1  # corrupt npz
    # independent recomputation from the raw evaluations
    ev = a.loaded.evals
    grp = ev[(ev["task"] == "HalfCheetah-v5") & (ev["variant"] == "ln_both")]
    curves = np.stack([g.sort_values("timesteps")["eval_return_mean"].to_numpy() for _, g in grp.groupby("run")])
    row = s.loc[("HalfCheetah-v5", "ln_both")]
    assert row["final_mean"] == pytest.approx(curves[:, -3:].mean())
    assert row["max_of_mean"] == pytest.approx(curves.mean(axis=0).max())
    assert row["final_ci_low"] <= row["final_mean"] <= row["final_ci_high"]
    assert row["final_ci_low"] < row["final_ci_high"]


def test_inventory_reports_every_problem(report):
    a, _ = report
    inv = a.loaded.inventory.to_frame()
    reasons = " | ".join(inv["reason"])
    assert "diverged" in reasons and "'failed'" in reasons and "incomplete" in reasons
    assert "corrupt or truncated evaluations.npz" in reasons
    runs = a.loaded.runs
    assert len(runs) == 2 * 3 * 3 + 4
    assert int(runs["included"].sum()) == 18
    assert set(runs.loc[~runs["included"], "seed"]) == {10, 11, 12, 13}


def test_aggregates_and_comparisons(report):
    a, _ = report
    assert a.baseline == "baseline"
    assert a.factors == {"layer_norm": ["ln_both"], "noise": ["noise_ou"]}
    agg = a.aggregates.set_index(["variant", "metric"])
    # synthetic levels: ln_both (x1.1) > baseline > noise_ou (x0.8) on both tasks
    assert agg.loc[("ln_both", "IQM"), "point"] > agg.loc[("baseline", "IQM"), "point"] > agg.loc[("noise_ou", "IQM"), "point"]
    poi = a.poi.set_index("variant")
    assert poi.loc["ln_both", "point"] > 0.5 > poi.loc["noise_ou", "point"]
    assert set(a.profiles["variant"]) == set(VARIANTS)
    assert a.sample_efficiency_x == "timesteps"
    prof = a.profiles[a.profiles["variant"] == "baseline"]["point"].to_numpy()
    assert np.all(np.diff(prof) <= 1e-12)  # a performance profile never increases with tau


def test_factor_tables(report):
    """Each ablation factor's section: the baseline and the factor's variants against every task, cells taken from
    summary.csv / aggregates.csv / poi.csv (runs in brackets: every cell here has 3 runs, fewer than MIN_RUNS)."""
    a, out = report
    table = export.factor_table(a, "noise")
    assert list(table["variant"]) == ["baseline", "noise_ou"]
    tasks = list(a.summary["task"].unique())
    assert sorted(tasks) == sorted(TASKS)
    assert list(table.columns) == ["variant", *tasks, "IQM (normalised)", "P(> baseline)"]
    s = a.summary.set_index(["task", "variant"]).loc[("HalfCheetah-v5", "noise_ou")]
    cell = table.set_index("variant").loc["noise_ou", "HalfCheetah-v5"]
    assert cell == export.fmt_ci(s["final_mean"], s["final_ci_low"], s["final_ci_high"]) + " (3)"
    iqm = a.aggregates.set_index(["variant", "metric"]).loc[("noise_ou", "IQM")]
    assert table.set_index("variant").loc["noise_ou", "IQM (normalised)"] == export.fmt_ci(*iqm[["point", "low", "high"]])
    assert table.set_index("variant").loc["baseline", "P(> baseline)"] == ""  # the baseline against itself: no row
    md = (out / "report.md").read_text()
    assert "## Ablation: layer_norm" in md and "## Ablation: noise" in md
    assert cell in md.split("## Ablation: noise")[1]


def test_reproducible_for_a_fixed_seed(suite):
    s = ReportSettings(reps=100, seed=5, figures=False)
    a1, a2 = analyse(suite, s), analyse(suite, s)
    pd.testing.assert_frame_equal(a1.summary, a2.summary)
    pd.testing.assert_frame_equal(a1.aggregates, a2.aggregates)
    a3 = analyse(suite, ReportSettings(reps=100, seed=6, figures=False))
    assert not a1.aggregates["low"].equals(a3.aggregates["low"])


def test_cli(suite, tmp_path, capsys):
    assert main(["report", str(suite), "--out", str(tmp_path / "r"), "--reps", "50", "--no-figures"]) == 0
    assert (tmp_path / "r" / "summary.csv").exists() and (tmp_path / "r" / "report.html").exists()
    assert "22 runs found, 18 used" in capsys.readouterr().out
    assert main(["report", str(suite), "--out", str(tmp_path / "r2"), "--baseline", "nope", "--no-figures"]) == 2
    assert "baseline variant 'nope'" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r3")]) == 2


def test_single_variant_one_seed_zoo_logs(shared_datasets):
    """The zoo's DDPG logs: one seed per task, one variant: no interval (left empty), flagged, no crash."""
    a = analyse(shared_datasets / "rl-trained-agents" / "ddpg", ReportSettings(reps=50, figures=False))
    assert len(a.summary) == 9 and (a.summary["n_runs"] == 1).all()
    assert a.summary[["final_ci_low", "final_ci_high", "final_norm_ci_low", "final_norm_ci_high"]].isna().all().all()
    assert a.summary["few_runs"].all()
    assert any("fewer than 5 runs" in n for n in a.notes)
    agg = a.aggregates
    assert agg["point"].notna().all() and agg["low"].isna().all() and agg["high"].isna().all()
    assert agg["few_runs"].all() and (agg["min_runs_per_task"] == 1).all()
    assert a.poi.empty and a.variants == ["ddpg"]


def test_empty_input_does_not_crash(tmp_path):
    (tmp_path / "empty").mkdir()
    a = build_report(tmp_path / "empty", tmp_path / "out", ReportSettings(reps=10))
    assert a.summary.empty
    assert "no run found" in (tmp_path / "out" / "report.md").read_text()


def test_task_without_scores_is_reported(tmp_path):
    """A task missing from the score table is kept per task and left out of the normalised metrics; the report's
    normalisation table shows its missing sources as empty cells (pandas 3 keeps them missing in text columns)."""
    synthetic_suite(tmp_path / "runs", ["Pendulum-v1", "Unscored-v0"], {"baseline": (None, 1.0)}, 2, n_points=5, budget=5000)
    a = build_report(tmp_path / "runs", tmp_path / "out", ReportSettings(reps=10, figures=False, zoo_export=False))
    assert sorted(a.summary["task"]) == ["Pendulum-v1", "Unscored-v0"]
    assert a.run_scores.loc[a.run_scores["task"] == "Unscored-v0", "final_norm"].isna().all()
    assert a.run_scores.loc[a.run_scores["task"] == "Pendulum-v1", "final_norm"].notna().all()
    assert any(n.startswith("No random/reference score for Unscored-v0") for n in a.notes)
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| Unscored-v0 |  |  |  |  |  | not in the score table |" in md
    page = (tmp_path / "out" / "report.html").read_text()
    assert "Unscored-v0" in page and "NaN" not in page and ">nan<" not in page


@pytest.mark.slow
def test_report_on_shared_datasets(shared_datasets, tmp_path):
    a = build_report(
        [shared_datasets / "rl-trained-agents", shared_datasets / "td3-paper-curves"], tmp_path, ReportSettings(reps=200)
    )
    s = pd.read_csv(tmp_path / "summary.csv").set_index(["task", "variant"])
    assert round(s.loc[("HalfCheetah-v1", "TD3"), "max_of_mean"], 2) == 9636.95
    assert s.loc[("HalfCheetah-v1", "TD3"), "n_runs"] == 10
    assert len(s) == 25 + 7
    assert a.baseline in ("ddpg", "td3")  # the zoo variants share 9 tasks; the paper's v1 tasks share none
    assert len(a.poi) == 1 and a.poi["n_tasks"].iloc[0] == 9
    for name in (
        "learning_curves",
        "aggregate_intervals",
        "probability_of_improvement",
        "performance_profiles",
        "sample_efficiency",
    ):
        assert (tmp_path / "figures" / f"{name}.png").exists()


def test_run_finals_table_holds_every_included_run_once(report):
    a, out = report
    table = export.run_finals_table(a)
    # the excluded runs (seeds 10-13: diverged, failed, incomplete, corrupt) have no column
    assert list(table.columns) == ["task", "variant", "seed 0", "seed 1", "seed 2"]
    long = table.melt(id_vars=["task", "variant"], var_name="seed", value_name="final").dropna()
    long["seed"] = long["seed"].str.removeprefix("seed ").astype(int)
    expected = a.run_scores[["task", "variant", "seed", "final"]]
    merged = expected.merge(long, on=["task", "variant", "seed"], how="outer", suffixes=("", "_table"), indicator=True)
    assert (merged["_merge"] == "both").all() and len(merged) == len(expected) == 18
    np.testing.assert_array_equal(merged["final"], merged["final_table"])
    assert list(table["variant"].iloc[:3]) == a.variants  # the report's variant order within a task
    assert "## Final return of every run" in (out / "report.md").read_text()


def test_resolution_table_pools_each_tasks_cells(report):
    from analysis.metrics import detectable_difference, pooled_std

    a, out = report
    res = pd.read_csv(out / "resolution.csv").set_index("task")
    assert set(res.index) == set(TASKS)
    for task in TASKS:
        cells = [g["final"].to_numpy() for _, g in a.run_scores[a.run_scores["task"] == task].groupby("variant")]
        sd, df = pooled_std(cells)
        row = res.loc[task]
        assert row["n_cells"] == 3 and row["runs_per_cell"] == 3 and row["df"] == df == 6
        assert row["pooled_sd"] == pytest.approx(sd, rel=1e-9)
        assert row["detectable"] == pytest.approx(detectable_difference(sd, 3), rel=1e-9)
        assert row["detectable_10"] == pytest.approx(row["detectable"] * np.sqrt(3 / 10), rel=1e-9)
    assert "## What these runs can resolve" in (out / "report.md").read_text()
