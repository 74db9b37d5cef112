"""What a report hands on: reproduction commands and commits, LaTeX tables, figure data, readable learning curves,
and a folder the zoo's own plotting (rl_zoo3.plots.all_plots / plot_from_file) reads grouped per variant."""

from __future__ import annotations

import json
import pickle
import re
import sys

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from analysis import export, plots
from analysis.report import ReportSettings, build_report
from analysis.synthetic import synthetic_suite

TASKS = ["Hopper-v5", "Pendulum-v1"]
VARIANTS = {"baseline": (None, 1.0), "noise_ou": ("noise", 0.8), "ln_both": ("layer_norm", 1.1)}
N_SEEDS = 3

# the runner's command.txt (benchmarks/runner.py build_command / command_line), run folder inside the repository
RUNNER_CMD = (
    "OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 /usr/bin/python3 -m rl_zoo3.train --algo ddpg --env {task} "
    "-conf runs/study/{task}/{variant}/seed_{seed}/hyperparams.yml -n {n} --seed {seed} "
    "-f runs/study/{task}/{variant}/seed_{seed}/logs --eval-freq 5000 --eval-episodes 10 --n-eval-envs 1 "
    "--vec-env dummy --num-threads 1 --gym-packages sb3_ddpg_ext"
)


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    paths = synthetic_suite(root, TASKS, VARIANTS, n_seeds=N_SEEDS, n_points=20, budget=40_000, seed=4)
    for p in paths:  # realistic command lines and two code commits
        info = json.loads((p / "run.json").read_text())
        n = 40_000 if info["variant"] != "ln_both" or info["task"] == "Hopper-v5" else 30_000  # ln_both differs per task
        cmd = RUNNER_CMD.format(task=info["task"], variant=info["variant"], seed=info["seed"], n=n)
        (p / "command.txt").write_text(cmd + "\n")
        info["git_commit"] = "a" * 40 if info["seed"] < 2 else "b" * 40
        (p / "run.json").write_text(json.dumps(info))
    return root


@pytest.fixture(scope="module")
def report(suite, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    a = build_report(suite, out, ReportSettings(reps=200, seed=1, smooth=3))
    return a, out


def test_command_template_round_trip():
    cmd = RUNNER_CMD.format(task="Hopper-v5", variant="baseline", seed=3, n=40_000)
    tpl = export.command_template(cmd, "Hopper-v5", 3)
    assert "3" not in re.findall(r"--seed (\S+)", tpl) and "Hopper-v5" not in tpl
    assert tpl.format(task="Hopper-v5", seed=3) == cmd
    assert tpl.format(task="Walker2d-v5", seed=12) == RUNNER_CMD.format(
        task="Walker2d-v5", variant="baseline", seed=12, n=40_000
    )
    # a seed that also appears elsewhere as a number (--eval-episodes 10, seed 1 vs 10) is only replaced as the seed
    tpl1 = export.command_template(RUNNER_CMD.format(task="T-v1", variant="v", seed=1, n=10), "T-v1", 1)
    assert "-n 10" in tpl1 and "--eval-episodes 10" in tpl1 and "--num-threads 1" in tpl1 and "--seed {seed}" in tpl1


def test_commands_one_per_variant(report):
    _, out = report
    cmds = pd.read_csv(out / "commands.csv")
    by_variant = cmds.groupby("variant").size().to_dict()
    # baseline / noise_ou: one template for both tasks and all seeds; ln_both's budgets differ per task: one per task
    assert by_variant == {"baseline": 1, "noise_ou": 1, "ln_both": 2}
    row = cmds[cmds["variant"] == "baseline"].iloc[0]
    assert row["seeds"] == "0-2" and row["n_runs"] == 6 and row["tasks"] == "Hopper-v5, Pendulum-v1"
    assert row["command"] == RUNNER_CMD.format(task="{task}", variant="baseline", seed="{seed}", n=40_000)
    md = (out / "report.md").read_text()
    assert "How to reproduce" in md and row["command"] in md
    assert "| " + "a" * 40 + " | 12 |" in md and "| " + "b" * 40 + " | 6 |" in md  # code commits with run counts
    assert "stable_baselines3=2.9.0" in md  # package versions of the runs
    assert re.search(r"analysis code [0-9a-f]{7,40}", md)  # the analysis' own commit
    assert "python -m analysis report " in md and "--seed 1 " in md and "--smooth 3" in md


def test_latex_tables(report):
    a, out = report
    tex = (out / "tables.tex").read_text()
    assert tex.count("\\begin{tabular}") == 3  # final scores per task, aggregates, probability of improvement
    assert tex.count("\\toprule") == tex.count("\\midrule") == tex.count("\\bottomrule") == 3
    assert "noise\\_ou" in tex and "noise_ou" not in tex.replace("noise\\_ou", "")
    body = tex.split("\\begin{tabular}")[1].split("\\bottomrule")[0]
    rows = [ln for ln in body.split("\\midrule")[1].splitlines() if ln.endswith("\\\\")]
    assert len(rows) == len(TASKS) * len(VARIANTS)
    # the raw and normalised CIs of one cell, as in summary.csv
    s = a.summary.set_index(["task", "variant"]).loc[("Hopper-v5", "baseline")]
    hopper = next(r for r in rows if r.startswith("Hopper-v5 & baseline"))
    assert export.fmt_ci(s["final_mean"], s["final_ci_low"], s["final_ci_high"]) in hopper
    assert export.fmt_ci(s["final_norm_mean"], s["final_norm_ci_low"], s["final_norm_ci_high"]) in hopper
    assert export.latex_escape("a_b & 50% {x}") == "a\\_b \\& 50\\% \\{x\\}"


def test_fmt_ci():
    assert export.fmt_ci(941.2, 904.4, 963.0) == "941 [904, 963]"
    assert export.fmt_ci(0.25812, 0.2471, 0.2644) == "0.258 [0.247, 0.264]"
    assert export.fmt_ci(-1164.3, np.nan, np.nan) == "-1164"  # no interval: the point only


def test_figure_data_csvs(report):
    a, out = report
    for name, frame in (("curves", a.curves), ("profiles", a.profiles)):
        got = pd.read_csv(out / f"{name}.csv")
        assert len(got) == len(frame) > 0
        np.testing.assert_allclose(
            got["mean" if name == "curves" else "point"], frame["mean" if name == "curves" else "point"]
        )
    se = pd.read_csv(out / "sample_efficiency.csv")
    assert list(se.columns) == ["variant", "timesteps", "point", "low", "high"]
    assert len(se) == len(a.sample_efficiency) > 0
    cur = pd.read_csv(out / "curves.csv")
    grp = cur[(cur["task"] == "Hopper-v5") & (cur["variant"] == "baseline")]
    m = grp["mean"].to_numpy()
    # centred moving average over 3 evaluations (2 at the ends)
    np.testing.assert_allclose(grp["mean_smoothed"].to_numpy()[1:-1], (m[:-2] + m[1:-1] + m[2:]) / 3)
    np.testing.assert_allclose(grp["mean_smoothed"].to_numpy()[[0, -1]], [(m[0] + m[1]) / 2, (m[-2] + m[-1]) / 2])


def test_learning_curves_many_variants():
    variants = [f"v{i:02d}" for i in range(14)]
    steps = np.arange(1, 11) * 100_000
    rows = []
    for i, v in enumerate(variants):
        for t in ("A-v1", "B-v1"):
            n = 3 if (v != "v13" or t == "A-v1") else 2
            rows.append(
                pd.DataFrame(
                    {"task": t, "variant": v, "timesteps": steps, "mean": steps * i, "low": 0.0, "high": 1.0, "n_runs": n}
                )
            )
    curves = pd.concat(rows, ignore_index=True)
    styles = plots.variant_styles(variants)
    pairs = {(tuple(st["color"]), st["linestyle"]) for st in styles.values()}  # type: ignore[arg-type]
    assert len(pairs) == 14  # distinct: colours repeat past the palette of 10 only with another line style
    fig = plots.learning_curves(curves, variants, smooth=3)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[0] == "v00 (n=3)" and labels[13] == "v13 (n=2-3)"
    ax = fig.axes[0]
    line = ax.get_lines()[5]
    y = steps * 5.0
    np.testing.assert_allclose(line.get_ydata()[1:-1], (y[:-2] + y[1:-1] + y[2:]) / 3)
    fig.canvas.draw()
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert any(t.endswith("M") for t in ticks) and any(t.endswith("k") for t in ticks)
    plt.close(fig)
    assert [plots.format_steps(x) for x in (0, 500, 250_000, 1_500_000)] == ["0", "500", "250k", "1.5M"]


def test_task_factor_curves_one_panel_per_factor_with_the_baseline_in_each():
    steps = np.arange(1, 6) * 1000
    variants = ["baseline", "noise_a", "noise_b", "ln_x"]
    rows = [
        pd.DataFrame(
            {
                "task": t,
                "variant": v,
                "timesteps": steps,
                "mean": steps * (i + 1.0),
                "low": 0.0,
                "high": 1.0,
                "n_runs": 1 if v == "ln_x" else 3,
            }
        )
        for t in ("A-v1", "B/C-v0")
        for i, v in enumerate(variants)
    ]
    curves = pd.concat(rows, ignore_index=True)
    factors = {"noise": ["noise_a", "noise_b"], "layer_norm": ["ln_x"]}
    fig = plots.task_factor_curves(curves, "B/C-v0", factors, "baseline", variants)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["noise", "layer_norm"]  # the factors' order, not sorted
    labels = [[t.get_text() for t in ax.get_legend().get_texts()] for ax in axes]
    assert labels == [["baseline (n=3)", "noise_a (n=3)", "noise_b (n=3)"], ["baseline (n=3)", "ln_x (n=1)"]]
    # the panel's line of noise_b is noise_b's curve of this task, in noise_b's colour in every figure
    line = axes[0].get_lines()[2]
    np.testing.assert_allclose(line.get_ydata(), steps * 3.0)
    assert line.get_color() == plots.variant_styles(variants)["noise_b"]["color"]
    assert len(axes[1].collections) == 1  # a band for the baseline (3 runs), none for the single ln_x run
    plt.close(fig)
    assert plots.figure_name("B/C-v0") == "B_C-v0" and plots.figure_name("HalfCheetah-v5") == "HalfCheetah-v5"
    with pytest.raises(ValueError, match="no ablation factor"):
        plots.task_factor_curves(curves, "A-v1", {}, "baseline", variants)


def _run_zoo(module, argv, monkeypatch):
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(plt, "show", lambda *a, **k: None)
    module()


def test_zoo_all_plots_reads_the_export_per_variant(report, tmp_path, monkeypatch):
    from rl_zoo3.plots.all_plots import all_plots
    from rl_zoo3.plots.plot_from_file import plot_from_file

    a, out = report
    exported = pd.read_csv(out / "zoo" / "exported.csv")
    assert exported["exported"].all() and len(exported) == len(TASKS) * len(VARIANTS) * N_SEEDS
    variants = sorted(VARIANTS)
    pkl = tmp_path / "zoo_results"
    argv = ["all_plots", "-a", "ddpg", "-e", *TASKS, "-f", *[str(out / "zoo" / v) for v in variants]]
    argv += ["-l", *variants, "--no-display", "-o", str(pkl)]
    _run_zoo(all_plots, argv, monkeypatch)
    plt.close("all")
    with open(f"{pkl}.pkl", "rb") as f:
        res = pickle.load(f)
    for task in TASKS:
        assert sorted(res[task]) == sorted(f"DDPG-{v}" for v in variants)  # one method per variant, not per seed
        for v in variants:
            r = res[task][f"DDPG-{v}"]
            assert len(r["last_evals"]) == N_SEEDS
            ours = a.curves[(a.curves["task"] == task) & (a.curves["variant"] == v)]
            np.testing.assert_allclose(r["timesteps"], ours["timesteps"])
            np.testing.assert_allclose(r["mean"], ours["mean"], rtol=1e-12)  # seed-mean curve, same as ours
    table = res["results_table"]["value_matrix"]
    assert all("0.0 +/- 0.0" not in cell for row in table[1:] for cell in row[1:])
    # and plot_from_file draws one learning curve per variant from that file
    _run_zoo(plot_from_file, ["plot_from_file", "-i", str(pkl)], monkeypatch)
    fig = plt.figure(f"Results {TASKS[0]}")
    assert sorted(ln.get_label() for ln in fig.axes[0].get_lines()) == sorted(f"DDPG-{v}" for v in variants)
    plt.close("all")


def test_zoo_all_plots_on_runner_folders_is_what_the_export_fixes(suite, tmp_path, monkeypatch):
    """Pointed at the runner's own folders, all_plots sees one experiment per seed folder (the issue's symptom)."""
    from rl_zoo3.plots.all_plots import all_plots

    seeds = sorted((suite / "synthetic" / "Hopper-v5" / "baseline").glob("seed_*/logs"))
    pkl = tmp_path / "direct"
    argv = ["all_plots", "-a", "ddpg", "-e", "Hopper-v5", "-f", *map(str, seeds), "--no-display", "-o", str(pkl)]
    _run_zoo(all_plots, argv, monkeypatch)
    plt.close("all")
    with open(f"{pkl}.pkl", "rb") as f:
        res = pickle.load(f)
    assert len(res["Hopper-v5"]) == N_SEEDS and all(np.size(r["last_evals"]) == 1 for r in res["Hopper-v5"].values())


def test_analysis_commit_is_dirty_only_for_analysis_code(tmp_path):
    """The report records the analysis code's commit: rewriting a tracked report under results/ (as regenerating a
    committed report does) leaves it clean, an uncommitted change to analysis/ marks it dirty."""
    import subprocess

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    for rel in ("analysis/metrics.py", "results/s/report/summary.csv"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("v1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert export.analysis_commit(tmp_path) == head
    (tmp_path / "results/s/report/summary.csv").write_text("v2\n")
    (tmp_path / "untracked.py").write_text("x\n")
    assert export.analysis_commit(tmp_path) == head
    (tmp_path / "analysis/metrics.py").write_text("v2\n")
    assert export.analysis_commit(tmp_path) == head + "-dirty"
    assert export.analysis_commit(tmp_path / "nowhere").startswith("unknown")
