"""
Tests of the rl-zoo3 integration (sb3_ddpg_ext.zoo, sb3_ddpg_ext.sampler, the train/enjoy entry points).

The in-process tests run rl-zoo3's real ExperimentManager (setup_experiment + learn) on Pendulum-v1 for a few hundred
steps with small networks, and check what was built: noise class and parameters, callbacks, policy, arguments.
The subprocess tests (marked slow) run `python -m sb3_ddpg_ext.train` / `enjoy` and plain `python -m rl_zoo3.train`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import numpy as np
import optuna
import pytest
import torch as th
import yaml
from stable_baselines3 import DDPG as SB3DDPG
from stable_baselines3.common.noise import VectorizedActionNoise
from stable_baselines3.common.type_aliases import TrainFrequencyUnit
from torch import nn

from sb3_ddpg_ext.callbacks import ParameterNoiseCallback
from sb3_ddpg_ext.ddpg import DDPG as ExtDDPG
from sb3_ddpg_ext.noise import (
    ColoredActionNoise,
    GaussianActionNoise,
    OrnsteinUhlenbeckActionNoise,
    PinkActionNoise,
)
from sb3_ddpg_ext.policies import LnMlpPolicy
from sb3_ddpg_ext.sampler import convert_ddpg_ext_params, exploration_spec_from_params, sample_ddpg_ext_params
from sb3_ddpg_ext.zoo import (
    DEFAULT_HYPERPARAMS_FILE,
    ActionNoiseCallback,
    ExplorationCallback,
    ExplorationSpec,
    check_zoo_keys,
    parse_exploration_spec,
    register_zoo,
    resolve_variant,
    setup_zoo_experiment,
)

ENV = "Pendulum-v1"  # time limit 200 steps, 1-D action
# Shrink the runs: small nets and buffer, learning after 100 steps, 200 steps in all.
SMALL = {"policy_kwargs": {"net_arch": [32, 32]}, "buffer_size": 2000, "learning_starts": 100, "batch_size": 32}
N_STEPS = 200


def _run(
    tmp_path: Path,
    variant: str,
    *,
    seed: int = 0,
    n_timesteps: int = N_STEPS,
    learn: bool = True,
    overrides: Optional[dict[str, Any]] = None,
    extra: Optional[dict[str, Any]] = None,
    small: Optional[dict[str, Any]] = None,
) -> tuple[Any, Any, str, dict[str, Any]]:
    """Real zoo setup (+ training) of `variant` on Pendulum-v1 with small nets; returns (manager, model, algo, hp)."""
    algo, hp = resolve_variant(DEFAULT_HYPERPARAMS_FILE, ENV, variant)
    hp.update(extra or {})
    custom = {**(SMALL if small is None else small), **(overrides or {})}
    if "policy_kwargs" in hp and isinstance(hp["policy_kwargs"], dict):
        custom["policy_kwargs"] = {**hp["policy_kwargs"], **custom["policy_kwargs"]}
    manager, model = setup_zoo_experiment(
        algo, ENV, hp, tmp_path / "logs", seed=seed, n_timesteps=n_timesteps, custom_hyperparams=custom
    )
    if learn:
        manager.learn(model)
    return manager, model, algo, hp


def _exploration_callbacks(manager: Any) -> list[ExplorationCallback]:
    return [cb for cb in manager.callbacks if isinstance(cb, ExplorationCallback)]


# ------------------------------------------------------------------------------------------------ spec parsing
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("none", ExplorationSpec("none")),
        ("normal_0.1", ExplorationSpec("normal_0.1")),
        (" Pink_0.3 ", ExplorationSpec("pink_0.3")),
        ("normal_0.2_0.0_{noise_steps}", ExplorationSpec("normal_0.2_0.0_{noise_steps}")),
        ("adaptive-param_0.2", ExplorationSpec(None, 0.2, "per_element")),
        ("adaptive-param-naive_0.3", ExplorationSpec(None, 0.3, "per_tensor")),
        ("adaptive-param-single_0.1", ExplorationSpec(None, 0.1, "single")),
        ("adaptive-param_0.2,normal_0.1", ExplorationSpec("normal_0.1", 0.2, "per_element")),
        ("ou-stationary_0.2, adaptive-param-naive_0.2", ExplorationSpec("ou-stationary_0.2", 0.2, "per_tensor")),
    ],
)
def test_parse_exploration_spec(spec, expected):
    assert parse_exploration_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "non-empty"),
        ("normal_0.1,,pink_0.3", "empty part"),
        ("normal_0.1,pink_0.3", "more than one action-noise part"),
        ("adaptive-param_0.2,adaptive-param_0.1", "more than one parameter-noise part"),
        ("adaptive-param_x", "must be a number"),
        ("adaptive-param_-0.2", "must be > 0"),
        ("adaptive-param-weird_0.2", "unknown parameter-noise part"),
        ("gauss_0.1", "invalid action-noise part 'gauss_0.1'"),
        ("normal_0.1_0.0", "invalid action-noise part"),
    ],
)
def test_parse_exploration_spec_rejects(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_exploration_spec(spec)


def test_callback_argument_validation():
    with pytest.raises(ValueError, match="seq_len"):
        ExplorationCallback("pink_0.3", seq_len=1)
    with pytest.raises(ValueError, match="seed"):
        ExplorationCallback("pink_0.3", seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="param_noise_kwargs"):
        ExplorationCallback("normal_0.1", param_noise_kwargs={"adaptation_interval": 10})
    with pytest.raises(ValueError, match="action-noise spec only"):
        ActionNoiseCallback("adaptive-param_0.2")
    cb = ExplorationCallback("adaptive-param-naive_0.3", param_noise_kwargs={"adaptation_interval": 7})
    assert isinstance(cb.param_noise_callback, ParameterNoiseCallback)
    assert cb.param_noise_callback.sampling == "per_tensor"
    assert cb.param_noise_callback.adaptation_interval == 7
    assert cb.param_noise_callback.current_stddev == pytest.approx(0.3)
    assert cb.param_noise_callback.spec.desired_action_stddev == pytest.approx(0.3)


# ------------------------------------------------------------------------------------------------ noise family
def _check_gaussian(noise, sigma, final_sigma=None, decay_steps=None):
    assert type(noise) is GaussianActionNoise
    np.testing.assert_allclose(noise._sigma, sigma)
    if final_sigma is not None:
        np.testing.assert_allclose(noise._final_sigma, final_sigma)
        assert noise._decay_steps == decay_steps


@pytest.mark.parametrize(
    "variant",
    [
        "noise_none",
        "noise_normal_0.1",
        "noise_normal_0.2_decay",
        "noise_ou_0.2",
        "noise_ou_stationary_0.2",
        "noise_pink_0.3",
        "noise_param_0.2",
        "noise_param_naive_0.2",
        "noise_param_0.2_normal_0.1",
    ],
)
def test_noise_variants_build_the_requested_exploration(tmp_path, variant):
    manager, model, algo, hp = _run(tmp_path, variant)
    assert algo == "ddpg" and type(model) is SB3DDPG
    assert "noise_type" not in hp
    (cb,) = _exploration_callbacks(manager)
    assert cb.spec == hp["callback"][0]["sb3_ddpg_ext.zoo.ExplorationCallback"]["spec"]
    noise = model.action_noise
    assert noise is cb.action_noise
    param_cb = cb.param_noise_callback
    if variant == "noise_none":
        assert noise is None and param_cb is None
    elif variant == "noise_normal_0.1":
        _check_gaussian(noise, 0.1)
    elif variant == "noise_normal_0.2_decay":
        # {noise_steps} = 200 steps / 1 env = 200 noise draws (SB3 adds noise to the warm-up actions too).
        _check_gaussian(noise, 0.2, 0.0, N_STEPS)
        assert noise.n_calls == N_STEPS
        np.testing.assert_allclose(noise.current_sigma, 0.0)
    elif variant in ("noise_ou_0.2", "noise_ou_stationary_0.2"):
        assert type(noise) is OrnsteinUhlenbeckActionNoise
        np.testing.assert_allclose(noise._sigma, 0.2)
        assert noise._stationary_start is (variant == "noise_ou_stationary_0.2")
        assert (noise._theta, noise._dt) == (0.15, 1e-2)
    elif variant == "noise_pink_0.3":
        assert type(noise) is PinkActionNoise
        np.testing.assert_allclose(noise._sigma, 0.3)
        assert noise.beta == 1.0
        assert noise.seq_len == 200  # Pendulum-v1's time limit
    else:
        assert isinstance(param_cb, ParameterNoiseCallback)
        assert param_cb.sampling == ("per_tensor" if "naive" in variant else "per_element")
        assert param_cb.spec.desired_action_stddev == pytest.approx(0.2)
        # It really ran inside the zoo's learn(): one perturbed actor per env, drawn at learn start and per episode end
        # (200 steps = 1 episode), its sigma stored on the model.
        assert len(param_cb.perturbed_actors) == 1
        assert param_cb.n_resamples.tolist() == [2]
        assert model.param_noise_state["current_stddev"] == pytest.approx(param_cb.current_stddev)
        if variant == "noise_param_0.2_normal_0.1":
            _check_gaussian(noise, 0.1)
        else:
            assert noise is None


def test_n_envs_2_gives_independent_per_env_noise(tmp_path):
    _, model, _, _ = _run(tmp_path, "noise_pink_0.3", overrides={"n_envs": 2}, n_timesteps=300)
    noise = model.action_noise
    assert isinstance(noise, VectorizedActionNoise) and noise.n_envs == 2
    assert all(type(n) is PinkActionNoise for n in noise.noises)
    draws = np.stack([noise() for _ in range(50)])  # (50, 2 envs, 1)
    assert not np.allclose(draws[:, 0], draws[:, 1])

    manager, model, _, _ = _run(tmp_path / "p", "noise_param_0.2_normal_0.1", overrides={"n_envs": 2}, n_timesteps=300)
    (cb,) = _exploration_callbacks(manager)
    assert isinstance(model.action_noise, VectorizedActionNoise) and model.action_noise.n_envs == 2
    assert cb.param_noise_callback is not None and len(cb.param_noise_callback.perturbed_actors) == 2
    a, b = (dict(actor.named_parameters()) for actor in cb.param_noise_callback.perturbed_actors)
    assert any(not th.equal(a[name], b[name]) for name in a)


def _draws(model, n=20):
    return np.array([model.action_noise() for _ in range(n)])


def test_noise_is_seeded_from_the_run_seed(tmp_path):
    _, first, _, _ = _run(tmp_path / "a", "noise_ou_stationary_0.2", seed=3, learn=False)
    _, second, _, _ = _run(tmp_path / "b", "noise_ou_stationary_0.2", seed=3, learn=False)
    _, other, _, _ = _run(tmp_path / "c", "noise_ou_stationary_0.2", seed=4, learn=False)
    for model in (first, second, other):
        model.learn(1, callback=[ExplorationCallback("ou-stationary_0.2")])
    np.testing.assert_array_equal(_draws(first), _draws(second))
    assert not np.allclose(_draws(first), _draws(other))
    # An explicit seed wins over the run seed.
    for model in (first, other):
        model.action_noise = None
        model.learn(1, callback=[ExplorationCallback("ou-stationary_0.2", seed=11)])
    np.testing.assert_array_equal(_draws(first), _draws(other))


def test_conflict_with_zoo_noise_type_is_an_error_unless_override(tmp_path):
    # The baseline has noise_type: normal / noise_std: 0.1; adding the callback without removing them is ambiguous.
    callback = [{"sb3_ddpg_ext.zoo.ExplorationCallback": {"spec": "pink_0.3"}}]
    manager, model, _, _ = _run(tmp_path / "a", "baseline", extra={"callback": callback}, learn=False)
    with pytest.raises(ValueError, match=r"already has action_noise=.*noise_type"):
        manager.learn(model)
    callback = [{"sb3_ddpg_ext.zoo.ExplorationCallback": {"spec": "pink_0.3", "override": True}}]
    manager, model, _, _ = _run(tmp_path / "b", "baseline", extra={"callback": callback})
    assert type(model.action_noise) is PinkActionNoise


def test_later_learn_keeps_the_noise_and_its_schedule(tmp_path):
    _, model, _, _ = _run(tmp_path, "noise_normal_0.2_decay", learn=False)
    cb = ExplorationCallback("normal_0.2_0.0_{noise_steps}")
    model.learn(120, callback=cb)
    first_noise = model.action_noise
    assert first_noise is cb.action_noise and first_noise._decay_steps == 120 and first_noise.n_calls == 120
    model.learn(30, callback=cb, reset_num_timesteps=False)
    # Same object, schedule went on (not rebuilt with {noise_steps} = 30).
    assert model.action_noise is first_noise and first_noise.n_calls == 150 and first_noise._decay_steps == 120


def test_continue_after_save_load_adopts_the_saved_noise(tmp_path):
    th.set_num_threads(1)
    spec = "normal_0.2_0.0_1000"
    model = SB3DDPG("MlpPolicy", ENV, seed=0, action_noise=None, **SMALL)
    model.learn(N_STEPS, callback=ExplorationCallback(spec))
    assert model.exploration_spec == spec and model.action_noise.n_calls == N_STEPS
    model.save(tmp_path / "model")
    loaded = SB3DDPG.load(tmp_path / "model", env=model.get_env())
    saved_noise = loaded.action_noise
    assert loaded.exploration_spec == spec and saved_noise.n_calls == N_STEPS
    cb = ExplorationCallback(spec)
    loaded.learn(100, callback=cb, reset_num_timesteps=False)  # no "already has action_noise"
    # The loaded noise is kept, its decay position goes on (not rebuilt from n_calls = 0).
    assert loaded.action_noise is saved_noise and cb.action_noise is saved_noise
    assert saved_noise.n_calls == N_STEPS + 100
    # A different spec is still a conflict; override=True rebuilds the noise.
    with pytest.raises(ValueError, match="already has action_noise"):
        loaded.learn(1, callback=ExplorationCallback("normal_0.3"), reset_num_timesteps=False)
    loaded.learn(10, callback=ExplorationCallback(spec, override=True), reset_num_timesteps=False)
    assert loaded.action_noise is not saved_noise and loaded.action_noise.n_calls == 10


def test_colored_spec_and_explicit_seq_len(tmp_path):
    callback = [{"sb3_ddpg_ext.zoo.ActionNoiseCallback": {"spec": "colored_2.0_0.4", "seq_len": 64}}]
    _, model, _, _ = _run(tmp_path, "noise_none", overrides={"callback": callback})
    assert type(model.action_noise) is ColoredActionNoise
    assert model.action_noise.beta == 2.0 and model.action_noise.seq_len == 64


# ------------------------------------------------------------------------------------------------ other families
@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("tn_off", {"target_policy_noise": 0.0}),
        ("tn_per_sample", {"target_policy_noise": 0.2, "target_noise_clip": 0.5, "target_noise_sampling": "per_sample"}),
        ("tn_per_batch", {"target_policy_noise": 0.2, "target_noise_clip": 0.5, "target_noise_sampling": "per_batch"}),
        ("tn_parameter", {"target_policy_noise": 0.02, "target_noise_clip": 0.05, "target_noise_space": "parameter"}),
    ],
)
def test_target_noise_variants_use_our_ddpg_with_the_arguments(tmp_path, variant, expected):
    # Training in every mode is tested by engineer DDPG's tests; here one mode runs through the zoo's learn().
    _, model, algo, _ = _run(tmp_path, variant, learn=variant == "tn_parameter")
    assert algo == "ddpg_ext" and type(model) is ExtDDPG
    for key, value in expected.items():
        assert getattr(model, key) == value, key
    # The zoo's baseline noise (noise_type normal 0.1) is still there: only the target noise changed.
    assert type(model.action_noise).__name__ == "NormalActionNoise"
    if variant == "tn_parameter":
        assert model._n_updates == N_STEPS - SMALL["learning_starts"]


@pytest.mark.parametrize(("variant", "learning_starts"), [("ls_0", 0), ("ls_1k", 1000), ("ls_10k", 10000), ("ls_25k", 25000)])
def test_learning_starts_variants(tmp_path, variant, learning_starts):
    small = {k: v for k, v in SMALL.items() if k != "learning_starts"}
    _, model, _, _ = _run(tmp_path, variant, small=small, learn=variant == "ls_0")
    assert model.learning_starts == learning_starts
    if variant == "ls_0":
        # With learning_starts 0 the first update happens at the first step (batch 32 sampled from what is there).
        assert model._n_updates == N_STEPS


@pytest.mark.parametrize(
    ("variant", "freq", "unit", "gradient_steps", "updates"),
    [
        ("ui_1", 1, TrainFrequencyUnit.STEP, 1, 100),
        ("ui_10", 10, TrainFrequencyUnit.STEP, 10, 100),
        ("ui_50", 50, TrainFrequencyUnit.STEP, 50, 100),
        # One episode of 200 steps: trained once at its end, -1 = as many gradient steps as steps collected (200).
        ("ui_episode", 1, TrainFrequencyUnit.EPISODE, -1, 200),
    ],
)
def test_update_interval_variants(tmp_path, variant, freq, unit, gradient_steps, updates):
    _, model, _, _ = _run(tmp_path, variant)
    assert (model.train_freq.frequency, model.train_freq.unit) == (freq, unit)
    assert model.gradient_steps == gradient_steps
    assert model._n_updates == updates


def _n_layer_norms(module: nn.Module) -> int:
    return sum(isinstance(m, nn.LayerNorm) for m in module.modules())


@pytest.mark.parametrize(
    ("variant", "actor_ln", "critic_ln"),
    [("ln_none", False, False), ("ln_actor", True, False), ("ln_critic", False, True), ("ln_both", True, True)],
)
def test_layer_norm_variants(tmp_path, variant, actor_ln, critic_ln):
    _, model, _, _ = _run(tmp_path, variant, learn=variant == "ln_both")
    assert isinstance(model.policy, LnMlpPolicy)
    # Two hidden layers ([32, 32]) -> two LayerNorms in each normalised network (and its target).
    assert _n_layer_norms(model.actor) == _n_layer_norms(model.actor_target) == (2 if actor_ln else 0)
    assert _n_layer_norms(model.critic) == (2 if critic_ln else 0)
    linears = [m for m in model.actor.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [32, 32, 1]


# ------------------------------------------------------------------------------------------------ registration, sampler
def test_register_zoo_adds_ddpg_ext_and_its_sampler():
    register_zoo()
    from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER
    from rl_zoo3.utils import ALGOS

    assert ALGOS["ddpg_ext"] is ExtDDPG and ALGOS["ddpg"] is SB3DDPG
    assert HYPERPARAMS_SAMPLER["ddpg_ext"] is sample_ddpg_ext_params
    assert HYPERPARAMS_CONVERTER["ddpg_ext"] is convert_ddpg_ext_params


def test_default_conf_for_ddpg_ext():
    from sb3_ddpg_ext.zoo import _with_default_conf

    assert _with_default_conf(["--algo", "ddpg_ext", "--env", ENV])[-2:] == ["--conf-file", str(DEFAULT_HYPERPARAMS_FILE)]
    assert _with_default_conf(["--algo", "ddpg_ext", "-conf", "x.yml"]) == ["--algo", "ddpg_ext", "-conf", "x.yml"]
    assert _with_default_conf(["--algo", "ddpg"]) == ["--algo", "ddpg"]


FIXED_PARAMS = {
    "one_minus_gamma": 0.02,
    "learning_rate": 1e-3,
    "batch_size_pow": 5,
    "train_freq": 4,
    "tau": 0.01,
    "net_arch": "small",
    "action_noise_type": "ou-stationary",
    "action_noise_std": 0.25,
    "param_noise": "per_tensor",
    "param_noise_std": 0.1,
    "layer_norm_actor": True,
    "layer_norm_critic": False,
    "target_noise": "per_batch",
    "target_policy_noise": 0.3,
}


def test_sampler_with_fixed_trial_gives_valid_hyperparams():
    trial = optuna.trial.FixedTrial(FIXED_PARAMS)
    hp = sample_ddpg_ext_params(trial, n_actions=1, n_envs=1, additional_args={"using_her_replay_buffer": False})
    assert hp == {
        "gamma": pytest.approx(0.98),
        "learning_rate": 1e-3,
        "batch_size": 32,
        "train_freq": 4,
        "gradient_steps": 4,
        "tau": 0.01,
        "policy": "LnMlpPolicy",
        "policy_kwargs": {"net_arch": [64, 64], "layer_norm_actor": True, "layer_norm_critic": False},
        "target_policy_noise": 0.3,
        "target_noise_sampling": "per_batch",
        "target_noise_space": "action",
    }
    assert trial.user_attrs["exploration_spec"] == "adaptive-param-naive_0.1,ou-stationary_0.25"
    parse_exploration_spec(trial.user_attrs["exploration_spec"])
    model = ExtDDPG(env=ENV, **hp)
    assert isinstance(model.policy, LnMlpPolicy) and model.target_noise_sampling == "per_batch"
    # The converter (used for --trial-id) gives zoo keys the zoo accepts for ddpg_ext.
    converted = convert_ddpg_ext_params(FIXED_PARAMS)
    check_zoo_keys({"n_timesteps": 1, **converted}, "ddpg_ext")
    assert converted["callback"] == [
        {"sb3_ddpg_ext.zoo.ExplorationCallback": {"spec": "adaptive-param-naive_0.1,ou-stationary_0.25", "override": True}}
    ]


def test_converted_trial_params_run_through_the_zoo(tmp_path):
    """The --trial-id / --study-name route: converter output merged into the YAML entry, then the zoo builds it."""
    _, hp = resolve_variant(DEFAULT_HYPERPARAMS_FILE, ENV, "baseline")
    hp.update(convert_ddpg_ext_params({**FIXED_PARAMS, "net_arch": "small"}))  # as ExperimentManager.read_hyperparameters
    manager, model = setup_zoo_experiment(
        "ddpg_ext", ENV, hp, tmp_path, n_timesteps=N_STEPS, custom_hyperparams={"learning_starts": 100}
    )
    manager.learn(model)
    assert type(model) is ExtDDPG and isinstance(model.policy, LnMlpPolicy)
    assert (model.target_policy_noise, model.target_noise_sampling, model.target_noise_space) == (0.3, "per_batch", "action")
    assert _n_layer_norms(model.actor) == 2 and _n_layer_norms(model.critic) == 0
    # The zoo built NormalActionNoise from the baseline's noise_type; the trial's exploration replaced it (override).
    assert type(model.action_noise) is OrnsteinUhlenbeckActionNoise and model.action_noise._stationary_start
    np.testing.assert_allclose(model.action_noise._sigma, 0.25)
    (cb,) = _exploration_callbacks(manager)
    assert cb.param_noise_callback is not None and cb.param_noise_callback.sampling == "per_tensor"


def test_sampler_parameter_space_target_noise_has_its_own_range():
    params = {**FIXED_PARAMS, "target_noise": "parameter", "target_param_noise_std": 0.02}
    del params["target_policy_noise"]
    hp = sample_ddpg_ext_params(optuna.trial.FixedTrial(params), 1, 1, {"using_her_replay_buffer": False})
    assert (hp["target_noise_space"], hp["target_noise_sampling"]) == ("parameter", "per_batch")
    assert hp["target_policy_noise"] == 0.02 and hp["target_noise_clip"] == pytest.approx(0.05)
    with pytest.warns(UserWarning, match=r"target_param_noise_std.*high=0\.05.*low=0\.002"):  # FixedTrial: out of range
        sample_ddpg_ext_params(
            optuna.trial.FixedTrial({**params, "target_param_noise_std": 0.2}), 1, 1, {"using_her_replay_buffer": False}
        )


def test_exploration_spec_from_params():
    assert exploration_spec_from_params({"action_noise_type": "none", "param_noise": "none"}) == "none"
    assert exploration_spec_from_params({"action_noise_type": "pink", "action_noise_std": 0.3, "param_noise": "none"}) == (
        "pink_0.3"
    )
    with pytest.raises(ValueError, match="action_noise_type"):
        exploration_spec_from_params({"action_noise_type": "brown", "param_noise": "none"})
    with pytest.raises(ValueError, match="param_noise"):
        exploration_spec_from_params({"action_noise_type": "none", "param_noise": "all"})


@pytest.mark.slow
def test_real_optuna_study_of_two_tiny_trials(tmp_path):
    """The zoo's own hyperparameters_optimization() with our sampler; each trial's best model keeps its noise."""
    from stable_baselines3.common.utils import set_random_seed

    from sb3_ddpg_ext.zoo import _experiment_manager_class

    register_zoo()
    conf = tmp_path / "hp.yml"
    _, hp = resolve_variant(DEFAULT_HYPERPARAMS_FILE, ENV, "baseline")
    hp.update(n_timesteps=300, learning_starts=100, buffer_size=2000)
    conf.write_text(yaml.safe_dump({ENV: hp}))
    set_random_seed(0)
    manager = _experiment_manager_class()(
        None,
        "ddpg_ext",
        ENV,
        str(tmp_path / "logs"),
        n_timesteps=300,
        eval_freq=-1,
        n_eval_episodes=1,
        optimize_hyperparameters=True,
        n_trials=2,
        sampler="random",
        pruner="none",
        n_evaluations=1,
        optimization_log_path=str(tmp_path / "trials"),
        seed=0,
        verbose=0,
        config=str(conf),
        no_optim_plots=True,
    )
    assert manager.setup_experiment() is None
    manager.hyperparameters_optimization()
    reports = list((tmp_path / "logs" / "ddpg_ext").glob("report_*.pkl"))
    assert len(reports) == 1
    import pickle

    with reports[0].open("rb") as f:
        study = pickle.load(f)
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) == 2
    for trial in finished:
        spec = parse_exploration_spec(trial.user_attrs["exploration_spec"])
        model = ExtDDPG.load(tmp_path / "trials" / f"trial_{trial.number}" / "best_model.zip")
        assert model.policy_kwargs["layer_norm_actor"] is trial.params["layer_norm_actor"]
        noise_kind = None if spec.action_noise in (None, "none") else spec.action_noise.split("_")[0]
        expected_cls = {
            None: type(None),
            "normal": GaussianActionNoise,
            "ou": OrnsteinUhlenbeckActionNoise,
            "ou-stationary": OrnsteinUhlenbeckActionNoise,
            "pink": PinkActionNoise,
        }[noise_kind]
        assert type(model.action_noise) is expected_cls, (trial.params, model.action_noise)
        assert ("param_noise_state" in model.__dict__) is (spec.param_noise_stddev is not None)


# ------------------------------------------------------------------------------------------------ subprocess runs
def _python(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{args}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_train_and_enjoy_ddpg_ext_subprocess(tmp_path):
    """`python -m sb3_ddpg_ext.train --algo ddpg_ext` with a YAML setting the new arguments, then enjoy loads it."""
    _, hp = resolve_variant(DEFAULT_HYPERPARAMS_FILE, ENV, "tn_per_batch")
    hp.update(SMALL)
    hp["callback"] = [{"sb3_ddpg_ext.zoo.ExplorationCallback": {"spec": "adaptive-param_0.2,pink_0.3"}}]
    del hp["noise_type"], hp["noise_std"]
    (tmp_path / "hp.yml").write_text(yaml.safe_dump({ENV: hp}))
    _python(
        "-m", "sb3_ddpg_ext.train", "--algo", "ddpg_ext", "--env", ENV, "-n", "300", "--seed", "5",
        "-conf", "hp.yml", "--eval-freq", "200", "--eval-episodes", "1", "--num-threads", "1", "-f", "logs",
        cwd=tmp_path,
    )  # fmt: skip
    run = tmp_path / "logs" / "ddpg_ext" / f"{ENV}_1"
    for name in ["evaluations.npz", "0.monitor.csv", f"{ENV}.zip", f"{ENV}/config.yml", f"{ENV}/args.yml"]:
        assert (run / name).is_file(), name
    model = ExtDDPG.load(run / f"{ENV}.zip")
    assert (model.target_policy_noise, model.target_noise_sampling) == (0.2, "per_batch")
    assert type(model.action_noise) is PinkActionNoise
    assert "current_stddev" in model.param_noise_state
    assert len(np.load(run / "evaluations.npz")["timesteps"]) == 1
    proc = _python(
        "-m", "sb3_ddpg_ext.enjoy", "--algo", "ddpg_ext", "--env", ENV, "-f", "logs", "--exp-id", "1",
        "-n", "250", "--no-render",
        cwd=tmp_path,
    )  # fmt: skip
    assert "Mean reward" in proc.stdout or "Episode Reward" in proc.stdout
    pytest.importorskip("moviepy")
    _python(
        "-m", "sb3_ddpg_ext.zoo", "record_video", "--algo", "ddpg_ext", "--env", ENV, "-f", "logs", "--exp-id", "1",
        "-n", "50", "-o", "videos",
        cwd=tmp_path,
    )  # fmt: skip
    assert len(list((tmp_path / "videos").glob("*.mp4"))) == 1


@pytest.mark.slow
def test_plain_rl_zoo3_train_and_enjoy_with_variant_yaml(tmp_path):
    """Plain `python -m rl_zoo3.train --algo ddpg` runs a variant YAML (callback entry + dotted policy path)."""
    _, hp = resolve_variant(DEFAULT_HYPERPARAMS_FILE, ENV, "noise_param_naive_0.2")
    hp.update(SMALL)
    hp["policy"] = "sb3_ddpg_ext.policies.LnMlpPolicy"
    (tmp_path / "hp.yml").write_text(yaml.safe_dump({ENV: hp}))
    _python(
        "-m", "rl_zoo3.train", "--algo", "ddpg", "--env", ENV, "-n", "300", "--seed", "5", "-conf", "hp.yml",
        "--eval-freq", "-1", "--num-threads", "1", "-f", "logs",
        cwd=tmp_path,
    )  # fmt: skip
    run = tmp_path / "logs" / "ddpg" / f"{ENV}_1"
    model = SB3DDPG.load(run / f"{ENV}.zip")
    assert isinstance(model.policy, LnMlpPolicy)
    assert model.action_noise is None and "current_stddev" in model.param_noise_state
    _python(
        "-m", "rl_zoo3.enjoy", "--algo", "ddpg", "--env", ENV, "-f", "logs", "--exp-id", "1", "-n", "50",
        "--no-render",
        cwd=tmp_path,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------------ module layout
@pytest.mark.parametrize(
    ("name", "owner"),
    [
        ("ExplorationCallback", "sb3_ddpg_ext.callbacks"),
        ("ActionNoiseCallback", "sb3_ddpg_ext.callbacks"),
        ("EXPLORATION_SPEC_ATTR", "sb3_ddpg_ext.callbacks"),
        ("ExplorationSpec", "sb3_ddpg_ext.exploration"),
        ("parse_exploration_spec", "sb3_ddpg_ext.exploration"),
        ("PARAM_NOISE_PREFIXES", "sb3_ddpg_ext.exploration"),
        ("SPEC_PLACEHOLDERS", "sb3_ddpg_ext.noise"),
        ("resolve_variant", "sb3_ddpg_ext.variants"),
        ("merge_hyperparams", "sb3_ddpg_ext.variants"),
    ],
)
def test_zoo_paths_name_the_owning_modules_objects(name, owner):
    import importlib

    import sb3_ddpg_ext.zoo as zoo

    assert getattr(zoo, name) is getattr(importlib.import_module(owner), name)


def test_dotted_callback_paths_of_yamls_resolve_to_the_callbacks_module():
    """The zoo builds ``callback:`` entries from dotted paths, as in hyperparams/ and results/."""
    from rl_zoo3.utils import get_callback_list

    from sb3_ddpg_ext import callbacks, divergence

    built = get_callback_list(
        {
            "callback": [
                {"sb3_ddpg_ext.zoo.ExplorationCallback": {"spec": "adaptive-param_0.2,normal_0.1"}},
                {"sb3_ddpg_ext.zoo.ActionNoiseCallback": {"spec": "pink_0.3"}},
                {"sb3_ddpg_ext.divergence.DivergenceGuardCallback": {"check_freq": 10}},
                "sb3_ddpg_ext.callbacks.ParameterNoiseCallback",
            ]
        }
    )
    assert [type(cb) for cb in built] == [
        callbacks.ExplorationCallback,
        callbacks.ActionNoiseCallback,
        callbacks.DivergenceGuardCallback,
        callbacks.ParameterNoiseCallback,
    ]
    assert divergence.read_divergence_marker is callbacks.read_divergence_marker


def test_format_exploration_spec_round_trips():
    from sb3_ddpg_ext.exploration import format_exploration_spec

    assert format_exploration_spec("normal_0.1", "per_element", 0.2) == "adaptive-param_0.2,normal_0.1"
    assert format_exploration_spec(None, "per_tensor", 0.123456789) == "adaptive-param-naive_0.123457"
    assert format_exploration_spec("pink_0.3") == "pink_0.3"
    assert format_exploration_spec() == "none" == format_exploration_spec("none")
    spec = parse_exploration_spec(format_exploration_spec("ou_0.2", "single", 0.1))
    assert spec == ExplorationSpec("ou_0.2", 0.1, "single")
    with pytest.raises(ValueError, match="param_noise_sampling must be one of"):
        format_exploration_spec(None, "per_row", 0.2)
    with pytest.raises(ValueError, match="needs param_noise_stddev"):
        format_exploration_spec(None, "per_element")
    with pytest.raises(ValueError, match="invalid action-noise part"):
        format_exploration_spec("ou_x")


# ------------------------------------------------------------------------------------------------ optional deps
def _hide_module(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make ``name`` and its submodules unimportable, as when the package is not installed."""
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setitem(sys.modules, name, None)


def test_missing_rl_zoo3_names_the_zoo_extra(monkeypatch):
    import sb3_ddpg_ext.zoo as zoo

    _hide_module(monkeypatch, "rl_zoo3")
    for call in (zoo.register_zoo, lambda: zoo.algo_class("ddpg"), lambda: zoo.train(["--help"])):
        with pytest.raises(ModuleNotFoundError, match=r'needs \'rl_zoo3\'.*pip install "sb3_ddpg_ext\[zoo\]"') as info:
            call()
        assert info.value.name is not None and info.value.name.startswith("rl_zoo3")
    # what does not need rl-zoo3 still works
    assert zoo.parse_exploration_spec("pink_0.3").action_noise == "pink_0.3"


@pytest.mark.parametrize(
    ("module", "extra"),
    [
        ("optuna", "zoo"),
        ("sb3_contrib", "zoo"),
        ("pandas", "analysis"),
        ("pybullet_envs_gymnasium", "bullet"),
        ("Box2D", "box2d"),
        ("mujoco", "mujoco"),
        ("tensorboard", "tensorboard"),
        ("ray", "ray"),
        ("submitit", "slurm"),
    ],
)
def test_import_optional_names_the_extra(monkeypatch, module, extra):
    from sb3_ddpg_ext.extras import import_optional

    _hide_module(monkeypatch, module)
    with pytest.raises(ModuleNotFoundError, match=rf'pip install "sb3_ddpg_ext\[{extra}\]"'):
        import_optional(module, "this test")


def test_import_optional_leaves_other_missing_modules_alone(monkeypatch):
    from sb3_ddpg_ext.extras import import_optional

    _hide_module(monkeypatch, "not_an_extra_module")
    with pytest.raises(ModuleNotFoundError) as info:
        import_optional("not_an_extra_module", "this test")
    assert "sb3_ddpg_ext[" not in str(info.value)


def test_sampler_imports_without_optuna(monkeypatch):
    import importlib

    import sb3_ddpg_ext.sampler as sampler

    _hide_module(monkeypatch, "optuna")
    reloaded = importlib.reload(sampler)
    try:
        assert (
            reloaded.exploration_spec_from_params(
                {"action_noise_type": "normal", "action_noise_std": 0.1, "param_noise": "per_tensor", "param_noise_std": 0.2}
            )
            == "adaptive-param-naive_0.2,normal_0.1"
        )
    finally:
        monkeypatch.undo()
        importlib.reload(sampler)
