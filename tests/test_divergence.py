"""Tests of sb3_ddpg_ext.divergence.DivergenceGuardCallback on a real (tiny) DDPG on Pendulum-v1."""

import json
import math

import numpy as np
import pytest
import torch as th
from stable_baselines3 import DDPG
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from sb3_ddpg_ext.divergence import DivergenceGuardCallback, read_divergence_marker

th.set_num_threads(1)


def _model(seed: int = 0) -> DDPG:
    return DDPG(
        "MlpPolicy",
        "Pendulum-v1",
        learning_starts=20,
        buffer_size=1000,
        batch_size=16,
        policy_kwargs={"net_arch": [32, 32]},
        seed=seed,
        device="cpu",
    )


class _Corrupt(BaseCallback):
    """Set the weights of one module to NaN once ``at_step`` is reached."""

    def __init__(self, at_step: int, which: str) -> None:
        super().__init__()
        self.at_step = at_step
        self.which = which
        self.done = False

    def _on_step(self) -> bool:
        if not self.done and self.num_timesteps >= self.at_step:
            module = getattr(self.model, self.which)
            with th.no_grad():
                for p in module.parameters():
                    p.fill_(float("nan"))
            self.done = True
        return True


def test_invalid_arguments():
    with pytest.raises(ValueError, match="check_freq"):
        DivergenceGuardCallback(check_freq=0)
    with pytest.raises(ValueError, match="probe_size"):
        DivergenceGuardCallback(probe_size=-1)
    with pytest.raises(ValueError, match="max_abs_q"):
        DivergenceGuardCallback(max_abs_q=float("inf"))


@pytest.mark.parametrize("which", ["actor", "critic"])
def test_nan_weights_stop_training_and_write_marker(tmp_path, which):
    marker = tmp_path / "sub" / "diverged.json"
    model = _model()
    guard = DivergenceGuardCallback(check_freq=10, marker_path=marker)
    model.learn(300, callback=CallbackList([_Corrupt(at_step=50, which=which), guard]))
    # Corrupted at step 50, checked every 10 steps: stopped at the first check after the corruption.
    assert guard.diverged
    assert 50 <= model.num_timesteps <= 60
    payload = read_divergence_marker(marker)
    assert payload is not None and payload["diverged"] is True
    assert payload["num_timesteps"] == model.num_timesteps
    assert "policy." in payload["reason"] and which in payload["reason"]


def test_healthy_run_is_not_stopped_and_unchanged(tmp_path):
    """The guard consumes no randomness: a guarded run equals an unguarded one with the same seed."""
    marker = tmp_path / "diverged.json"
    # Build and train one after the other: SB3 seeds the global RNGs at construction.
    guarded = _model(seed=3)
    guard = DivergenceGuardCallback(check_freq=5, marker_path=marker)
    guarded.learn(120, callback=guard)
    plain = _model(seed=3)
    plain.learn(120)
    assert not guard.diverged and not marker.exists()
    assert guarded.num_timesteps == 120
    for (name, a), (_, b) in zip(guarded.policy.named_parameters(), plain.policy.named_parameters()):
        assert th.equal(a, b), name


def test_individual_checks():
    model = _model()
    model.learn(60)
    guard = DivergenceGuardCallback(probe_size=8)
    guard.init_callback(model)
    assert guard.check() is None
    # Loss check: a NaN value logged under a key containing "loss".
    model.logger.record("train/critic_loss", float("nan"))
    assert "train/critic_loss" in guard._check_losses()
    model.logger.record("train/critic_loss", 1.0)
    assert guard._check_losses() is None
    # Q-value probe: an infinite output bias of the critic makes every Q infinite.
    with th.no_grad():
        model.critic.qf0[-1].bias.fill_(float("inf"))
    assert guard._check_q_values() == "non-finite Q-value in the probe"
    # A finite but huge Q counts only when max_abs_q is set.
    with th.no_grad():
        model.critic.qf0[-1].bias.fill_(1e12)
    assert guard._check_q_values() is None
    bounded = DivergenceGuardCallback(max_abs_q=1e9)
    bounded.init_callback(model)
    assert bounded._check_q_values().startswith("|Q|")


def test_marker_defaults_to_logger_dir(tmp_path):
    from stable_baselines3.common.logger import configure

    model = _model()
    model.set_logger(configure(str(tmp_path), ["csv"]))
    guard = DivergenceGuardCallback(check_freq=1)
    model.learn(40, callback=CallbackList([_Corrupt(at_step=30, which="actor"), guard]))
    payload = json.loads((tmp_path / "diverged.json").read_text())
    assert payload["num_timesteps"] == 30
    assert math.isfinite(payload["time"]) and not np.isnan(payload["time"])
