"""Tests of the benchmark runner (``benchmarks``): grid expansion, validation, run folders, resume, backends.

Fast tests check suites, commands and status bookkeeping without training. The ``slow`` tests run real zoo
subprocesses on Pendulum-v1 with a budget of 200 steps and a [32, 32] net (each run is a few seconds of CPU).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import benchmarks.runner as runner_module
from benchmarks.__main__ import USAGE_ERROR, main
from benchmarks.grid import MAX_EXIT_STATUS, exit_status, format_summary, run_suite, summarize
from benchmarks.runner import (
    _pid_runs_in,
    build_command,
    command_path,
    decide_status,
    evaluation_complete,
    execute_run,
    run_hyperparams,
    run_status,
)
from benchmarks.suite import DIVERGENCE_CALLBACK, SOURCE_ROOT, expand_grid, list_suites, load_suite
from sb3_ddpg_ext.run_folder import last_evaluation_step, read_run_json, write_json_atomic

REPO_ROOT = Path(__file__).resolve().parents[1]

HYPERPARAMS = REPO_ROOT / "hyperparams" / "ddpg.yml"
VARIANTS = REPO_ROOT / "hyperparams" / "variants.yml"

RUN_JSON_KEYS = {
    "suite",
    "task",
    "variant",
    "factor",
    "seed",
    "algo",
    "status",
    "started",
    "finished",
    "wall_time_s",
    "env_steps_per_s",
    "n_timesteps",
    "versions",
    "git_commit",
    "host",
    "error_tail",
}

# Smallest real runs: 200 steps (100 random, then 100 gradient steps on batches of 32), one evaluation episode.
TINY_OVERRIDES = {
    "learning_starts": 100,
    "batch_size": 32,
    "buffer_size": 1000,
    "policy_kwargs": {"net_arch": [32, 32]},
}


def write_suite(path: Path, **entries: Any) -> Path:
    data: dict[str, Any] = {
        "description": "test suite",
        "hyperparams_file": str(HYPERPARAMS),
        "variants_file": str(VARIANTS),
        "tasks": {"Pendulum-v1": None},
        "variants": ["baseline"],
        "seeds": 1,
        "n_timesteps": 200,
        "eval_freq": 200,
        "eval_episodes": 1,
        "threads": 1,
        "overrides": TINY_OVERRIDES,
        "divergence_check_freq": 50,
    }
    data.update(entries)
    data = {k: v for k, v in data.items() if v is not ...}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# --------------------------------------------------------------------------------------------- fast
def test_grid_expansion(tmp_path):
    suite_file = write_suite(
        tmp_path / "grid.yml",
        tasks={"Pendulum-v1": {"n_timesteps": 400, "eval_freq": 100}, "HalfCheetahBulletEnv-v0": None},
        variants=["baseline", "ls_0", "ln_both", "noise_pink_0.3"],
        seeds=[3, 1, 7],
        n_timesteps=...,
        overrides={"learning_starts": 123, "policy_kwargs": {"net_arch": [16, 16]}},
    )
    suite = load_suite(suite_file)
    assert suite.name == "grid" and suite.n_runs == 2 * 4 * 3
    runs = expand_grid(suite)
    assert len(runs) == suite.n_runs
    assert len({r.key for r in runs}) == len(runs)
    # Seed-major order: the first len(tasks) * len(variants) runs are all seed 3.
    assert [r.seed for r in runs[:8]] == [3] * 8 and [r.seed for r in runs[8:16]] == [1] * 8
    by_key = {(r.task, r.variant, r.seed): r for r in runs}
    base = by_key[("Pendulum-v1", "baseline", 3)]
    assert base.run_dir(tmp_path / "out") == tmp_path / "out" / "grid" / "Pendulum-v1" / "baseline" / "seed_3"
    assert (base.algo, base.factor, base.n_timesteps, base.eval_freq) == ("ddpg", "baseline", 400, 100)
    assert base.gym_packages == ()
    # The suite's overrides change the baseline entry before the variant: a variant setting the same key wins.
    assert base.hyperparams["learning_starts"] == 123
    assert by_key[("Pendulum-v1", "ls_0", 3)].hyperparams["learning_starts"] == 0
    assert by_key[("Pendulum-v1", "ls_0", 3)].factor == "learning_starts"
    ln = by_key[("Pendulum-v1", "ln_both", 1)].hyperparams
    assert ln["policy"] == "sb3_ddpg_ext.policies.LnMlpPolicy"
    assert ln["policy_kwargs"] == {"net_arch": [16, 16], "layer_norm_actor": True, "layer_norm_critic": True}
    pink = by_key[("Pendulum-v1", "noise_pink_0.3", 7)].hyperparams
    assert "noise_type" not in pink and pink["callback"] == [{"sb3_ddpg_ext.zoo.ExplorationCallback": {"spec": "pink_0.3"}}]
    # Budget of a task without one in the suite: the baseline file's n_timesteps (1e6 for HalfCheetahBullet).
    bullet = by_key[("HalfCheetahBulletEnv-v0", "baseline", 7)]
    assert bullet.n_timesteps == 1_000_000 and bullet.gym_packages == ("pybullet_envs_gymnasium",)
    assert all(r.hyperparams["n_timesteps"] == r.n_timesteps for r in runs)


def test_each_cell_is_resolved_once_at_load_and_the_grid_runs_it(tmp_path):
    """The grid is what load_suite checked: files edited after loading do not change it."""
    hyperparams, variants = tmp_path / "ddpg.yml", tmp_path / "variants.yml"
    hyperparams.write_text(HYPERPARAMS.read_text())
    variants.write_text(VARIANTS.read_text())
    suite_file = write_suite(
        tmp_path / "once.yml",
        hyperparams_file=str(hyperparams),
        variants_file=str(variants),
        tasks={"Pendulum-v1": {"overrides": {"batch_size": 48}}, "MountainCarContinuous-v0": {"eval_freq": 100}},
        variants=["baseline", "ls_0"],
        seeds=[5, 2],
        threads=2,
    )
    suite = load_suite(suite_file)
    assert [(c.task.env_id, c.variant, c.factor, c.algo) for c in suite.cells] == [
        ("Pendulum-v1", "baseline", "baseline", "ddpg"),
        ("Pendulum-v1", "ls_0", "learning_starts", "ddpg"),
        ("MountainCarContinuous-v0", "baseline", "baseline", "ddpg"),
        ("MountainCarContinuous-v0", "ls_0", "learning_starts", "ddpg"),
    ]
    # Suite overrides, then task overrides, then the variant; the budget is the task's.
    pendulum_ls0 = suite.cells[1].hyperparams
    assert (pendulum_ls0["learning_starts"], pendulum_ls0["batch_size"], pendulum_ls0["n_timesteps"]) == (0, 48, 200)
    assert suite.cells[3].hyperparams["batch_size"] == TINY_OVERRIDES["batch_size"]
    hyperparams.write_text(yaml.safe_dump({"Pendulum-v1": {"policy": "MlpPolicy", "gamma": 0.5, "n_timesteps": 9}}))
    variants.write_text("{}\n")
    runs = expand_grid(suite)
    assert [(r.seed, r.task, r.variant) for r in runs] == [(s, c.task.env_id, c.variant) for s in (5, 2) for c in suite.cells]
    for run, cell in zip(runs, suite.cells * 2):
        assert run.hyperparams == cell.hyperparams and run.hyperparams is not cell.hyperparams
        assert (run.factor, run.algo, run.n_timesteps, run.eval_freq, run.eval_episodes) == (
            cell.factor,
            cell.algo,
            cell.task.n_timesteps,
            cell.task.eval_freq,
            cell.task.eval_episodes,
        )
        assert (run.threads, run.divergence_check_freq, run.train_module) == (2, 50, "sb3_ddpg_ext.train")
    assert runs[2].eval_freq == 100 and runs[0].hyperparams["gamma"] == 0.98
    runs[0].hyperparams["gamma"] = 0.0  # a run's hyperparameters are its own copy
    assert expand_grid(suite)[0].hyperparams["gamma"] == 0.98


def test_malformed_baseline_file_names_the_suite(tmp_path):
    hyperparams = tmp_path / "hp.yml"
    hyperparams.write_text("Pendulum-v1: [1, 2]\n")
    suite_file = write_suite(tmp_path / "s.yml", hyperparams_file=str(hyperparams))
    with pytest.raises(ValueError, match=r"s.yml: key 'tasks.Pendulum-v1': the entry of 'Pendulum-v1' .* mapping"):
        load_suite(suite_file)
    hyperparams.write_text("Pendulum-v1: {gamma: [0.9\n")
    with pytest.raises(ValueError, match=r"s.yml: hyperparameter file .* is not valid YAML"):
        load_suite(suite_file)


def test_suite_algo_runs_every_variant_with_that_algo(tmp_path):
    variants = ["baseline", "noise_pink_0.3", "tn_per_sample"]
    own = {r.variant: r.algo for r in expand_grid(load_suite(write_suite(tmp_path / "own.yml", variants=variants)))}
    assert own == {"baseline": "ddpg", "noise_pink_0.3": "ddpg", "tn_per_sample": "ddpg_ext"}
    suite = load_suite(write_suite(tmp_path / "ext.yml", variants=variants, algo="ddpg_ext"))
    assert suite.algo == "ddpg_ext"
    runs = expand_grid(suite)
    assert [r.algo for r in runs] == ["ddpg_ext"] * 3
    for run in runs:
        argv, _ = build_command(run, run.run_dir(tmp_path / "out"))
        assert argv[argv.index("--algo") + 1] == "ddpg_ext"
    # Only the algo changes: the hyperparameters are the same as without the suite key.
    plain = {r.variant: r.hyperparams for r in expand_grid(load_suite(tmp_path / "own.yml"))}
    assert {r.variant: r.hyperparams for r in runs} == plain


def test_grid_is_seed_major_and_local_backend_starts_it_in_order(tmp_path, monkeypatch):
    """All task x variant cells of seed k come before any cell of seed k+1; 2 local jobs start them in that order."""
    import benchmarks.backends as backends

    suite = load_suite(
        write_suite(
            tmp_path / "order.yml",
            tasks=["Pendulum-v1", "MountainCarContinuous-v0"],
            variants=["baseline", "noise_pink_0.3", "ls_0"],
            seeds=[4, 0, 2],
        )
    )
    runs = expand_grid(suite)
    cells = {(t.env_id, v) for t in suite.tasks for v in suite.variants}
    assert len(cells) == 6 and len(runs) == 18
    for k, seed in enumerate(suite.seeds):
        block = runs[6 * k : 6 * (k + 1)]
        assert {r.seed for r in block} == {seed} and {(r.task, r.variant) for r in block} == cells
    started: list[str] = []

    def fake_execute_run(spec, out, redo_diverged=False):
        started.append(spec.key)
        time.sleep(0.02)
        return {**spec.identity(), "status": "done"}

    monkeypatch.setattr(backends, "execute_run", fake_execute_run)
    finished: list[dict[str, Any]] = []
    backends.run_local(runs, tmp_path / "out", 2, finished.append)
    expected = [r.key for r in runs]
    assert sorted(started) == sorted(expected) and len(finished) == 18
    # Two workers take the runs in grid order; only the two runs taken together may start in either order.
    assert all(abs(started.index(key) - i) <= 1 for i, key in enumerate(expected)), started
    seed_rank = {seed: k for k, seed in enumerate(suite.seeds)}
    ranks = [seed_rank[int(key.rsplit("_", 1)[1])] for key in started]
    assert all(later >= earlier - 1 for earlier, later in zip(ranks, ranks[1:]))
    assert ranks[:5] == [0] * 5 and ranks[-5:] == [2] * 5


def test_run_hyperparams_and_command(tmp_path):
    suite = load_suite(write_suite(tmp_path / "s.yml", variants=["baseline", "noise_pink_0.3"], threads=2))
    base, pink = expand_grid(suite)
    run_dir = tmp_path / "run"
    guard = {DIVERGENCE_CALLBACK: {"check_freq": 50, "marker_path": str(run_dir / "diverged.json")}}
    assert run_hyperparams(base, run_dir)["callback"] == [guard]
    # Appended to the variant's own callbacks, which stay first.
    assert run_hyperparams(pink, run_dir)["callback"] == [
        {"sb3_ddpg_ext.zoo.ExplorationCallback": {"spec": "pink_0.3"}},
        guard,
    ]
    assert "callback" not in base.hyperparams  # the spec itself is not modified
    argv, env = build_command(pink, run_dir)
    assert argv[1:3] == ["-m", "sb3_ddpg_ext.train"]
    joined = " ".join(argv)
    for flag in (
        f"--algo ddpg --env Pendulum-v1 -conf {run_dir / 'hyperparams.yml'}",
        "-n 200 --seed 0",
        f"-f {run_dir / 'logs'}",
        "--eval-freq 200 --eval-episodes 1 --n-eval-envs 1 --vec-env dummy --num-threads 2",
    ):
        assert flag in joined
    assert "--gym-packages" not in argv and "-P" not in argv
    assert env == {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}


@pytest.mark.parametrize(
    ("entries", "match"),
    [
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"tasks": {"Pendulum-v1": {"budget": 5}}}, r"tasks.Pendulum-v1.*unknown key 'budget'"),
        ({"tasks": ["CartPole-v1"]}, r"tasks.CartPole-v1.*not in the baseline hyperparameter file"),
        ({"variants": ["baseline", "noise_purple"]}, r"key 'variants': unknown variant 'noise_purple'"),
        ({"variants": ["baseline", "baseline"]}, "key 'variants' has duplicates"),
        ({"seeds": [0, 0]}, "key 'seeds' has duplicates"),
        ({"seeds": [-1]}, "key 'seeds' entry must be an integer >= 0"),
        ({"seeds": 0}, "key 'seeds' must be an integer >= 1"),
        ({"seeds": "three"}, "key 'seeds' must be of type int or list"),
        ({"threads": 0}, "key 'threads' must be an integer >= 1"),
        ({"eval_freq": 500}, "eval_freq 500 > n_timesteps 200"),
        ({"variants": ...}, "missing required key 'variants'"),
        ({"hyperparams_file": "no/such/file.yml"}, "key 'hyperparams_file': file 'no/such/file.yml' not found"),
        ({"overrides": [1, 2]}, "key 'overrides' must be of type dict"),
        ({"algo": "td3"}, r"key 'algo': unknown zoo algorithm 'td3'; allowed: \['ddpg', 'ddpg_ext'\]"),
        ({"algo": 1}, "key 'algo' must be of type str"),
    ],
)
def test_validation_errors_name_file_and_key(tmp_path, entries, match):
    suite_file = write_suite(tmp_path / "bad.yml", **entries)
    with pytest.raises(ValueError, match=match) as info:
        load_suite(suite_file)
    assert str(suite_file) in str(info.value)


def test_validation_unregistered_env_and_malformed_files(tmp_path):
    hyperparams = tmp_path / "hp.yml"
    hyperparams.write_text(yaml.safe_dump({"NoSuchEnv-v0": {"policy": "MlpPolicy", "n_timesteps": 100}}))
    suite_file = write_suite(tmp_path / "s.yml", hyperparams_file=str(hyperparams), tasks=["NoSuchEnv-v0"], eval_freq=50)
    with pytest.raises(ValueError, match=r"tasks.NoSuchEnv-v0.*not registered in gymnasium"):
        load_suite(suite_file)
    assert load_suite(suite_file, check_envs=False).tasks[0].env_id == "NoSuchEnv-v0"
    (tmp_path / "list.yml").write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="must be a mapping at top level"):
        load_suite(tmp_path / "list.yml")
    (tmp_path / "broken.yml").write_text("tasks: [a\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_suite(tmp_path / "broken.yml")
    with pytest.raises(ValueError, match="neither a file nor a shipped suite"):
        load_suite("no_such_suite")


def test_shipped_suites_load_and_expand():
    names = {path.stem for path in list_suites()}
    assert {"smoke", "demo", "mujoco", "bullet"} <= names
    assert {"noise", "target_noise", "learning_starts", "update_interval", "layer_norm"} <= names
    for path in list_suites():
        suite = load_suite(path)
        runs = expand_grid(suite)
        assert len(runs) == suite.n_runs > 0, path
    for name in ("mujoco", "bullet"):
        suite = load_suite(name)
        assert len(suite.seeds) == 10 and {t.n_timesteps for t in suite.tasks} == {1_000_000}, name


def test_experiment_check_suites_hold_the_old_scripts_settings():
    """param_noise_mcc and ln_pendulum replace benchmarks/param_noise_check.py and ln_pendulum_check.py."""
    suite = load_suite("param_noise_mcc")
    assert (suite.seeds, [t.n_timesteps for t in suite.tasks], [t.eval_freq for t in suite.tasks]) == (
        tuple(range(16)),
        [30_000],
        [5000],
    )
    cells = {c.variant: c for c in suite.cells}
    assert set(cells) == {"noise_param_0.2", "noise_none"}
    for cell in cells.values():
        hp = cell.hyperparams
        assert cell.task.env_id == "MountainCarContinuous-v0" and cell.algo == "ddpg"
        assert hp["policy"] == "sb3_ddpg_ext.policies.LnMlpPolicy"
        assert hp["policy_kwargs"] == {"net_arch": [64, 64], "layer_norm_actor": True, "layer_norm_critic": True}
        assert hp["normalize"] == {"norm_obs": True, "norm_reward": False}  # both arms: no per-variant overrides
        assert "noise_type" not in hp and "noise_std" not in hp  # the zoo entry's OU noise is gone
        assert (hp["learning_rate"], hp["batch_size"], hp.get("gamma", 0.99), hp.get("learning_starts", 100)) == (
            1e-3,
            256,
            0.99,
            100,
        )
    spec = {v: c.hyperparams["callback"][0]["sb3_ddpg_ext.zoo.ExplorationCallback"]["spec"] for v, c in cells.items()}
    assert spec == {"noise_param_0.2": "adaptive-param_0.2", "noise_none": "none"}

    ln = load_suite("ln_pendulum")
    assert [(c.variant, c.task.n_timesteps, c.task.eval_episodes) for c in ln.cells] == [
        ("baseline", 10_000, 10),
        ("ln_both", 10_000, 10),
    ]
    base, layer_norm = (c.hyperparams for c in ln.cells)
    assert base["policy"] == "MlpPolicy" and layer_norm["policy"] == "sb3_ddpg_ext.policies.LnMlpPolicy"
    for hp in (base, layer_norm):
        assert (hp["learning_starts"], hp["gamma"], hp["noise_type"], hp["noise_std"]) == (1000, 0.98, "normal", 0.1)
        assert hp["policy_kwargs"]["net_arch"] == [400, 300]


def _fake_run_json(run_dir: Path, **fields: Any) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / "run.json", {"host": socket.gethostname(), **fields})


def test_run_status_and_summary(tmp_path):
    suite = load_suite(write_suite(tmp_path / "s.yml", seeds=6))
    runs = expand_grid(suite)
    out = tmp_path / "out"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _fake_run_json(runs[0].run_dir(out), status="done", wall_time_s=10.0)
    _fake_run_json(runs[1].run_dir(out), status="failed", error_tail="boom\nValueError: bad kwarg")
    _fake_run_json(runs[2].run_dir(out), status="diverged", error_tail="diverged at step 50")
    _fake_run_json(runs[3].run_dir(out), status="running", worker_pid=os.getpid(), child_pid=None)
    _fake_run_json(runs[4].run_dir(out), status="running", worker_pid=dead.pid, child_pid=dead.pid)
    statuses = [run_status(r.run_dir(out)) for r in runs]
    assert statuses == ["done", "failed", "diverged", "running", "stale", "pending"]
    # Another host's running run cannot be checked: it stays running.
    _fake_run_json(runs[4].run_dir(out), status="running", worker_pid=dead.pid, host="elsewhere")
    assert run_status(runs[4].run_dir(out)) == "running"
    summary = summarize(runs, out)
    assert summary.total["done"] == 1 and summary.n_failed == 2 and summary.n_remaining == 3
    assert exit_status(summary) == 2
    # ETA = remaining 3 runs x 10 s / 2 parallel.
    assert summary.eta_s(parallel=2) == pytest.approx(15.0)
    table = format_summary(summary, parallel=2)
    assert "ValueError: bad kwarg" in table and "remaining 3" in table and "ETA 0m15s" in table
    summary.counts[None]["failed"] = 10_000
    assert exit_status(summary) == MAX_EXIT_STATUS


def test_cli_list_dry_run_status(tmp_path, capsys):
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "smoke:" in listed and "demo:" in listed and "INVALID" not in listed
    suite_file = write_suite(tmp_path / "cli.yml", seeds=2)
    out = tmp_path / "out"
    assert main(["run", str(suite_file), "--out", str(out), "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert err.count("OMP_NUM_THREADS=1 MKL_NUM_THREADS=1") == 2 and "--seed 1" in err
    # A dry run writes each run's hyperparams.yml and command.txt (so the printed commands run), not run.json.
    run_dirs = [spec.run_dir(out) for spec in expand_grid(load_suite(suite_file))]
    assert all((d / "hyperparams.yml").is_file() and (d / "command.txt").is_file() for d in run_dirs)
    assert not any((d / "run.json").exists() for d in run_dirs)
    assert main(["status", str(suite_file), "--out", str(out)]) == 0
    assert "pending" in capsys.readouterr().out
    assert main(["run", str(write_suite(tmp_path / "bad.yml", colour=1)), "--out", str(out)]) == USAGE_ERROR
    assert "unknown key 'colour'" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------- slow
def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_done_run(run_dir: Path, n_timesteps: int = 200) -> dict[str, Any]:
    info = read_run_json(run_dir)
    assert info is not None and info["status"] == "done", (run_dir, info)
    assert set(info) >= RUN_JSON_KEYS
    assert info["wall_time_s"] > 0 and info["env_steps_per_s"] == pytest.approx(n_timesteps / info["wall_time_s"])
    assert info["versions"]["stable_baselines3"] and info["versions"]["torch"]
    zoo_run = run_dir / "logs" / info["algo"] / f"{info['task']}_1"
    assert sorted(p.name for p in (run_dir / "logs" / info["algo"]).iterdir()) == [f"{info['task']}_1"]
    evaluations = np.load(zoo_run / "evaluations.npz")
    assert evaluations["timesteps"].tolist() == [n_timesteps]
    assert (zoo_run / "0.monitor.csv").is_file()
    # The zoo's config.yml (an OrderedDict dump, not safe_load-able) records the divergence guard.
    assert DIVERGENCE_CALLBACK in (zoo_run / info["task"] / "config.yml").read_text()
    assert (zoo_run / info["task"] / "args.yml").is_file()
    hyperparams = yaml.safe_load((run_dir / "hyperparams.yml").read_text())
    assert list(hyperparams) == [info["task"]]
    assert (run_dir / "command.txt").read_text().strip() == info["command"]
    return info


@pytest.mark.slow
def test_local_end_to_end_bad_task_fails_cleanly_then_resume(tmp_path):
    """Two real runs and one with a bad task (an env kwarg Pendulum does not take) on 2 jobs; then resume."""
    suite_file = write_suite(
        tmp_path / "e2e.yml",
        tasks={"Pendulum-v1": None, "MountainCarContinuous-v0": {"overrides": {"env_kwargs": {"no_such_kwarg": 1}}}},
        seeds=[0, 1],
    )
    suite = load_suite(suite_file)
    out = tmp_path / "out"
    summary = run_suite(suite, out=out, jobs=2, use_tqdm=False)
    assert summary.total["done"] == 2 and summary.total["failed"] == 2 and exit_status(summary) == 2
    runs = {(r.task, r.seed): r for r in expand_grid(suite)}
    done = {seed: _check_done_run(runs[("Pendulum-v1", seed)].run_dir(out)) for seed in (0, 1)}
    # Same seed -> same result; different seeds -> different results.
    returns = {
        seed: np.load(runs[("Pendulum-v1", seed)].run_dir(out) / "logs/ddpg/Pendulum-v1_1/evaluations.npz")["results"]
        for seed in (0, 1)
    }
    assert not np.array_equal(returns[0], returns[1])
    bad = read_run_json(runs[("MountainCarContinuous-v0", 0)].run_dir(out))
    assert bad is not None and bad["status"] == "failed" and bad["returncode"] != 0
    assert "no_such_kwarg" in bad["error_tail"]
    # The copy-pasted command reproduces a run (same seed, same evaluation returns).
    command = (runs[("Pendulum-v1", 0)].run_dir(out) / "command.txt").read_text().strip()
    subprocess.run(command, shell=True, cwd=REPO_ROOT, check=True, capture_output=True)
    rerun = np.load(runs[("Pendulum-v1", 0)].run_dir(out) / "logs/ddpg/Pendulum-v1_2/evaluations.npz")["results"]
    np.testing.assert_array_equal(rerun, returns[0])
    (runs[("Pendulum-v1", 0)].run_dir(out) / "logs/ddpg/Pendulum-v1_2").rename(tmp_path / "rerun")
    # Resume: done runs are skipped (untouched), failed ones are redone (and fail again).
    summary = run_suite(suite, out=out, jobs=2, use_tqdm=False)
    assert summary.total["done"] == 2 and summary.total["failed"] == 2
    for seed in (0, 1):
        assert read_run_json(runs[("Pendulum-v1", seed)].run_dir(out)) == done[seed]
    again = read_run_json(runs[("MountainCarContinuous-v0", 0)].run_dir(out))
    assert again is not None and again["attempt"] == 2 and again["started"] > bad["started"]


@pytest.mark.slow
def test_kill_9_then_resume(tmp_path):
    """kill -9 the runner while the 2nd of 3 runs trains: its child dies, resume redoes only unfinished runs."""
    suite_file = write_suite(tmp_path / "kill.yml", seeds=3)
    out = tmp_path / "out"
    runner = subprocess.Popen(
        [sys.executable, "-m", "benchmarks", "run", str(suite_file), "--out", str(out), "--jobs", "1", "--no-progress"],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    runs = expand_grid(load_suite(suite_file))
    first, second = runs[0].run_dir(out), runs[1].run_dir(out)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        info = read_run_json(second)
        if run_status(first) == "done" and info is not None and info.get("child_pid"):
            break
        assert runner.poll() is None, "runner ended before it could be killed"
        time.sleep(0.2)
    else:
        pytest.fail("the first run did not finish in time")
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()
    first_info = read_run_json(first)
    first_eval = _sha(first / "logs/ddpg/Pendulum-v1_1/evaluations.npz")
    child_pid = read_run_json(second)["child_pid"]  # type: ignore[index]
    # PR_SET_PDEATHSIG: the train subprocess dies with the runner.
    for _ in range(100):
        if run_status(second) == "stale":
            break
        time.sleep(0.1)
    assert run_status(second) == "stale"
    assert not Path(f"/proc/{child_pid}").exists() or "Z" in Path(f"/proc/{child_pid}/stat").read_text().split()[2]
    assert run_status(runs[2].run_dir(out)) == "pending"

    summary = run_suite(suite_file, out=out, jobs=1, use_tqdm=False)
    assert summary.total["done"] == 3 and exit_status(summary) == 0
    # The finished run was not redone; its logs are intact; every run finished exactly once.
    assert read_run_json(first) == first_info
    assert _sha(first / "logs/ddpg/Pendulum-v1_1/evaluations.npz") == first_eval
    attempts = [_check_done_run(r.run_dir(out))["attempt"] for r in runs]
    assert attempts == [1, 2, 1]


@pytest.fixture(scope="session")
def local_ray(tmp_path_factory):
    ray = pytest.importorskip("ray")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=str(tmp_path_factory.mktemp("ray")))
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_backend(tmp_path, local_ray):
    suite_file = write_suite(tmp_path / "ray.yml", seeds=2)
    out = tmp_path / "out"
    summary = run_suite(suite_file, out=out, backend="ray", use_tqdm=False)
    assert summary.total["done"] == 2
    infos = [_check_done_run(r.run_dir(out)) for r in expand_grid(load_suite(suite_file))]
    # Executed by Ray workers, not by this process.
    assert all(info["worker_pid"] != os.getpid() for info in infos)


@pytest.mark.slow
def test_slurm_backend_submitit_local(tmp_path):
    pytest.importorskip("submitit")
    suite_file = write_suite(tmp_path / "slurm.yml", seeds=2)
    out = tmp_path / "out"
    summary = run_suite(
        suite_file, out=out, backend="slurm", slurm_cluster="local", time_min=10, partition="ignored", use_tqdm=False
    )
    assert summary.total["done"] == 2
    infos = [_check_done_run(r.run_dir(out)) for r in expand_grid(load_suite(suite_file))]
    assert all(info["worker_pid"] != os.getpid() for info in infos)
    assert (out / "slurm" / ".submitit").is_dir()


def test_execute_run_start_failure_is_recorded(tmp_path):
    """A train module that does not exist: the run is failed with the error, not an exception of the runner."""
    suite = load_suite(write_suite(tmp_path / "s.yml", train_module="no_such_module_xyz"))
    (spec,) = expand_grid(suite)
    info = execute_run(spec, tmp_path / "out")
    assert info["status"] == "failed" and "no_such_module_xyz" in info["error_tail"]
    assert json.loads((spec.run_dir(tmp_path / "out") / "run.json").read_text())["status"] == "failed"


def test_execute_run_leaves_a_run_of_another_live_runner_alone(tmp_path):
    suite = load_suite(write_suite(tmp_path / "s.yml"))
    (spec,) = expand_grid(suite)
    run_dir = spec.run_dir(tmp_path / "out")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _fake_run_json(run_dir, status="running", worker_pid=other.pid, child_pid=other.pid)
        before = read_run_json(run_dir)
        info = execute_run(spec, tmp_path / "out")
        assert info["skipped"] and info["status"] == "running"
        assert read_run_json(run_dir) == before and not (run_dir / "hyperparams.yml").exists()
    finally:
        other.kill()
        other.wait()


@pytest.mark.slow
def test_diverging_run_is_marked_diverged(tmp_path):
    """A real run made to blow up (Adam with learning rate 1e30): the guard stops it, the runner marks it diverged."""
    suite_file = write_suite(tmp_path / "nan.yml", overrides={**TINY_OVERRIDES, "learning_rate": 1e30}, n_timesteps=400)
    out = tmp_path / "out"
    summary = run_suite(suite_file, out=out, use_tqdm=False)
    assert summary.total["diverged"] == 1 and exit_status(summary) == 1
    (spec,) = expand_grid(load_suite(suite_file))
    info = read_run_json(spec.run_dir(out))
    assert info is not None and info["status"] == "diverged" and info["returncode"] == 0
    marker = json.loads((spec.run_dir(out) / "diverged.json").read_text())
    # Learning starts at step 100 and the guard checks every 50 steps: stopped at the first checks after that.
    assert 100 < marker["num_timesteps"] < 400
    assert info["error_tail"].startswith(f"diverged at step {marker['num_timesteps']}")
    # A resumed grid does not redo a diverged run (same seed, same divergence) unless asked to.
    assert run_suite(suite_file, out=out, use_tqdm=False).total["diverged"] == 1
    assert read_run_json(spec.run_dir(out)) == info


def _write_evaluations(path: Path, timesteps: list[int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(timesteps)
    np.savez(path, timesteps=np.array(timesteps), results=np.zeros((n, 2)), ep_lengths=np.ones((n, 2), dtype=int))
    return path


def test_evaluation_completeness_check(tmp_path):
    """A SIGINT-truncated zoo run exits 0 with an evaluations.npz: only its last evaluation step tells it apart."""
    complete = _write_evaluations(tmp_path / "complete.npz", [100, 200, 300, 400])
    truncated = _write_evaluations(tmp_path / "truncated.npz", [100, 200])
    empty = _write_evaluations(tmp_path / "empty.npz", [])
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(complete.read_bytes()[:40])
    no_key = tmp_path / "no_key.npz"
    np.savez(no_key, results=np.zeros(3))
    assert last_evaluation_step(complete) == 400 and last_evaluation_step(truncated) == 200
    for bad in (empty, corrupt, no_key, tmp_path / "missing.npz", None):
        assert last_evaluation_step(bad) is None, bad
    # n_timesteps 450, eval_freq 100: the last evaluation is at 400 >= 350.
    assert evaluation_complete(400, 450, 100) and evaluation_complete(400, 400, 100)
    assert not evaluation_complete(200, 450, 100) and not evaluation_complete(None, 450, 100)
    # 4 envs, eval_freq 10: the zoo evaluates every 10 // 4 = 2 vec steps = 8 env steps.
    assert evaluation_complete(96, 100, 10, n_envs=4) and not evaluation_complete(88, 100, 10, n_envs=4)

    assert decide_status(0, complete, 400, 400, 100) == ("done", None)
    status, reason = decide_status(0, truncated, 200, 400, 100)
    assert status == "failed" and reason is not None and "incomplete: last evaluation at step 200 of 400" in reason
    status, reason = decide_status(0, corrupt, None, 400, 100)
    assert status == "failed" and reason is not None and "unreadable" in reason
    assert decide_status(0, None, None, 400, 100) == ("failed", "exit status 0 but no evaluations.npz")
    assert decide_status(1, complete, 400, 400, 100) == ("failed", "exit status 1")
    assert decide_status(-9, complete, 400, 400, 100) == ("failed", "killed by signal 9 (SIGKILL)")


def test_execute_run_marks_an_interrupted_run_failed(tmp_path):
    """A fake train module that exits 0 after evaluating only part of the budget (like the zoo after SIGINT)."""
    fake = tmp_path / "fake_train_sigint.py"
    fake.write_text(
        "import argparse, os, numpy as np\n"
        "p = argparse.ArgumentParser()\n"
        "p.add_argument('--algo'); p.add_argument('--env'); p.add_argument('-f')\n"
        "p.add_argument('-n', type=int); p.add_argument('--eval-freq', type=int)\n"
        "a, _ = p.parse_known_args()\n"
        "d = os.path.join(a.f, a.algo, a.env + '_1'); os.makedirs(d)\n"
        "steps = int(os.environ['FAKE_LAST_STEP'])\n"
        "np.savez(os.path.join(d, 'evaluations.npz'), timesteps=np.arange(a.eval_freq, steps + 1, a.eval_freq))\n"
    )
    suite = load_suite(write_suite(tmp_path / "s.yml", train_module="fake_train_sigint", n_timesteps=1000, eval_freq=100))
    (spec,) = expand_grid(suite)
    assert (spec.n_timesteps, spec.eval_freq) == (1000, 100)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(tmp_path)
    try:
        os.environ["FAKE_LAST_STEP"] = "200"
        info = execute_run(spec, tmp_path / "out")
        assert info["status"] == "failed" and info["returncode"] == 0, info
        assert "incomplete: last evaluation at step 200 of 1000" in info["error_tail"]
        assert info["env_steps_per_s"] == pytest.approx(200 / info["wall_time_s"])
        assert run_status(spec.run_dir(tmp_path / "out")) == "failed"
        os.environ["FAKE_LAST_STEP"] = str(spec.n_timesteps)
        info = execute_run(spec, tmp_path / "out2")
        assert info["status"] == "done" and info["error_tail"] is None, info
    finally:
        os.environ.pop("FAKE_LAST_STEP", None)
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


# ------------------------------------------------------------------------------------- portable run folders
FAKE_TRAIN = """
import argparse, json, os, sys, time
import numpy as np, yaml
p = argparse.ArgumentParser()
p.add_argument("--algo"); p.add_argument("--env"); p.add_argument("-f"); p.add_argument("-conf")
p.add_argument("-n", type=int); p.add_argument("--eval-freq", type=int)
a, _ = p.parse_known_args()
# Every path of the command and of hyperparams.yml must work from the working folder (the repository root).
hyperparams = yaml.safe_load(open(a.conf))[a.env]
marker = [c for c in hyperparams["callback"] if "sb3_ddpg_ext.divergence.DivergenceGuardCallback" in c][0]
marker = marker["sb3_ddpg_ext.divergence.DivergenceGuardCallback"]["marker_path"]
if not os.path.isdir(os.path.dirname(marker)):
    sys.exit("marker folder not found: " + marker)
if os.environ.get("FAKE_TRAIN_LOG"):
    with open(os.environ["FAKE_TRAIN_LOG"], "a") as f:
        f.write(json.dumps({"pid": os.getpid(), "f": a.f, "cwd": os.getcwd()}) + "\\n")
while os.environ.get("FAKE_TRAIN_WAIT") and not os.path.exists(os.environ["FAKE_TRAIN_WAIT"]):
    time.sleep(0.05)
base = os.path.join(a.f, a.algo)
i = 1
while os.path.exists(os.path.join(base, a.env + "_" + str(i))):
    i += 1
d = os.path.join(base, a.env + "_" + str(i))
os.makedirs(os.path.join(d, a.env))
with open(os.path.join(d, a.env, "args.yml"), "w") as f:
    yaml.safe_dump({"conf_file": a.conf, "log_folder": a.f}, f)
np.savez(os.path.join(d, "evaluations.npz"), timesteps=np.array([a.n]), results=np.zeros((1, 1)),
         ep_lengths=np.ones((1, 1), dtype=int))
"""


@pytest.fixture
def fake_repo(tmp_path, monkeypatch):
    """A repository root holding the fake train module ``fake_train`` and ``results`` -> a folder outside it."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "fake_train.py").write_text(FAKE_TRAIN)
    (tmp_path / "elsewhere").mkdir()
    (repo / "results").symlink_to(tmp_path / "elsewhere")
    monkeypatch.setattr(runner_module, "work_root", lambda: repo)
    return repo


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_command_path_is_repo_relative_inside_the_repo_only(fake_repo, tmp_path, monkeypatch):
    inside = fake_repo / "results" / "s" / "seed_0"
    assert command_path(inside) == Path("results/s/seed_0")  # through the symlink: still inside, lexically
    assert command_path(fake_repo / "runs" / ".." / "runs2") == Path("runs2")
    assert command_path(fake_repo) == Path(".")
    # Outside: absolute, also for a sibling whose name starts with the root's name, and for the symlink's target.
    assert command_path(tmp_path / "repo2" / "x") == tmp_path / "repo2" / "x"
    assert command_path(tmp_path / "elsewhere" / "s") == tmp_path / "elsewhere" / "s"
    monkeypatch.chdir(fake_repo)
    assert command_path("results/s") == Path("results/s")
    # run_dir keeps the symlink (no resolve()).
    (spec,) = expand_grid(load_suite(write_suite(tmp_path / "s.yml")))
    assert spec.run_dir("results") == fake_repo / "results" / "s" / "Pendulum-v1" / "baseline" / "seed_0"


def test_run_folder_inside_the_repo_holds_no_machine_paths(fake_repo, tmp_path, monkeypatch):
    """Run folder under a ``results`` symlink in the repository: every path is repo-relative and command.txt re-runs."""
    suite = load_suite(write_suite(tmp_path / "s.yml", train_module="fake_train"))
    (spec,) = expand_grid(suite)
    monkeypatch.chdir(fake_repo)
    info = execute_run(spec, "results")
    assert info["status"] == "done", info
    run_dir = tmp_path / "elsewhere" / "s" / "Pendulum-v1" / "baseline" / "seed_0"
    prefix = "results/s/Pendulum-v1/baseline/seed_0"
    argv, _ = build_command(spec, spec.run_dir("results"))
    assert argv[argv.index("-conf") + 1] == f"{prefix}/hyperparams.yml" and argv[argv.index("-f") + 1] == f"{prefix}/logs"
    guard = yaml.safe_load((run_dir / "hyperparams.yml").read_text())["Pendulum-v1"]["callback"][-1]
    assert guard[DIVERGENCE_CALLBACK]["marker_path"] == f"{prefix}/diverged.json"
    command = (run_dir / "command.txt").read_text().strip()
    assert command == info["command"] and f"-f {prefix}/logs" in command
    for name in ("command.txt", "hyperparams.yml", "run.json", "logs/ddpg/Pendulum-v1_1/Pendulum-v1/args.yml"):
        text = (run_dir / name).read_text()
        assert str(tmp_path) not in text and str(REPO_ROOT) not in text, name
    recorded = read_run_json(run_dir)
    assert recorded is not None
    assert not [s for s in _strings(recorded) if s.startswith("/") or str(tmp_path) in s]
    # command.txt re-runs the run from the repository root (the fake module picks the next zoo log id).
    subprocess.run(command, shell=True, cwd=fake_repo, check=True, capture_output=True)
    assert (run_dir / "logs/ddpg/Pendulum-v1_2/evaluations.npz").is_file()


def test_run_folder_outside_the_repo_keeps_absolute_paths(fake_repo, tmp_path):
    (spec,) = expand_grid(load_suite(write_suite(tmp_path / "s.yml")))
    run_dir = spec.run_dir(tmp_path / "out")
    argv, _ = build_command(spec, run_dir)
    assert argv[argv.index("-f") + 1] == str(run_dir / "logs") and run_dir.is_absolute()
    marker = run_hyperparams(spec, run_dir)["callback"][-1][DIVERGENCE_CALLBACK]["marker_path"]
    assert marker == str(run_dir / "diverged.json")


def test_pid_runs_in_with_repo_relative_command(fake_repo, tmp_path):
    """The pid-reuse guard recognises a train subprocess whose command holds a repo-relative run folder."""
    (spec,) = expand_grid(load_suite(write_suite(tmp_path / "s.yml", seeds=[1])))
    run_dir = spec.run_dir(fake_repo / "results")
    logs = str(command_path(run_dir) / "logs")
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)", "-f"]
    procs = [
        subprocess.Popen([*sleeper, logs], cwd=fake_repo),  # ours
        subprocess.Popen([*sleeper, logs], cwd=tmp_path),  # same relative path, another working folder
        subprocess.Popen([*sleeper, logs.replace("seed_1", "seed_10")], cwd=fake_repo),  # another run
    ]
    try:
        time.sleep(0.2)
        assert [_pid_runs_in(p.pid, run_dir) for p in procs] == [True, False, False]
        outside = spec.run_dir(tmp_path / "out")
        absolute = subprocess.Popen([*sleeper, str(outside / "logs")], cwd=tmp_path)
        procs.append(absolute)
        time.sleep(0.2)
        assert _pid_runs_in(absolute.pid, outside) and not _pid_runs_in(absolute.pid, run_dir)
    finally:
        for p in procs:
            p.kill()
            p.wait()


@pytest.mark.slow
def test_real_zoo_run_inside_the_repo_records_relative_paths(fake_repo, tmp_path, monkeypatch):
    """The zoo's own args.yml, config.yml and command.txt hold only the repo-relative paths of the command."""
    (spec,) = expand_grid(load_suite(write_suite(tmp_path / "zoo.yml")))
    monkeypatch.chdir(fake_repo)
    info = execute_run(spec, "results")
    run_dir = tmp_path / "elsewhere" / "zoo" / "Pendulum-v1" / "baseline" / "seed_0"
    assert info["status"] == "done", info
    zoo_dir = run_dir / "logs/ddpg/Pendulum-v1_1/Pendulum-v1"
    prefix = "results/zoo/Pendulum-v1/baseline/seed_0"
    for name in ("args.yml", "config.yml", "command.txt"):
        text = (zoo_dir / name).read_text()
        assert str(tmp_path) not in text and sys.prefix not in text and str(REPO_ROOT) not in text, (name, text)
    assert f"{prefix}/hyperparams.yml" in (zoo_dir / "args.yml").read_text()
    assert f"marker_path: {prefix}/diverged.json" in (zoo_dir / "config.yml").read_text()
    assert (zoo_dir / "command.txt").read_text().startswith("python")


def test_source_checkout_is_the_working_root():
    # From the repository (also under pip install -e) runs execute in the repository root; only a wheel install
    # (SOURCE_ROOT None, see tests/test_wheel_install.py) runs them in the current folder.
    assert SOURCE_ROOT == REPO_ROOT
    assert runner_module.work_root() == REPO_ROOT


def test_cli_output_into_a_closed_pipe_exits_quietly():
    """`python -m benchmarks list | grep -q ...`: when the reader has gone, no traceback, exit status 1."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks", "list"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr
