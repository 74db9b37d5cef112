"""Normalisation table: coverage of the project's tasks, lookup rules, and the measured random scores."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from analysis.random_scores import measure_random_score
from analysis.scores import SCORE_TABLE, SOLVED_THRESHOLDS, lookup_scores, normalize, score_table_frame


def test_table_covers_every_task_of_the_hyperparams(repo_root):
    tasks = list(yaml.safe_load((repo_root / "hyperparams" / "ddpg.yml").read_text()))
    assert tasks
    missing = [t for t in tasks if t not in SCORE_TABLE]
    assert not missing, f"no random/reference score for {missing}"
    for t in tasks:
        s = SCORE_TABLE[t]
        assert s.reference > s.random, t
        assert s.random_source and s.reference_source


def test_solved_thresholds_are_the_env_specs_reward_thresholds(repo_root):
    """Every task of the hyperparams whose gymnasium spec has a ``reward_threshold`` is in the table with that value;
    the others (Pendulum-v1, Walker2d-v5, Humanoid-v5) are not."""
    gymnasium = pytest.importorskip("gymnasium")
    pytest.importorskip("pybullet_envs_gymnasium")  # registers the *BulletEnv-v0 ids
    tasks = list(yaml.safe_load((repo_root / "hyperparams" / "ddpg.yml").read_text()))
    specs = {t: gymnasium.spec(t).reward_threshold for t in tasks}
    assert {t: float(v) for t, v in specs.items() if v is not None} == SOLVED_THRESHOLDS
    assert {t for t, v in specs.items() if v is None} == {"Pendulum-v1", "Walker2d-v5", "Humanoid-v5"}


def test_lookup_falls_back_to_another_version_and_says_so():
    s = lookup_scores("HalfCheetah-v1")
    assert s is not None and s.reference == 9636.95 and "HalfCheetah-v5" in s.note
    assert lookup_scores("HalfCheetah-v5").note == ""
    assert lookup_scores("NoSuchEnv-v0") is None
    df = score_table_frame(["Hopper-v3", "NoSuchEnv-v0"])
    assert df.loc[1, "note"] == "not in the score table"


def test_normalize():
    np.testing.assert_allclose(normalize([0.0, 5.0, 10.0], random=0.0, reference=10.0), [0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="equals random"):
        normalize([1.0], 3.0, 3.0)


def test_measured_random_score_is_reproducible():
    """The table's Pendulum-v1 random score is what the documented command measures (seed 0, 10 episodes)."""
    r = measure_random_score("Pendulum-v1", n_episodes=10, seed=0)
    assert r["mean"] == pytest.approx(SCORE_TABLE["Pendulum-v1"].random, abs=1e-3)
    assert r["sem"] == pytest.approx(SCORE_TABLE["Pendulum-v1"].random_sem, abs=1e-3)
    with pytest.raises(ValueError, match="n_episodes"):
        measure_random_score("Pendulum-v1", n_episodes=0)
