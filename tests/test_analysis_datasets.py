"""The analysis on the two external data sets in ../shared/datasets (read as they are)."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.align import align_runs, window_means
from analysis.load import load_curve_arrays, load_runs
from analysis.metrics import max_of_mean

# TD3 paper (Fujimoto et al. 2018, arXiv:1802.09477), Table 1, TD3 column: "max average return over 10 trials".
TD3_TABLE1 = {
    "HalfCheetah-v1": 9636.95,
    "Hopper-v1": 3564.07,
    "Walker2d-v1": 4682.82,
    "Ant-v1": 4372.44,
    "InvertedPendulum-v1": 1000.00,
    "InvertedDoublePendulum-v1": 9337.47,
}


@pytest.fixture(scope="module")
def td3_curves(shared_datasets):
    evals, runs = load_curve_arrays(shared_datasets / "td3-paper-curves", step=5000)
    return evals, runs


@pytest.mark.parametrize("task", sorted(TD3_TABLE1))
def test_td3_paper_table1_reproduced(td3_curves, task):
    evals, _ = td3_curves
    _, steps, curves = align_runs(evals[evals["task"] == task]).task_matrix(task)
    assert curves.shape == (10, 201)  # 10 seeds x 201 evaluations
    assert steps[0] == 0 and steps[-1] == 1_000_000 and np.all(np.diff(steps) == 5000)
    # printed with two decimals: agreement to the printed precision
    assert round(float(max_of_mean(curves)), 2) == pytest.approx(TD3_TABLE1[task], abs=1e-9)


def test_td3_curves_inventory(td3_curves):
    evals, runs = td3_curves
    assert runs["included"].all()
    assert runs.groupby("task")["seed"].nunique().to_dict() == dict.fromkeys([*TD3_TABLE1, "Reacher-v1"], 10)
    assert set(runs["variant"]) == {"TD3"}
    # Reacher: the paper prints -3.60 but the repository's curves give -3.70: documented, not asserted equal
    _, _, reacher = align_runs(evals[evals["task"] == "Reacher-v1"]).task_matrix("Reacher-v1")
    assert float(max_of_mean(reacher)) == pytest.approx(-3.6985, abs=1e-3)


# (algo, env) -> (n evaluations, first step, last step, episodes per evaluation, training episodes in the monitor)
ZOO_EXPECTED = {
    ("ddpg", "HalfCheetahBulletEnv-v0"): (100, 10000, 1_000_000, 10, 1000),
    ("ddpg", "Pendulum-v1"): (2, 10000, 20000, 10, 100),
    ("ddpg", "LunarLanderContinuous-v2"): (30, 10000, 300000, 10, 881),
    ("ddpg", "HopperBulletEnv-v0"): (100, 10000, 1_000_000, 10, 6593),
    ("td3", "Hopper-v3"): (40, 25000, 1_000_000, 20, 2776),
    ("td3", "Swimmer-v3"): (40, 25000, 1_000_000, 5, 1000),
    ("td3", "BipedalWalkerHardcore-v3"): (200, 50000, 10_000_000, 10, 5544),
    ("td3", "Humanoid-v3"): (80, 25000, 2_000_000, 20, 5479),
}


@pytest.fixture(scope="module")
def zoo(shared_datasets):
    return load_runs(shared_datasets / "rl-trained-agents")


def test_zoo_logs_tasks(zoo):
    runs = zoo.runs
    assert len(runs) == 25 and runs["included"].all()
    assert sorted(runs.loc[runs["variant"] == "ddpg", "task"]) == sorted(
        [
            "AntBulletEnv-v0",
            "BipedalWalker-v3",
            "HalfCheetahBulletEnv-v0",
            "HopperBulletEnv-v0",
            "LunarLanderContinuous-v2",
            "MountainCarContinuous-v0",
            "Pendulum-v1",
            "ReacherBulletEnv-v0",
            "Walker2DBulletEnv-v0",
        ]
    )
    assert (runs["variant"] == "td3").sum() == 16
    assert len(zoo.inventory.entries) == 0  # nothing odd in these logs


@pytest.mark.parametrize(("algo", "env"), sorted(ZOO_EXPECTED))
def test_zoo_logs_steps_and_episodes(zoo, algo, env):
    n_evals, first, last, n_ep_eval, n_train_ep = ZOO_EXPECTED[(algo, env)]
    ev = zoo.evals[(zoo.evals["variant"] == algo) & (zoo.evals["task"] == env)]
    assert len(ev) == n_evals
    assert ev["timesteps"].iloc[0] == first and ev["timesteps"].iloc[-1] == last
    assert (ev["eval_n_episodes"] == n_ep_eval).all()
    assert all(len(r) == n_ep_eval for r in ev["eval_returns"])
    np.testing.assert_allclose([np.mean(r) for r in ev["eval_returns"]], ev["eval_return_mean"])
    ep = zoo.episodes[(zoo.episodes["variant"] == algo) & (zoo.episodes["task"] == env)]
    assert len(ep) == n_train_ep
    assert np.all(np.diff(ep["timesteps"].to_numpy()) > 0)


def test_zoo_config_and_seed_read(zoo):
    row = zoo.runs[(zoo.runs["variant"] == "ddpg") & (zoo.runs["task"] == "HalfCheetahBulletEnv-v0")].iloc[0]
    assert row["seed"] == 3786786045  # args.yml
    assert row["config"]["noise_type"] == "normal" and row["config"]["learning_rate"] == 0.001
    assert row["config"]["train_freq"] == [1, "episode"]
    assert row["n_timesteps"] == 1_000_000


def test_window_means_read_a_curve_at_an_earlier_step(td3_curves):
    """The TD3 paper's 1M-step curves read at 100k: each seed's mean of its evaluations at 80k..100k (indices 16-20
    of the 5k-spaced array), the window the study's final return uses."""
    evals, _ = td3_curves
    hopper = evals[evals["task"] == "Hopper-v1"]
    got = window_means(hopper, 100_000, 25_000).sort_values("seed")
    assert len(got) == 10 and (got["n_evals"] == 5).all()
    assert (got["first_step"] == 80_000).all() and (got["last_step"] == 100_000).all()
    for seed, mean in zip(got["seed"], got["mean"]):
        curve = hopper[hopper["seed"] == seed].sort_values("timesteps")["eval_return_mean"].to_numpy()
        assert mean == pytest.approx(curve[16:21].mean(), rel=1e-12)
    # a run that stops before the step is left out, never read at another step
    short = hopper[~((hopper["seed"] == 3) & (hopper["timesteps"] > 90_000))]
    assert 3 not in set(window_means(short, 100_000, 25_000)["seed"])
    with pytest.raises(ValueError, match="window must be > 0"):
        window_means(hopper, 100_000, 0)
