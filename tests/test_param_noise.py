"""Tests of adaptive parameter-space noise: ``sb3_ddpg_ext.param_noise`` and ``ParameterNoiseCallback``."""

from __future__ import annotations

import json
import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import yaml
from stable_baselines3 import DDPG, SAC, TD3
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.noise import ActionNoise, VectorizedActionNoise
from stable_baselines3.common.vec_env import DummyVecEnv
from torch import nn

from sb3_ddpg_ext.callbacks import PARAM_NOISE_STATE_ATTR, ParameterNoiseCallback
from sb3_ddpg_ext.param_noise import (
    AdaptiveParamNoiseSpec,
    action_distance,
    is_layer_norm_param,
    make_generator,
    perturb,
    perturb_into,
    perturbable_parameters,
)

SIGMA = 0.3
TINY_NET: dict[str, Any] = {"net_arch": [16, 16]}
# Small nets and buffers (a 1e6 buffer takes seconds to allocate) keep these tests fast.
FAST: dict[str, Any] = {"policy_kwargs": TINY_NET, "buffer_size": 1000}


def ln_net(seed: int = 0, obs_dim: int = 20, act_dim: int = 3) -> nn.Sequential:
    """Dense -> LayerNorm -> ReLU hidden layers and a tanh output, like a LayerNorm DDPG actor."""
    th.manual_seed(seed)
    net = nn.Sequential(
        nn.Linear(obs_dim, 50),
        nn.LayerNorm(50),
        nn.ReLU(),
        nn.Linear(50, 30),
        nn.LayerNorm(30),
        nn.ReLU(),
        nn.Linear(30, act_dim),
        nn.Tanh(),
    )
    with th.no_grad():  # non-trivial LayerNorm parameters, so "untouched" is not "still 1 and 0"
        for module in net:
            if isinstance(module, nn.LayerNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return net


def diffs(original: nn.Module, perturbed: nn.Module) -> dict[str, th.Tensor]:
    orig = dict(original.named_parameters())
    return {name: (param - orig[name]).detach() for name, param in perturbed.named_parameters()}


# ---------------------------------------------------------------------------- AdaptiveParamNoiseSpec
def test_spec_adapt_rule() -> None:
    spec = AdaptiveParamNoiseSpec(initial_stddev=0.2, desired_action_stddev=0.1, adoption_coefficient=1.01)
    assert spec.current_stddev == 0.2
    assert spec.adapt(0.15) == pytest.approx(0.2 / 1.01)  # distance > delta -> decrease
    assert spec.adapt(0.05) == pytest.approx(0.2)  # distance <= delta -> increase
    assert spec.adapt(0.1) == pytest.approx(0.2 * 1.01)  # equality increases, as baselines (`>` test)
    assert spec.get_stats() == {"param_noise_stddev": spec.current_stddev}


@pytest.mark.parametrize(
    ("kwargs", "culprit"),
    [
        ({"initial_stddev": 0.0}, "initial_stddev"),
        ({"desired_action_stddev": -1.0}, "desired_action_stddev"),
        ({"adoption_coefficient": 1.0}, "adoption_coefficient"),
        ({"initial_stddev": float("nan")}, "initial_stddev"),
    ],
)
def test_spec_bad_input(kwargs: dict[str, float], culprit: str) -> None:
    with pytest.raises(ValueError, match=culprit):
        AdaptiveParamNoiseSpec(**kwargs)


def test_spec_bad_distance() -> None:
    with pytest.raises(ValueError, match="distance"):
        AdaptiveParamNoiseSpec().adapt(float("nan"))


# ---------------------------------------------------------------------------- perturb
def test_layer_norm_params_detected() -> None:
    net = ln_net()
    names = [name for name, _ in perturbable_parameters(net)]
    assert names == ["0.weight", "0.bias", "3.weight", "3.bias", "6.weight", "6.bias"]
    assert is_layer_norm_param(net, "1.weight") and is_layer_norm_param(net, "4.bias")
    assert not is_layer_norm_param(net, "6.weight")
    with pytest.raises(ValueError, match="nope"):
        is_layer_norm_param(net, "nope.weight")


def test_per_element_statistics_and_untouched() -> None:
    net = ln_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    perturbed = perturb(net, SIGMA, "per_element", generator=make_generator(1))
    # Original untouched, bit for bit; the copy shares no storage with it.
    for key, value in net.state_dict().items():
        assert th.equal(value, before[key]), key
    orig_ptrs = {p.data_ptr() for p in net.parameters()}
    assert not orig_ptrs & {p.data_ptr() for p in perturbed.parameters()}
    d = diffs(net, perturbed)
    # LayerNorm gains and biases untouched.
    for name in ("1.weight", "1.bias", "4.weight", "4.bias"):
        assert th.equal(d[name], th.zeros_like(d[name])), name
    values = th.cat([d[name].flatten() for name, _ in perturbable_parameters(net)]).double()
    n = values.numel()  # 20*50+50+50*30+30+30*3+3 = 2673 independent N(0, sigma^2) draws
    assert n == 2673
    # 5 standard errors: SE(mean) = sigma/sqrt(n); SE(sample std) ~= sigma/sqrt(2n) for a Gaussian.
    assert abs(values.mean().item()) < 5 * SIGMA / math.sqrt(n)
    assert abs(values.std().item() - SIGMA) < 5 * SIGMA / math.sqrt(2 * n)
    # Independent per element: (almost surely) all distinct.
    assert th.unique(values).numel() == n


@pytest.mark.parametrize("sampling", ["per_tensor", "single"])
def test_naive_modes_share_one_value(sampling: str) -> None:
    net = ln_net()
    target = perturb(net, SIGMA, sampling, generator=make_generator(0))  # type: ignore[arg-type]
    generator = make_generator(2)
    names = [name for name, _ in perturbable_parameters(net)]
    draws = []
    n_draws = 400
    for _ in range(n_draws):
        perturb_into(net, target, SIGMA, sampling, generator)  # type: ignore[arg-type]
        d = diffs(net, target)
        per_tensor = []
        for name in names:
            # One shared value per tensor: every element has the same offset (up to float rounding).
            assert th.allclose(d[name], d[name].flatten()[0].expand_as(d[name]), atol=1e-6), name
            per_tensor.append(d[name].flatten()[0].item())
        for name in ("1.weight", "1.bias", "4.weight", "4.bias"):
            assert th.equal(d[name], th.zeros_like(d[name]))
        draws.append(per_tensor)
    values = np.asarray(draws)  # (n_draws, n_tensors)
    if sampling == "single":
        # One value for the whole network.
        assert np.allclose(values, values[:, :1], atol=1e-6)
        samples = values[:, 0]
    else:
        # Different tensors get different values.
        assert np.all(np.abs(values[:, 0] - values[:, 1]) > 0)
        samples = values.ravel()
    n = samples.size
    # 5 standard errors of the mean and of the sample std of n i.i.d. N(0, sigma^2) draws.
    assert abs(samples.mean()) < 5 * SIGMA / math.sqrt(n)
    assert abs(samples.std(ddof=1) - SIGMA) < 5 * SIGMA / math.sqrt(2 * n)


def test_perturb_seeded_and_frozen_params() -> None:
    net = ln_net()
    a = perturb(net, SIGMA, generator=make_generator(7))
    b = perturb(net, SIGMA, generator=make_generator(7))
    c = perturb(net, SIGMA, generator=make_generator(8))
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(th.equal(sa[k], sb[k]) for k in sa)
    assert not th.equal(sa["0.weight"], sc["0.weight"])
    # Frozen (requires_grad=False) parameters are not perturbed.
    net[6].weight.requires_grad_(False)
    d = diffs(net, perturb(net, SIGMA, generator=make_generator(7)))
    assert th.equal(d["6.weight"], th.zeros_like(d["6.weight"]))
    assert d["6.bias"].abs().sum() > 0


def test_perturb_bad_input() -> None:
    with pytest.raises(ValueError, match="sampling"):
        perturb(ln_net(), SIGMA, "per_layer")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stddev"):
        perturb(ln_net(), -1.0)
    with pytest.raises(ValueError, match="same parameters"):
        perturb_into(ln_net(), nn.Linear(2, 2), SIGMA)


def test_perturb_sb3_actor_without_optimizer() -> None:
    model = DDPG("MlpPolicy", "Pendulum-v1", **FAST, seed=0)
    perturbed = perturb(model.actor, SIGMA, generator=make_generator(0))
    assert model.actor.optimizer is not None
    assert perturbed.optimizer is None  # type: ignore[union-attr]
    obs = th.as_tensor(np.stack([model.observation_space.sample() for _ in range(8)]))
    assert action_distance(model.actor, perturbed, obs) > 0


def test_perturb_ln_mlp_policy_actor() -> None:
    policies = pytest.importorskip("sb3_ddpg_ext.policies")
    model = DDPG(policies.LnMlpPolicy, "Pendulum-v1", **FAST, seed=0)
    actor = model.actor
    ln_names = [n for n, _ in actor.named_parameters() if is_layer_norm_param(actor, n)]
    assert len(ln_names) == 4  # two hidden layers x (gain, bias)
    d = diffs(actor, perturb(actor, SIGMA, generator=make_generator(0)))
    for name in ln_names:
        assert th.equal(d[name], th.zeros_like(d[name]))
    assert all(d[name].abs().min() > 0 for name, _ in perturbable_parameters(actor))


# ---------------------------------------------------------------------------- distance
def test_action_distance_matches_direct_computation() -> None:
    net_a, net_b = ln_net(0), ln_net(1)
    obs = th.randn(64, 20, generator=make_generator(3))
    with th.no_grad():
        a = net_a(obs).numpy().astype(np.float64)
        b = net_b(obs).numpy().astype(np.float64)
    direct = math.sqrt(sum((a[i, j] - b[i, j]) ** 2 for i in range(64) for j in range(3)) / (64 * 3))
    assert action_distance(net_a, net_b, obs) == pytest.approx(direct, rel=1e-5)
    assert action_distance(net_a, net_a, obs) == 0.0


@pytest.mark.parametrize(
    ("initial", "desired", "alpha"),
    [
        (0.2, 0.2, 1.01),  # baselines defaults
        pytest.param(1.0, 0.05, 1.03, marks=pytest.mark.slow),  # from far above
        pytest.param(0.001, 0.3, 1.03, marks=pytest.mark.slow),  # from far below
    ],
)
def test_frozen_actor_adaptation_converges(initial: float, desired: float, alpha: float) -> None:
    actor = ln_net(4, obs_dim=8, act_dim=2)
    spec = AdaptiveParamNoiseSpec(initial_stddev=initial, desired_action_stddev=desired, adoption_coefficient=alpha)
    generator = make_generator(5)
    scratch = perturb(actor, initial, generator=generator)
    distances = []
    for _ in range(400):
        obs = th.randn(64, 8, generator=generator)  # a fresh batch each time, as from the replay buffer
        perturb_into(actor, scratch, spec.current_stddev, "per_element", generator)  # a fresh perturbation
        distance = action_distance(actor, scratch, obs)
        spec.adapt(distance)
        distances.append(distance)
    # The start is far from the target (here d(sigma_0) is > 3x or < 1/10 of delta), so the test is not vacuous;
    # sigma needs ~log(ratio)/log(alpha) < 200 steps to get there, then oscillates around the sigma where the
    # distance's median is delta. Acceptance: mean distance over the last 150 adaptations within 10% of delta.
    assert abs(np.mean(distances[:3]) - desired) > 0.5 * desired
    assert abs(np.mean(distances[-150:]) - desired) < 0.1 * desired


# ---------------------------------------------------------------------------- callback
class ConstantNoise(ActionNoise):
    """Deterministic action noise, to check that action noise is added on top of the perturbed actor."""

    def __init__(self, value: np.ndarray) -> None:
        super().__init__()
        self.value = value

    def __call__(self) -> np.ndarray:
        return self.value.copy()


class Recorder(BaseCallback):
    """Placed BEFORE the parameter-noise callback: sees the perturbed actors used for the current step's actions."""

    def __init__(self, param_noise: ParameterNoiseCallback, action_noise: np.ndarray | float = 0.0) -> None:
        super().__init__()
        self.param_noise = param_noise
        self.action_noise = action_noise
        self.fingerprints: list[list[float]] = []
        self.dones: list[np.ndarray] = []
        self.checked_actions = 0
        self.max_pred_gap = 0.0
        self.min_perturbed_gap = np.inf
        self.stddev_at_start: float | None = None

    def _on_step(self) -> bool:
        if self.stddev_at_start is None:
            self.stddev_at_start = self.param_noise.current_stddev
        model = self.model
        assert isinstance(model, TD3)
        actors = self.param_noise.perturbed_actors
        self.fingerprints.append([float(sum(p.double().sum() for p in a.parameters())) for a in actors])
        self.dones.append(np.array(self.locals["dones"]))
        obs = model._last_obs  # the observation the current actions were computed from
        assert isinstance(obs, np.ndarray)
        obs_t, _ = model.policy.obs_to_tensor(obs)
        assert isinstance(obs_t, th.Tensor)
        with th.no_grad():
            perturbed = th.cat([a(obs_t[i : i + 1]) for i, a in enumerate(actors)]).numpy()
            clean = model.actor(obs_t).numpy()
        expected_buffer = np.clip(perturbed + self.action_noise, -1, 1)
        np.testing.assert_allclose(self.locals["buffer_actions"], expected_buffer, atol=1e-6)
        np.testing.assert_allclose(self.locals["actions"], model.policy.unscale_action(expected_buffer), atol=1e-5)
        self.checked_actions += 1
        # predict() never sees the perturbation, deterministic or not.
        for deterministic in (True, False):
            pred, _ = model.predict(obs, deterministic=deterministic)
            self.max_pred_gap = max(self.max_pred_gap, float(np.abs(pred - model.policy.unscale_action(clean)).max()))
        self.min_perturbed_gap = min(self.min_perturbed_gap, float(np.abs(perturbed - clean).max()))
        return True


def two_env_vec(lengths: tuple[int, int] = (7, 11)) -> DummyVecEnv:
    return DummyVecEnv([lambda n=n: gym.make("Pendulum-v1", max_episode_steps=n) for n in lengths])  # type: ignore[misc]


def test_resample_exactly_at_episode_starts_per_env() -> None:
    env = two_env_vec((7, 11))
    model = DDPG("MlpPolicy", env, learning_starts=0, batch_size=16, **FAST, seed=0, action_noise=None)
    param_noise = ParameterNoiseCallback(adaptation_interval=5, seed=1)
    recorder = Recorder(param_noise)
    model.learn(2 * 40, callback=CallbackList([recorder, param_noise]))
    fingerprints, dones = np.array(recorder.fingerprints), np.array(recorder.dones)
    assert fingerprints.shape == (40, 2)
    changed = fingerprints[1:] != fingerprints[:-1]
    # env i's perturbation changes between step t and t+1 exactly when env i's episode ended at step t.
    np.testing.assert_array_equal(changed, dones[:-1])
    assert dones[:, 0].sum() == 40 // 7 and dones[:, 1].sum() == 40 // 11
    np.testing.assert_array_equal(param_noise.n_resamples, 1 + dones.sum(axis=0))
    # Actions came from the perturbed actors; predict() did not.
    assert recorder.checked_actions == 40
    assert recorder.max_pred_gap < 1e-5
    assert recorder.min_perturbed_gap > 1e-3
    assert param_noise.n_adaptations >= 1
    # Wrapper removed after learn(); the perturbed copies share no storage with the trained actor.
    assert "_sample_action" not in model.__dict__ and "_excluded_save_params" not in model.__dict__
    actor_ptrs = {p.data_ptr() for p in model.actor.parameters()}
    for actor in param_noise.perturbed_actors:
        assert not actor_ptrs & {p.data_ptr() for p in actor.parameters()}


def test_action_noise_on_top_and_td3() -> None:
    env = two_env_vec((9, 9))
    noise = VectorizedActionNoise(ConstantNoise(np.array([0.3])), n_envs=2)
    noise.noises = [ConstantNoise(np.array([0.3])), ConstantNoise(np.array([-0.3]))]  # a different offset per env
    model = TD3("MlpPolicy", env, learning_starts=0, batch_size=16, **FAST, seed=0, action_noise=noise)
    param_noise = ParameterNoiseCallback(seed=0)
    recorder = Recorder(param_noise, action_noise=np.array([[0.3], [-0.3]]))
    model.learn(2 * 20, callback=CallbackList([recorder, param_noise]))
    assert recorder.checked_actions == 20
    assert recorder.max_pred_gap < 1e-5


def test_predictions_identical_with_and_without_callback() -> None:
    # No gradient steps: the actor parameters then depend only on the seed, so any difference in predict()
    # would come from the callback (it must not touch the actor, predict, or the global RNG used by SB3).
    def run(with_callback: bool) -> tuple[DDPG, np.ndarray]:
        model = DDPG("MlpPolicy", "Pendulum-v1", learning_starts=0, gradient_steps=0, **FAST, seed=3)
        param_noise = ParameterNoiseCallback(seed=0)
        model.learn(60, callback=param_noise if with_callback else None)
        return model, model.replay_buffer.actions[:60, 0].copy()  # type: ignore[union-attr]

    (with_cb, actions_with), (without_cb, actions_without) = run(True), run(False)
    obs = np.stack([with_cb.observation_space.sample() for _ in range(32)])
    for deterministic in (True, False):
        np.testing.assert_array_equal(
            with_cb.predict(obs, deterministic=deterministic)[0], without_cb.predict(obs, deterministic=deterministic)[0]
        )
    # ... while the exploration actions did differ.
    assert np.abs(actions_with - actions_without).max() > 1e-3


class RaiseAtStep(BaseCallback):
    """Raises inside learn() at a given step, so SB3 never calls the callbacks' _on_training_end."""

    def __init__(self, at_step: int) -> None:
        super().__init__()
        self.at_step = at_step

    def _on_step(self) -> bool:
        if self.n_calls >= self.at_step:
            raise RuntimeError("boom")
        return True


def test_learn_that_raised_leaves_no_active_perturbation() -> None:
    th.set_num_threads(1)
    # No gradient steps and no action noise: an unperturbed action is exactly the actor's output.
    model = DDPG("MlpPolicy", "Pendulum-v1", learning_starts=0, gradient_steps=0, **FAST, seed=0, action_noise=None)
    param_noise = ParameterNoiseCallback(seed=0)
    with pytest.raises(RuntimeError, match="boom"):
        model.learn(100, callback=CallbackList([param_noise, RaiseAtStep(15)]))
    assert "_sample_action" in model.__dict__  # _on_training_end was not called
    resamples = param_noise.n_resamples.copy()
    buffer = model.replay_buffer
    assert buffer is not None
    start = buffer.pos
    # A plain learn() afterwards acts with the unperturbed actor and removes the stale overrides.
    model.learn(20)
    assert "_sample_action" not in model.__dict__ and "_excluded_save_params" not in model.__dict__
    assert not param_noise._active
    np.testing.assert_array_equal(param_noise.n_resamples, resamples)
    obs = buffer.observations[start : start + 20, 0]
    clean = model.policy.scale_action(model.predict(obs, deterministic=True)[0])
    np.testing.assert_allclose(buffer.actions[start : start + 20, 0], clean, atol=1e-6)
    # A fresh ParameterNoiseCallback works (no "already has an active ParameterNoiseCallback").
    fresh = ParameterNoiseCallback(seed=1)
    model.learn(20, callback=fresh)
    assert fresh.n_resamples.sum() >= 1 and "_sample_action" not in model.__dict__


def test_new_callback_after_raised_learn_replaces_stale_one() -> None:
    th.set_num_threads(1)
    model = DDPG("MlpPolicy", "Pendulum-v1", learning_starts=0, gradient_steps=0, **FAST, seed=0)
    stale = ParameterNoiseCallback(seed=0)
    with pytest.raises(RuntimeError, match="boom"):
        model.learn(100, callback=CallbackList([stale, RaiseAtStep(15)]))
    fresh = ParameterNoiseCallback(seed=1)
    recorder = Recorder(fresh)
    model.learn(20, callback=CallbackList([recorder, fresh]))  # straight after the failure, no plain learn()
    assert not stale._active and fresh.n_resamples.sum() >= 1
    assert recorder.checked_actions == 20 and recorder.min_perturbed_gap > 1e-3
    assert "_sample_action" not in model.__dict__


def test_sigma_restored_after_save_load(tmp_path: Any) -> None:
    env = two_env_vec((20, 20))
    model = DDPG("MlpPolicy", env, learning_starts=0, batch_size=16, **FAST, seed=0)
    param_noise = ParameterNoiseCallback(initial_stddev=0.2, adaptation_interval=2, seed=0)

    class SaveMidTraining(BaseCallback):
        def _on_step(self) -> bool:
            if self.n_calls == 30:
                self.model.save(tmp_path / "mid.zip")
            return True

    model.learn(2 * 40, callback=CallbackList([param_noise, SaveMidTraining()]))
    sigma = param_noise.current_stddev
    assert param_noise.n_adaptations >= 5 and sigma != 0.2
    assert model.param_noise_state["current_stddev"] == sigma  # type: ignore[attr-defined]
    # Saving during learn() works and does not carry the temporary wrapper.
    mid = DDPG.load(tmp_path / "mid.zip")
    assert "_sample_action" not in mid.__dict__
    assert PARAM_NOISE_STATE_ATTR in mid.__dict__

    model.save(tmp_path / "model.zip")
    loaded = DDPG.load(tmp_path / "model.zip", env=two_env_vec((20, 20)))
    assert loaded.param_noise_state["current_stddev"] == sigma  # type: ignore[attr-defined]
    resumed = ParameterNoiseCallback(initial_stddev=0.5, adaptation_interval=10**6, seed=0)
    recorder = Recorder(resumed)
    loaded.learn(10, callback=CallbackList([recorder, resumed]), reset_num_timesteps=False)
    assert recorder.stddev_at_start == sigma and resumed.current_stddev == sigma
    # restore_state=False starts from initial_stddev.
    fresh = ParameterNoiseCallback(initial_stddev=0.5, adaptation_interval=10**6, restore_state=False)
    DDPG.load(tmp_path / "model.zip", env=two_env_vec((20, 20))).learn(4, callback=fresh)
    assert fresh.current_stddev == 0.5


class CaptureWriter(KVWriter):
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        self.records.append(dict(key_values))


def test_logs_stddev_and_distance() -> None:
    env = DummyVecEnv([lambda: gym.make("Pendulum-v1", max_episode_steps=10)])
    model = DDPG("MlpPolicy", env, learning_starts=0, batch_size=16, **FAST, seed=0)
    writer = CaptureWriter()
    model.set_logger(Logger(folder=None, output_formats=[writer]))
    param_noise = ParameterNoiseCallback(adaptation_interval=3, seed=0)
    model.learn(80, callback=param_noise, log_interval=1)
    stddevs = [r["param_noise/stddev"] for r in writer.records if "param_noise/stddev" in r]
    distances = [r["param_noise/distance"] for r in writer.records if "param_noise/distance" in r]
    assert len(stddevs) == len(writer.records) >= 7
    assert len(distances) >= 3 and all(d > 0 for d in distances)
    assert stddevs[-1] == pytest.approx(param_noise.current_stddev)
    # (80 - 16) gradient steps after the buffer holds a batch, one adaptation every 3 (+-1 for the boundary).
    assert abs(param_noise.n_adaptations - (80 - 16) // 3) <= 1


def test_seeded_callback_reproducible() -> None:
    def run() -> tuple[float, np.ndarray]:
        model = DDPG("MlpPolicy", "Pendulum-v1", learning_starts=0, batch_size=16, **FAST, seed=1)
        param_noise = ParameterNoiseCallback(adaptation_interval=2, seed=4)
        model.learn(40, callback=param_noise)
        return param_noise.current_stddev, model.replay_buffer.actions[:40, 0].copy()  # type: ignore[union-attr]

    (s1, a1), (s2, a2) = run(), run()
    assert s1 == s2
    np.testing.assert_array_equal(a1, a2)


def test_zoo_yaml_callback_entry() -> None:
    from rl_zoo3.utils import get_callback_list

    hyperparams = yaml.safe_load(
        """
        callback:
          - sb3_ddpg_ext.callbacks.ParameterNoiseCallback:
              initial_stddev: 0.3
              sampling: per_tensor
              adaptation_interval: 7
        """
    )
    (callback,) = get_callback_list(hyperparams)
    assert isinstance(callback, ParameterNoiseCallback)
    assert (callback.current_stddev, callback.sampling, callback.adaptation_interval) == (0.3, "per_tensor", 7)
    model = DDPG("MlpPolicy", "Pendulum-v1", learning_starts=0, batch_size=16, **FAST, seed=0)
    model.learn(20, callback=callback)
    assert callback.n_resamples.tolist() == [1]


def test_works_with_plugin_ddpg() -> None:
    ddpg_module = pytest.importorskip("sb3_ddpg_ext.ddpg")
    env = two_env_vec((8, 12))
    model = ddpg_module.DDPG("MlpPolicy", env, learning_starts=0, batch_size=16, **FAST, seed=0)
    param_noise = ParameterNoiseCallback(adaptation_interval=2, seed=0)
    recorder = Recorder(param_noise)
    model.learn(2 * 25, callback=CallbackList([recorder, param_noise]))
    changed = np.diff(np.array(recorder.fingerprints), axis=0) != 0
    np.testing.assert_array_equal(changed, np.array(recorder.dones)[:-1])
    assert recorder.max_pred_gap < 1e-5 and param_noise.n_adaptations >= 1


def test_callback_bad_input() -> None:
    with pytest.raises(ValueError, match="sampling"):
        ParameterNoiseCallback(sampling="per_layer")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="adaptation_interval"):
        ParameterNoiseCallback(adaptation_interval=0)
    with pytest.raises(ValueError, match="initial_stddev"):
        ParameterNoiseCallback(initial_stddev=-0.1)
    # a fresh policy_kwargs: SAC writes use_sde into the dict it is given, which would break later DDPGs using FAST
    model = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(TINY_NET), buffer_size=1000)
    with pytest.raises(ValueError, match="SAC"):
        model.learn(2, callback=ParameterNoiseCallback())


@pytest.mark.parametrize("name", ["initial_stddev", "desired_action_stddev", "adoption_coefficient"])
@pytest.mark.parametrize("np_type", [np.float32, np.float64, np.int64])
def test_numpy_real_scalars_accepted(name: str, np_type: type) -> None:
    value = {"initial_stddev": 0.3, "desired_action_stddev": 0.1, "adoption_coefficient": 1.05}[name]
    if np_type is np.int64:
        value = {"initial_stddev": 1, "desired_action_stddev": 2, "adoption_coefficient": 3}[name]
    callback = ParameterNoiseCallback(**{name: np_type(value)})
    stored = getattr(callback.spec, name)
    assert type(stored) is float and stored == float(np_type(value))
    if name == "initial_stddev":
        assert callback.current_stddev == float(np_type(value))


@pytest.mark.parametrize("name", ["initial_stddev", "desired_action_stddev", "adoption_coefficient"])
@pytest.mark.parametrize("bad", ["0.2", None, True, [0.2], np.array([1.5])])
def test_wrong_typed_float_argument_named(name: str, bad: Any) -> None:
    with pytest.raises(ValueError, match=rf"{name} must be a real number, got {name}="):
        ParameterNoiseCallback(**{name: bad})
    with pytest.raises(ValueError, match=name):
        AdaptiveParamNoiseSpec(**{name: bad})


@pytest.mark.parametrize("seed", [-1, np.int64(-5), True, 1.5, "3"])
def test_bad_seed_rejected_at_construction(seed: Any) -> None:
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer or None, got seed="):
        ParameterNoiseCallback(seed=seed)


def test_large_and_numpy_seeds_accepted() -> None:
    for seed in (0, np.uint32(2**32 - 1), 2**40):
        callback = ParameterNoiseCallback(seed=seed)  # type: ignore[arg-type]
        assert callback.seed == int(seed) and type(callback.seed) is int
    model = DDPG("MlpPolicy", "Pendulum-v1", learning_starts=0, gradient_steps=0, **FAST, seed=0)
    model.learn(3, callback=ParameterNoiseCallback(seed=2**40))


class AdaptationLog(ParameterNoiseCallback):
    """Records, at every adaptation, the number of transitions the model has collected and the buffer holds."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.at_adaptation: list[tuple[int, int]] = []

    def adapt(self) -> float:
        buffer = self._td3().replay_buffer
        assert buffer is not None
        self.at_adaptation.append((self.model.num_timesteps, buffer.size() * buffer.n_envs))
        return super().adapt()


@pytest.mark.parametrize("n_envs", [1, 4])
def test_adaptation_starts_at_batch_size_transitions(n_envs: int) -> None:
    """Adaptation waits for ``batch_size`` transitions in the buffer, not ``batch_size`` rows of ``n_envs`` of them:
    with 4 envs it starts at the same number of transitions (32) as with 1 env (counting rows: at 128)."""
    batch_size = 32
    env = DummyVecEnv([lambda: gym.make("Pendulum-v1", max_episode_steps=50)] * n_envs)  # type: ignore[list-item]
    model = DDPG("MlpPolicy", env, learning_starts=0, batch_size=batch_size, train_freq=1, gradient_steps=1, **FAST, seed=0)
    callback = AdaptationLog(adaptation_interval=1, seed=0)
    model.learn(160, callback=callback)
    assert callback.at_adaptation, "no adaptation"
    # The buffer gains n_envs transitions per step, one gradient step follows each step: the first adaptation is at
    # the first rollout start with >= batch_size transitions stored, i.e. at exactly batch_size (a multiple of 4).
    assert callback.at_adaptation[0] == (batch_size, batch_size)
    # ... and then one per gradient step (interval 1): one per rollout.
    steps = [t for t, _ in callback.at_adaptation]
    assert steps == list(range(batch_size, 160, n_envs))


def test_generator_state_saved_save_load_continue_same_perturbations(tmp_path: Any) -> None:
    """save() -> load() -> learn() with a new callback draws the same perturbations (and adapts sigma the same way)
    as going on with the same model and callback without the round trip: the perturbation and replay-index
    generators are saved in ``model.param_noise_state``."""
    th.set_num_threads(1)
    lengths = (6, 9)  # short episodes: many re-draws of the perturbations
    model = DDPG("MlpPolicy", two_env_vec(lengths), learning_starts=0, batch_size=16, **FAST, seed=0)
    first = ParameterNoiseCallback(adaptation_interval=2, seed=5)
    model.learn(2 * 30, callback=first)
    model.save(tmp_path / "model.zip")
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    state = DDPG.load(tmp_path / "model.zip").param_noise_state  # type: ignore[attr-defined]
    assert {"generator_state", "rng_state"} <= state.keys()
    json.dumps(state)  # plain JSON (SB3 stores it readable in the zip's "data", not as a pickle)

    def go_on(model: DDPG, callback: ParameterNoiseCallback) -> tuple[np.ndarray, list[float]]:
        # The same env and global seeding in both branches, so only the callback's own state can differ.
        model.set_env(two_env_vec(lengths))
        model.set_random_seed(11)
        recorder = Recorder(callback)
        sigmas: list[float] = []

        class Sigmas(BaseCallback):
            def _on_rollout_start(self) -> None:
                sigmas.append(callback.current_stddev)

            def _on_step(self) -> bool:
                return True

        model.learn(2 * 30, callback=CallbackList([recorder, callback, Sigmas()]), reset_num_timesteps=False)
        return np.array(recorder.fingerprints), sigmas

    # Without the round trip: the same model and callback go on.
    direct_prints, direct_sigmas = go_on(model, first)
    assert first.n_adaptations >= 10 and len(set(direct_sigmas)) > 3
    # Round trip: loaded model and buffer, a new callback with the same arguments (as rl-zoo3 builds it again).
    loaded = DDPG.load(tmp_path / "model.zip")
    loaded.load_replay_buffer(tmp_path / "buffer.pkl")
    resumed = ParameterNoiseCallback(adaptation_interval=2, seed=5)
    loaded_prints, loaded_sigmas = go_on(loaded, resumed)
    np.testing.assert_array_equal(loaded_prints, direct_prints)
    assert loaded_sigmas == direct_sigmas
    assert resumed.n_adaptations == first.n_adaptations
    # A state without the generators (a model saved before they were stored): sigma restored, generators seeded
    # afresh from the seed, so the perturbations differ; this is what the round trip gave before.
    old = DDPG.load(tmp_path / "model.zip")
    old.load_replay_buffer(tmp_path / "buffer.pkl")
    for key in ("generator_state", "rng_state"):
        del old.param_noise_state[key]  # type: ignore[attr-defined]
    reseeded = ParameterNoiseCallback(adaptation_interval=2, seed=5)
    reseeded_prints, reseeded_sigmas = go_on(old, reseeded)
    assert reseeded_sigmas[0] == direct_sigmas[0]
    assert not np.array_equal(reseeded_prints[0], direct_prints[0])


ZOO_CONFIG = """
Pendulum-v1:
  n_timesteps: 200
  policy: 'MlpPolicy'
  learning_starts: 50
  batch_size: 32
  buffer_size: 1000
  policy_kwargs: "dict(net_arch=[16, 16])"
  callback:
    - sb3_ddpg_ext.callbacks.ParameterNoiseCallback:
        initial_stddev: 0.3
        sampling: per_tensor
        adaptation_interval: 10
"""


@pytest.mark.slow
def test_zoo_train_with_yaml_callback(tmp_path: Any) -> None:
    """End to end: rl_zoo3's own train script builds the callback from a YAML ``callback:`` entry."""
    import os
    import subprocess
    import sys

    config = tmp_path / "ddpg_param_noise.yml"
    config.write_text(ZOO_CONFIG)
    cmd = [
        sys.executable, "-m", "rl_zoo3.train", "--algo", "ddpg", "--env", "Pendulum-v1", "-conf", str(config),
        "-f", str(tmp_path / "logs"), "--seed", "0", "--eval-freq", "-1", "--num-threads", "1",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = DDPG.load(tmp_path / "logs" / "ddpg" / "Pendulum-v1_1" / "Pendulum-v1.zip")
    state = model.param_noise_state  # type: ignore[attr-defined]
    assert state["sampling"] == "per_tensor"
    # 150 gradient steps (200 - learning_starts), one adaptation every 10 once the buffer holds a batch (32).
    assert 11 <= state["n_adaptations"] <= 15
    assert state["current_stddev"] != 0.3


def test_vec_normalize_adaptation_sees_normalised_observations() -> None:
    """With VecNormalize (baselines' normalize_observations=True) the adaptation batch is normalised with the
    running statistics, as the observations the (perturbed) actor acts on (``model._last_obs``)."""
    from stable_baselines3.common.vec_env import VecNormalize

    env = VecNormalize(DummyVecEnv([lambda: gym.make("MountainCarContinuous-v0")]), norm_obs=True, norm_reward=False)
    model = DDPG("MlpPolicy", env, learning_starts=50, batch_size=64, seed=0, policy_kwargs={"net_arch": [8]})
    callback = ParameterNoiseCallback(adaptation_interval=10, seed=0)
    model.learn(200, callback=callback)
    assert callback.n_adaptations > 0
    # adaptation batch == the buffer's raw observations normalised with the current statistics
    rng_state = callback._rng.bit_generator.state  # type: ignore[union-attr]
    obs = callback._sample_replay_observations(64).numpy()  # type: ignore[union-attr]
    callback._rng.bit_generator.state = rng_state  # type: ignore[union-attr]
    rows = callback._rng.integers(0, model.replay_buffer.pos, size=64)  # type: ignore[union-attr]
    expected = env.normalize_obs(model.replay_buffer.observations[rows, 0])  # type: ignore[union-attr]
    np.testing.assert_allclose(obs, expected, rtol=1e-6, atol=1e-6)
    # normalised: the speed column is O(1), not O(0.01) as in the raw buffer
    assert np.abs(obs[:, 1]).max() > 0.2 > np.abs(model.replay_buffer.observations[rows, 0, 1]).max()  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------- seeding (one owner)
def test_seeding_derivations_are_pinned():
    """The derived seeds and first draws are part of committed results: pinned values (computed before the move)."""
    from sb3_ddpg_ext import param_noise, seeding

    assert [seeding.derive_seed(s, k) for s in (0, 7, 2**31) for k in (0, 1)] == [
        2875465502,
        1220447806,
        3020176973,
        3070903177,
        1875605695,
        2793742023,
    ]
    assert seeding.derive_seed(None, 0) is None
    generator, rng = seeding.param_noise_generators(5)
    assert th.randn(3, generator=generator).tolist() == [-1.3828500509262085, -1.1045193672180176, 0.00396628025919199]
    assert rng.integers(0, 1000, 3).tolist() == [538, 386, 391]
    assert param_noise.make_generator is seeding.make_generator  # old import path


def test_generator_states_round_trip():
    from sb3_ddpg_ext import seeding

    generator, rng = seeding.param_noise_generators(3)
    torch_state, np_state = seeding.torch_generator_state(generator), seeding.numpy_generator_state(rng)
    json.dumps({"t": torch_state, "n": np_state})  # JSON-able
    expected_t, expected_n = th.randn(4, generator=generator), rng.random(4)
    restored_t = seeding.torch_generator_from_state(torch_state)
    restored_n = seeding.numpy_generator_from_state(np_state)
    assert th.equal(th.randn(4, generator=restored_t), expected_t)
    assert np.array_equal(restored_n.random(4), expected_n)
    with pytest.raises(ValueError, match="unknown bit generator 'Philox2'"):
        seeding.numpy_generator_from_state({**np_state, "bit_generator": "Philox2"})
