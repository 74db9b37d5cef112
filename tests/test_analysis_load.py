"""Loaders: layouts, the safe YAML loader, and corrupt / partial inputs (reported, never a crash or silent drop)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.align import align_runs, check_lengths, task_grid
from analysis.load import Inventory, load_runs, load_yaml
from analysis.synthetic import write_runner_run, write_zoo_log

STEPS = np.arange(1, 11) * 1000


def _results(level=100.0, n=10, episodes=3):
    return np.linspace(0, level, n)[:, None] + np.arange(episodes)[None, :]


def _reasons(res, level):
    return [e["reason"] for e in res.inventory.entries if e["level"] == level]


def test_yaml_loader_handles_zoo_tags_and_executes_nothing(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "config.yml"
    p.write_text(
        "!!python/object/apply:collections.OrderedDict\n"
        "- - - policy_kwargs\n    - dict(net_arch=[64, 64])\n"
        "  - - train_freq\n    - !!python/tuple [1, episode]\n"
        f"  - - evil\n    - !!python/object/apply:os.system ['touch {marker}']\n"
        "  - - cls\n    - !!python/name:collections.OrderedDict ''\n"
    )
    cfg = load_yaml(p)
    assert cfg["policy_kwargs"] == "dict(net_arch=[64, 64])"
    assert cfg["train_freq"] == (1, "episode")
    assert isinstance(cfg["evil"], str) and "os.system" in cfg["evil"]
    assert not marker.exists()
    bad = tmp_path / "bad.yml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ValueError, match=r"bad\.yml"):
        load_yaml(bad)


def test_zoo_log_any_depth(tmp_path):
    write_zoo_log(tmp_path / "deep" / "er" / "logs", "ddpg", "Foo-v1", STEPS, _results(), np.arange(5.0), seed=7)
    res = load_runs(tmp_path)
    assert len(res.runs) == 1
    run = res.runs.iloc[0]
    assert (run["task"], run["variant"], run["seed"], run["n_evals"], run["n_episodes"]) == ("Foo-v1", "ddpg", 7, 10, 5)
    assert res.evals["eval_return_mean"].iloc[-1] == pytest.approx(101.0)
    np.testing.assert_array_equal(res.episodes["timesteps"], np.arange(1, 6) * 1000)


def test_corrupt_and_partial_fixtures_are_reported(tmp_path):
    root = tmp_path / "logs"
    good = write_zoo_log(root, "ddpg", "Good-v1", STEPS, _results(), np.arange(3.0))
    trunc = write_zoo_log(root, "ddpg", "Trunc-v1", STEPS, _results(), np.arange(3.0))
    raw = (trunc / "evaluations.npz").read_bytes()
    (trunc / "evaluations.npz").write_bytes(raw[: len(raw) // 2])  # truncated zip
    garbage = write_zoo_log(root, "ddpg", "Garbage-v1", STEPS, _results(), np.arange(3.0))
    (garbage / "evaluations.npz").write_bytes(b"not a zip at all")
    pickled = write_zoo_log(root, "ddpg", "Pickled-v1", STEPS, _results(), np.arange(3.0))
    np.savez(pickled / "evaluations.npz", timesteps=STEPS, results=np.array([{"a": 1}] * 10, dtype=object))
    nokey = write_zoo_log(root, "ddpg", "NoKey-v1", STEPS, _results(), np.arange(3.0))
    np.savez(nokey / "evaluations.npz", timesteps=STEPS)
    empty_mon = write_zoo_log(root, "ddpg", "EmptyMonitor-v1", STEPS, _results(), np.arange(3.0))
    (empty_mon / "0.monitor.csv").write_text("")
    header_mon = write_zoo_log(root, "ddpg", "HeaderMonitor-v1", STEPS, _results())  # header only, 0 episodes
    no_cfg = write_zoo_log(root, "ddpg", "NoConfig-v1", STEPS, _results(), np.arange(3.0))
    shutil.rmtree(no_cfg / "NoConfig-v1")
    no_npz = write_zoo_log(root, "ddpg", "NoEval-v1", STEPS, _results(), np.arange(3.0))
    (no_npz / "evaluations.npz").unlink()
    write_zoo_log(root, "ddpg", "NaN-v1", STEPS, np.where(np.arange(10)[:, None] == 4, np.nan, _results()))

    res = load_runs(root)  # must not raise
    runs = res.runs.set_index("task")
    assert len(runs) == 10  # every folder accounted for
    used = set(runs.index[runs["included"]])
    assert used == {"Good-v1", "EmptyMonitor-v1", "HeaderMonitor-v1", "NoConfig-v1"}
    excluded = res.inventory.to_frame().query("level == 'excluded'")
    assert set(excluded["path"].map(lambda p: p.split("/")[-2])) == {
        "Trunc-v1_1",
        "Garbage-v1_1",
        "Pickled-v1_1",
        "NoKey-v1_1",
        "NoEval-v1_1",
        "NaN-v1_1",
    }
    text = " ".join(_reasons(res, "excluded"))
    assert "corrupt or truncated evaluations.npz" in text
    assert "lacks key 'results'" in text
    assert "no evaluations.npz" in text
    assert "non-finite evaluation return at 1 of 10" in text
    warnings = " ".join(_reasons(res, "warning"))
    assert "empty monitor file" in warnings
    assert "missing config folder" in warnings
    for task in runs.index[~runs["included"]]:
        assert runs.loc[task, "reason"]  # the run table says why too
    assert set(res.evals["task"]) == used
    assert runs.loc["NoConfig-v1", "config"] == {}
    assert runs.loc["Good-v1", "n_episodes"] == 3 and runs.loc["EmptyMonitor-v1", "n_episodes"] == 0
    assert good.exists() and header_mon.exists()


def test_runner_folders_statuses(tmp_path):
    out = tmp_path / "out"
    write_runner_run(out, "s", "T-v1", "baseline", 0, STEPS, _results(), status="done")
    write_runner_run(out, "s", "T-v1", "noise_ou", 0, STEPS, _results(), factor="noise", status="done")
    write_runner_run(out, "s", "T-v1", "noise_ou", 1, STEPS, _results(), factor="noise", status="diverged")
    write_runner_run(out, "s", "T-v1", "noise_ou", 2, STEPS, _results(), factor="noise", status="failed")
    failed_nolog = write_runner_run(out, "s", "T-v1", "noise_ou", 3, STEPS, _results(), factor="noise", status="failed")
    shutil.rmtree(failed_nolog / "logs")
    broken = write_runner_run(out, "s", "T-v1", "baseline", 1, STEPS, _results())
    (broken / "run.json").write_text("{not json")
    res = load_runs(out)
    runs = res.runs.set_index(["variant", "seed"])
    assert len(runs) == 6
    assert runs.loc[("noise_ou", 0), "factor"] == "noise" and runs.loc[("noise_ou", 0), "included"]
    assert not runs.loc[("noise_ou", 1), "included"] and "diverged" in runs.loc[("noise_ou", 1), "reason"]
    assert not runs.loc[("noise_ou", 2), "included"] and "failed" in runs.loc[("noise_ou", 2), "reason"]
    assert "synthetic failure" in runs.loc[("noise_ou", 3), "reason"]  # error tail surfaces
    assert "unreadable run.json" in runs.loc[("baseline", 1), "reason"]
    assert runs.loc[("baseline", 0), "versions"]["stable_baselines3"] == "2.9.0"
    assert set(res.evals["run"]) == {str(out / "s/T-v1/baseline/seed_0"), str(out / "s/T-v1/noise_ou/seed_0")}
    assert (res.evals["source"] == "runner").all()


def test_curve_files(tmp_path):
    np.save(tmp_path / "ALG_Env-v1_0.npy", np.arange(5.0))
    np.save(tmp_path / "ALG_Env-v1_1.npy", np.arange(5.0) * 2)
    np.save(tmp_path / "ALG_Env-v1_2.npy", np.array([{"x": 1}], dtype=object))  # needs pickle: refused
    np.save(tmp_path / "noseed.npy", np.arange(5.0))
    (tmp_path / "CSV_Env-v1_0.csv").write_text("timesteps,return\n0,1\n10,2\n20,4\n")
    (tmp_path / "summary.csv").write_text("a,b\n1,2\n")  # not a curve: ignored (no seed suffix)
    res = load_runs(tmp_path, curve_step=100)
    runs = res.runs
    inc = runs[runs["included"]]
    assert sorted(zip(inc["variant"], inc["seed"])) == [("ALG", 0), ("ALG", 1), ("CSV", 0)]
    skipped = {e["path"].split("/")[-1] for e in res.inventory.entries if e["level"] == "skipped"}
    assert skipped == {"noseed.npy", "summary.csv"}  # listed as not runs, never counted
    assert "unreadable curve array" in " ".join(_reasons(res, "excluded"))
    alg = res.evals[(res.evals["variant"] == "ALG") & (res.evals["seed"] == 1)]
    np.testing.assert_array_equal(alg["timesteps"], [0, 100, 200, 300, 400])
    csv = res.evals[res.evals["variant"] == "CSV"]
    np.testing.assert_array_equal(csv["timesteps"], [0, 10, 20])


def test_missing_path_raises(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_runs(tmp_path / "nope")


def test_align_different_lengths_and_grids():
    rows = []
    for run, steps in (("a", [0, 10, 20, 30]), ("b", [0, 15, 30]), ("c", [0, 10, 20])):
        for s in steps:
            rows.append({"task": "T", "variant": "v", "seed": 0, "run": run, "timesteps": s, "eval_return_mean": float(s)})
    ev = pd.DataFrame(rows)
    np.testing.assert_array_equal(task_grid(ev), [0, 10, 20])  # common support of a, b, c
    al = align_runs(ev)
    runs, steps, mat = al.task_matrix("T")
    assert runs == ["a", "b", "c"]
    np.testing.assert_array_equal(steps, [0, 10, 20])
    np.testing.assert_allclose(mat, np.tile([0.0, 10.0, 20.0], (3, 1)))  # linear curves interpolate exactly
    al2 = align_runs(ev[ev["run"] != "c"], n_points=4)
    np.testing.assert_array_equal(al2.cells[("T", "v")].steps, [0, 10, 20, 30])


def test_aligned_runs_one_matrix_per_task_and_variant():
    """align_runs gives one runs x steps matrix per (task, variant) on the task's grid (shared by its variants),
    runs ordered by seed; the long table is a view of the same numbers."""
    rows = []
    for task, variant, seed, steps in (
        ("T", "w", 1, [0, 10, 20]),
        ("T", "v", 2, [0, 10, 20, 30]),
        ("T", "v", 0, [0, 5, 20]),
        ("U", "v", 0, [100, 200]),
        ("X", "v", 0, [0, 10]),
        ("X", "w", 0, [20, 30]),  # shares no step with the other run of X: no grid
    ):
        for s in steps:
            run = f"{task}{variant}{seed}"
            rows.append(
                {"task": task, "variant": variant, "seed": seed, "run": run, "timesteps": s, "eval_return_mean": s + seed}
            )
    al = align_runs(pd.DataFrame(rows))
    assert list(al.cells) == [("T", "v"), ("T", "w"), ("U", "v")]
    assert al.tasks == ["T", "U"] and al.variants == ["v", "w"]
    tv = al.cells[("T", "v")]
    assert list(tv.runs) == ["Tv0", "Tv2"] and tv.seeds.tolist() == [0, 2] and tv.seeds.dtype == np.int64
    np.testing.assert_array_equal(tv.steps, [0, 10, 20])  # steps of T's longest run within the common support
    np.testing.assert_allclose(tv.values, [[0.0, 10.0, 20.0], [2.0, 12.0, 22.0]])  # Tv0 interpolated at 10
    assert al.cells[("T", "w")].steps is tv.steps and tv.n_runs == 2
    runs, steps, mat = al.task_matrix("T")
    assert runs == ["Tv0", "Tv2", "Tw1"] and mat.shape == (3, 3)
    with pytest.raises(KeyError, match="X"):
        al.task_matrix("X")
    long = al.to_frame()
    assert list(long.columns) == ["task", "variant", "seed", "run", "timesteps", "eval_return_mean"]
    assert len(long) == 3 * 3 + 2
    np.testing.assert_allclose(long.loc[long["run"] == "Tv2", "eval_return_mean"], [2.0, 12.0, 22.0])


def test_check_lengths_flags_incomplete_runs():
    runs = pd.DataFrame(
        {
            "task": ["T", "T", "T", "U"],
            "run": ["a", "b", "c", "d"],
            "included": [True, True, True, True],
            "last_timestep": [1000, 990, 400, 10],
            "path": ["pa", "pb", "pc", "pd"],
        }
    )
    inv = Inventory()
    assert check_lengths(runs, inv, 0.95) == {"c"}
    assert "incomplete: last evaluation at step 400" in inv.entries[0]["reason"]
    with pytest.raises(ValueError, match="min_fraction"):
        check_lengths(runs, inv, 0.0)


#: A run.json the runner wrote (a committed study run): the reference for the synthetic writer's keys and types.
RUNNER_RUN_JSON = Path(__file__).resolve().parents[1] / "results/study_v1/Pendulum-v1/baseline/seed_0/run.json"


def test_synthetic_run_json_has_the_runners_keys_and_types(tmp_path):
    real = json.loads(RUNNER_RUN_JSON.read_text())
    rd = write_runner_run(tmp_path, "s", "T-v1", "baseline", 0, STEPS, _results())
    info = json.loads((rd / "run.json").read_text())
    assert set(info) <= set(real), f"keys the runner does not write: {set(info) - set(real)}"
    for key, value in info.items():
        if value is not None and real[key] is not None:
            assert type(value) is type(real[key]) or {type(value), type(real[key])} <= {int, float}, (key, value, real[key])
    # The fields the analysis reads from a runner's run.json are all there.
    read = {"task", "variant", "factor", "algo", "status", "suite", "git_commit", "wall_time_s", "env_steps_per_s"}
    assert read | {"n_timesteps", "seed", "versions", "started", "finished"} <= set(info)
