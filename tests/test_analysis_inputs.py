"""Inputs the report must survive: runs given twice, malformed run.json, files that are not runs, bad CLI values."""

from __future__ import annotations

import json
import shlex
import shutil

import numpy as np
import pandas as pd
import pytest

from analysis.__main__ import main
from analysis.load import load_runs
from analysis.report import ReportSettings, analyse, build_report
from analysis.synthetic import synthetic_suite

VARIANTS = {"baseline": (None, 1.0), "noise_ou": ("noise", 0.8)}


@pytest.fixture()
def suite(tmp_path):
    root = tmp_path / "runs"
    synthetic_suite(root, ["Hopper-v5"], VARIANTS, n_seeds=3, n_points=8, budget=8000, seed=2)
    return root


def _seed_dir(root, variant="baseline", seed=0):
    return root / "synthetic" / "Hopper-v5" / variant / f"seed_{seed}"


@pytest.mark.parametrize(
    ("extra", "n_dup"),
    [
        (lambda r: [r], 6),  # the same folder twice: each of its 6 runs is a duplicate
        (lambda r: [_seed_dir(r)], 1),  # a run folder inside it
        (lambda r: [_seed_dir(r) / "run.json"], 1),  # a file inside it
        (lambda r: [_seed_dir(r) / "logs"], 1),  # the zoo log folder inside a runner folder
    ],
    ids=["folder-twice", "run-folder", "run-json", "zoo-logs-inside"],
)
def test_run_given_twice_is_loaded_once(suite, tmp_path, extra, n_dup):
    once = analyse(suite, ReportSettings(reps=50, figures=False))
    twice = analyse([suite, *extra(suite)], ReportSettings(reps=50, figures=False))  # used to raise
    assert len(twice.loaded.runs) == len(once.loaded.runs) == 6
    pd.testing.assert_frame_equal(twice.summary, once.summary)
    info = [e for e in twice.loaded.inventory.entries if e["level"] == "info"]
    assert len(info) == n_dup and all("given more than once" in e["reason"] for e in info)


def test_curve_file_inside_a_given_folder(shared_datasets):
    root = shared_datasets / "td3-paper-curves"
    res = load_runs([root / "Hopper", root, root / "Hopper" / "TD3_Hopper-v1_0.npy"])
    assert len(res.runs) == 70 and res.runs["run"].is_unique


def test_malformed_run_json_field_excludes_only_that_run(suite, tmp_path):
    rj = _seed_dir(suite, "noise_ou", 1) / "run.json"
    info = json.loads(rj.read_text())
    info["seed"] = "zero"
    rj.write_text(json.dumps(info))
    a = build_report(suite, tmp_path / "out", ReportSettings(reps=50, figures=False))  # used to abort
    runs = a.loaded.runs.set_index("run")
    bad = runs.loc[str(rj.parent)]
    assert not bad["included"] and "malformed run.json" in bad["reason"] and "'seed'" in bad["reason"]
    assert int(runs["included"].sum()) == 5
    inv = pd.read_csv(tmp_path / "out" / "inventory.csv")
    row = inv[inv["run"] == str(rj.parent)]
    assert len(row) == 1 and row["level"].iloc[0] == "excluded"
    assert "field 'seed' = 'zero' is not an integer" in row["reason"].iloc[0]
    entry = [e for e in a.loaded.inventory.entries if e["level"] == "excluded"]
    assert entry[0]["path"] == str(rj)  # the file is named
    assert a.summary.set_index("variant").loc["noise_ou", "n_runs"] == 2


@pytest.mark.parametrize(
    ("field", "value"), [("seed", 1.5), ("seed", True), ("wall_time_s", "long"), ("versions", [1]), ("task", 3)]
)
def test_other_malformed_fields(suite, field, value):
    rj = _seed_dir(suite) / "run.json"
    info = json.loads(rj.read_text())
    info[field] = value
    rj.write_text(json.dumps(info))
    runs = load_runs(suite).runs.set_index("run")
    assert not runs.loc[str(rj.parent), "included"]
    assert f"'{field}'" in runs.loc[str(rj.parent), "reason"]


def test_unrelated_word_digits_files_are_skipped(suite, tmp_path):
    other = suite / "notes"
    other.mkdir()
    (other / "progress_1.csv").write_text("step,loss\n0,1.0\n10,0.5\n")
    np.save(other / "scores_12.npy", np.arange(4.0))
    np.save(other / "DDPG_Hopper-v5_7.npy", np.linspace(0, 1000, 8))  # a real curve file is still a run
    a = build_report(suite, tmp_path / "out", ReportSettings(reps=50, figures=False, curve_step=1000))
    assert set(a.summary["task"]) == {"Hopper-v5"}  # no task "progress" or "scores"
    assert len(a.loaded.runs) == 7
    inv = pd.read_csv(tmp_path / "out" / "inventory.csv")
    skipped = inv[inv["level"] == "skipped"]
    assert sorted(skipped["path"].map(lambda p: p.split("/")[-1])) == ["progress_1.csv", "scores_12.npy"]


def test_inventory_csv_lists_every_run(suite, tmp_path):
    bad = _seed_dir(suite, "noise_ou", 2)
    (bad / "logs" / "ddpg" / "Hopper-v5_1" / "evaluations.npz").write_bytes(b"garbage")
    build_report(suite, tmp_path / "out", ReportSettings(reps=50, figures=False))
    inv = pd.read_csv(tmp_path / "out" / "inventory.csv")
    runs = inv[inv["level"].isin(["counted", "excluded"])]
    assert len(runs) == 6 and runs["run"].is_unique
    assert (runs["level"] == "counted").sum() == 5
    row = runs[runs["run"] == str(bad)].iloc[0]
    assert row["level"] == "excluded" and "corrupt or truncated evaluations.npz" in row["reason"]
    assert set(runs["variant"]) == set(VARIANTS) and set(runs["seed"]) == {0, 1, 2}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reps", "0"], "argument --reps: must be >= 1"),
        (["--reps", "many"], "argument --reps: expected an integer"),
        (["--confidence", "1.5"], "argument --confidence: must be in (0, 1)"),
        (["--final-k", "0"], "argument --final-k: must be >= 1"),
        (["--curve-step", "0"], "argument --curve-step: must be >= 1"),
        (["--min-fraction", "0"], "argument --min-fraction: must be in (0, 1]"),
        (["--confidence", "high"], "argument --confidence: expected a number"),
        (["--smooth", "0"], "argument --smooth: must be >= 1"),
    ],
)
def test_cli_rejects_bad_values(suite, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exc:  # argparse's usage error, not a traceback
        main(["report", str(suite), "--out", str(tmp_path / "r"), *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_cli_out_is_a_file(suite, tmp_path, capsys):
    f = tmp_path / "report.html"
    f.write_text("x")
    with pytest.raises(SystemExit) as exc:
        main(["report", str(suite), "--out", str(f), "--reps", "10"])
    assert exc.value.code == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    assert f.read_text() == "x"


def test_cli_same_command_same_summary(suite, tmp_path):
    """Determinism: the bootstrap is seeded (--seed), so re-running the command gives byte-identical tables."""
    outs = []
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        assert (
            main(["report", str(suite), "--out", str(tmp_path / name), "--reps", "200", "--seed", seed, "--no-figures"]) == 0
        )
        outs.append({f: (tmp_path / name / f).read_bytes() for f in ("summary.csv", "aggregates.csv", "poi.csv")})
    assert outs[0] == outs[1]
    assert outs[0]["summary.csv"] != outs[2]["summary.csv"]  # another seed, other intervals: the check can fail


def test_run_seeds_gives_the_report_of_those_seeds_alone(suite, tmp_path):
    """--run-seeds 0 1 on seeds 0-2 = the report of a copy holding only seeds 0-1; seed 2 listed as excluded."""
    only = tmp_path / "only"
    shutil.copytree(suite, only)
    for variant in VARIANTS:
        shutil.rmtree(_seed_dir(only, variant, 2))
    settings = {"reps": 200, "figures": False, "zoo_export": False}
    picked = build_report(suite, tmp_path / "picked", ReportSettings(run_seeds=(1, 0, 1), **settings))
    build_report(only, tmp_path / "alone", ReportSettings(**settings))
    for name in ("summary.csv", "aggregates.csv", "poi.csv", "run_scores.csv"):
        a = pd.read_csv(tmp_path / "picked" / name)
        b = pd.read_csv(tmp_path / "alone" / name)
        if "run" in a:  # run ids are paths: compare them relative to their root
            a["run"] = a["run"].str.replace(str(suite), "", regex=False)
            b["run"] = b["run"].str.replace(str(only), "", regex=False)
        pd.testing.assert_frame_equal(a, b, obj=name)
    runs = picked.loaded.runs
    assert sorted(runs.loc[runs["included"].astype(bool), "seed"].unique()) == [0, 1]
    dropped = runs[runs["reason"] == "seed not selected"]
    assert len(dropped) == 2 and set(dropped["seed"]) == {2}
    inv = pd.read_csv(tmp_path / "picked" / "inventory.csv")
    assert (inv["reason"].str.startswith("seed not selected")).sum() == 2
    assert any("--run-seeds" in n for n in picked.notes)
    assert (tmp_path / "picked" / "command.txt").read_text().strip().endswith("--run-seeds 0 1")


def test_cli_run_seeds_round_trips_through_command_txt(suite, tmp_path):
    """The command.txt a report writes rebuilds the same tables (here with --run-seeds)."""
    assert (
        main(["report", str(suite), "--out", str(tmp_path / "a"), "--reps", "100", "--no-figures", "--run-seeds", "2", "0"])
        == 0
    )
    argv = shlex.split((tmp_path / "a" / "command.txt").read_text())
    assert argv[:4] == ["python", "-m", "analysis", "report"] and argv[argv.index("--run-seeds") + 1 :][:2] == ["0", "2"]
    argv[argv.index("--out") + 1] = str(tmp_path / "b")
    assert main(argv[3:]) == 0
    for name in ("summary.csv", "aggregates.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert set(pd.read_csv(tmp_path / "a" / "run_scores.csv")["seed"]) == {0, 2}


def test_run_seeds_with_no_run_left_is_a_clear_error(suite, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["report", str(suite), "--out", str(tmp_path / "r"), "--run-seeds", "-1"])
    assert exc.value.code == 2 and "argument --run-seeds: must be >= 0" in capsys.readouterr().err
    with pytest.raises(ValueError, match="run_seeds must name at least one seed"):
        ReportSettings(run_seeds=())
