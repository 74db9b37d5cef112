"""Tests of sb3_ddpg_ext.policies.LnMlpPolicy (issue 3: layer-normalised actor and critic)."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import torch.nn.functional as F
from stable_baselines3 import DDPG, TD3
from stable_baselines3.td3.policies import MlpPolicy
from torch import nn

from sb3_ddpg_ext.policies import LateActionQNetwork, LnActor, LnContinuousCritic, LnMlpPolicy

th.set_num_threads(1)

OBS_SPACE = gym.spaces.Box(low=-5.0, high=5.0, shape=(5,), dtype=np.float32)
ACT_SPACE = gym.spaces.Box(low=-2.0, high=2.0, shape=(2,), dtype=np.float32)
FLAG_COMBOS = list(itertools.product([True, False], repeat=2))  # (layer_norm_actor, layer_norm_critic)


def lr_schedule(_: float) -> float:
    return 1e-3


def make_policy(cls: Any = LnMlpPolicy, seed: int = 0, **kwargs: Any) -> Any:
    th.manual_seed(seed)
    kwargs.setdefault("net_arch", [16, 8])
    return cls(OBS_SPACE, ACT_SPACE, lr_schedule, **kwargs)


def random_obs_actions(n: int = 32, seed: int = 1) -> tuple[th.Tensor, th.Tensor]:
    gen = th.Generator().manual_seed(seed)
    obs = th.randn(n, OBS_SPACE.shape[0], generator=gen) * 3
    actions = th.rand(n, ACT_SPACE.shape[0], generator=gen) * 2 - 1
    return obs, actions


def expected_hidden(arch: list[int], layer_norm: bool, act: type[nn.Module] = nn.ReLU) -> list[tuple[type, int | None]]:
    """(module type, width) sequence of the hidden part: Linear -> [LayerNorm] -> activation per layer."""
    seq: list[tuple[type, int | None]] = []
    for width in arch:
        seq.append((nn.Linear, width))
        if layer_norm:
            seq.append((nn.LayerNorm, width))
        seq.append((act, None))
    return seq


def describe(modules: Any) -> list[tuple[type, int | None]]:
    out: list[tuple[type, int | None]] = []
    for m in modules:
        if isinstance(m, nn.Linear):
            out.append((nn.Linear, m.out_features))
        elif isinstance(m, nn.LayerNorm):
            out.append((nn.LayerNorm, int(m.normalized_shape[0])))
        else:
            out.append((type(m), None))
    return out


def count_layer_norms(module: nn.Module) -> int:
    return sum(isinstance(m, nn.LayerNorm) for m in module.modules())


# ---------------------------------------------------------------------------------------------------------------------
# Module structure


@pytest.mark.parametrize(("ln_actor", "ln_critic"), FLAG_COMBOS)
def test_structure_all_flag_combinations(ln_actor: bool, ln_critic: bool) -> None:
    # Different actor/critic depths so that a swapped flag or arch would show in the counts
    pi_arch, qf_arch = [16], [12, 8, 4]
    policy = make_policy(
        net_arch={"pi": pi_arch, "qf": qf_arch}, n_critics=2, layer_norm_actor=ln_actor, layer_norm_critic=ln_critic
    )
    for actor in (policy.actor, policy.actor_target):
        assert isinstance(actor, LnActor)
        expected = [*expected_hidden(pi_arch, ln_actor), (nn.Linear, ACT_SPACE.shape[0]), (nn.Tanh, None)]
        assert describe(actor.mu) == expected
        assert count_layer_norms(actor) == (len(pi_arch) if ln_actor else 0)
    for critic in (policy.critic, policy.critic_target):
        assert isinstance(critic, LnContinuousCritic)
        assert len(critic.q_networks) == 2
        for q_net in critic.q_networks:
            assert describe(q_net) == [*expected_hidden(qf_arch, ln_critic), (nn.Linear, 1)]
            # Input of the first layer: observation features + action (SB3 critic)
            assert isinstance(q_net, nn.Sequential)
            assert q_net[0].in_features == OBS_SPACE.shape[0] + ACT_SPACE.shape[0]
        assert count_layer_norms(critic) == (2 * len(qf_arch) if ln_critic else 0)


def test_activation_fn_and_list_net_arch() -> None:
    policy = make_policy(net_arch=[10, 6], activation_fn=nn.Tanh, n_critics=1)
    assert describe(policy.actor.mu) == [*expected_hidden([10, 6], True, nn.Tanh), (nn.Linear, 2), (nn.Tanh, None)]
    assert describe(policy.critic.qf0) == [*expected_hidden([10, 6], True, nn.Tanh), (nn.Linear, 1)]
    assert len(policy.critic.q_networks) == 1


def test_default_net_arch_is_mlp_policy_default() -> None:
    policy = LnMlpPolicy(OBS_SPACE, ACT_SPACE, lr_schedule)
    assert [m.out_features for m in policy.actor.mu if isinstance(m, nn.Linear)] == [400, 300, 2]
    q_net = policy.critic.q_networks[0]
    assert [m.normalized_shape[0] for m in q_net.modules() if isinstance(m, nn.LayerNorm)] == [400, 300]


@pytest.mark.parametrize(("ln_actor", "ln_critic"), FLAG_COMBOS)
def test_forward_matches_manual_linear_layernorm_relu(ln_actor: bool, ln_critic: bool) -> None:
    """The forward pass is Linear -> LayerNorm -> ReLU per hidden layer, output not normalised."""
    policy = make_policy(net_arch=[16, 8], n_critics=1, layer_norm_actor=ln_actor, layer_norm_critic=ln_critic)
    # Non-trivial LayerNorm affine parameters, so that a missing/misplaced LayerNorm cannot go unnoticed
    with th.no_grad():
        for m in policy.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    obs, actions = random_obs_actions()

    def manual(seq: nn.Sequential, x: th.Tensor, layer_norm: bool) -> th.Tensor:
        linears = [m for m in seq if isinstance(m, nn.Linear)]
        norms = [m for m in seq if isinstance(m, nn.LayerNorm)]
        for i, lin in enumerate(linears[:-1]):
            x = F.linear(x, lin.weight, lin.bias)
            if layer_norm:
                x = F.layer_norm(x, norms[i].normalized_shape, norms[i].weight, norms[i].bias, norms[i].eps)
            x = F.relu(x)
        return F.linear(x, linears[-1].weight, linears[-1].bias)

    with th.no_grad():
        th.testing.assert_close(policy.actor(obs), th.tanh(manual(policy.actor.mu, obs, ln_actor)))
        (q,) = policy.critic(obs, actions)
        th.testing.assert_close(q, manual(policy.critic.qf0, th.cat([obs, actions], dim=1), ln_critic))


# ---------------------------------------------------------------------------------------------------------------------
# Equivalence with MlpPolicy when both flags are off


@pytest.mark.parametrize("share_features_extractor", [False, True])
@pytest.mark.parametrize("net_arch", [[16, 8], {"pi": [16], "qf": [12, 8]}])
def test_flags_off_equals_mlp_policy(net_arch: Any, share_features_extractor: bool) -> None:
    kwargs = {"net_arch": net_arch, "n_critics": 2, "share_features_extractor": share_features_extractor}
    mlp = make_policy(MlpPolicy, seed=3, **kwargs)
    ln_off = make_policy(LnMlpPolicy, seed=3, layer_norm_actor=False, layer_norm_critic=False, **kwargs)
    mlp_sd, ln_sd = mlp.state_dict(), ln_off.state_dict()
    assert list(mlp_sd) == list(ln_sd)
    assert all(mlp_sd[k].shape == ln_sd[k].shape for k in mlp_sd)
    # Same construction order: the same seed gives the same initial weights
    assert all(th.equal(mlp_sd[k], ln_sd[k]) for k in mlp_sd)

    # MlpPolicy weights from another seed load strictly and give identical outputs everywhere
    other = make_policy(MlpPolicy, seed=4, **kwargs)
    ln_off.load_state_dict(other.state_dict(), strict=True)
    obs, actions = random_obs_actions()
    with th.no_grad():
        th.testing.assert_close(ln_off.actor(obs), other.actor(obs), rtol=0, atol=0)
        th.testing.assert_close(ln_off.actor_target(obs), other.actor_target(obs), rtol=0, atol=0)
        th.testing.assert_close(ln_off(obs), other(obs), rtol=0, atol=0)
        for a, b in zip(ln_off.critic(obs, actions), other.critic(obs, actions)):
            th.testing.assert_close(a, b, rtol=0, atol=0)
        for a, b in zip(ln_off.critic_target(obs, actions), other.critic_target(obs, actions)):
            th.testing.assert_close(a, b, rtol=0, atol=0)
        th.testing.assert_close(ln_off.critic.q1_forward(obs, actions), other.critic.q1_forward(obs, actions))
    if share_features_extractor:
        assert ln_off.critic.features_extractor is ln_off.actor.features_extractor


def test_flags_on_adds_only_layernorm_parameters() -> None:
    mlp = make_policy(MlpPolicy, net_arch=[16, 8])
    ln = make_policy(LnMlpPolicy, net_arch=[16, 8])

    def linear_shapes(policy: Any) -> list[tuple[str, list[tuple[int, ...]]]]:
        return [
            (name, [tuple(p.shape) for p in m.parameters()]) for name, m in policy.named_modules() if isinstance(m, nn.Linear)
        ]

    # Same Linear layers (same shapes, same order); the names differ only by the inserted LayerNorm indices
    assert [s for _, s in linear_shapes(mlp)] == [s for _, s in linear_shapes(ln)]
    ln_params = [p for m in ln.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()]
    # 2 hidden layers x (weight, bias) x (actor, actor_target, 2 critics, 2 target critics)
    assert len(ln_params) == 2 * 2 * 6
    assert sum(p.numel() for p in ln.parameters()) == sum(p.numel() for p in mlp.parameters()) + sum(
        p.numel() for p in ln_params
    )
    with pytest.raises(RuntimeError):
        ln.load_state_dict(mlp.state_dict(), strict=True)


# ---------------------------------------------------------------------------------------------------------------------
# Optimizer, parameter bookkeeping, polyak averaging


def test_optimizer_settings_and_layernorm_params_are_optimised() -> None:
    policy = make_policy(net_arch=[16, 8], optimizer_class=th.optim.RMSprop, optimizer_kwargs={"alpha": 0.9})
    for net in (policy.actor, policy.critic):
        assert isinstance(net.optimizer, th.optim.RMSprop)
        assert net.optimizer.defaults["alpha"] == 0.9
        optimised = {id(p) for group in net.optimizer.param_groups for p in group["params"]}
        ln_params = [p for m in net.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()]
        assert ln_params
        assert all(id(p) in optimised for p in ln_params)
    # Targets are in eval mode, as in TD3Policy
    assert not policy.actor_target.training
    assert not policy.critic_target.training


@pytest.mark.parametrize("algo", [DDPG, TD3])
def test_polyak_update_tracks_layernorm_params(algo: Any) -> None:
    tau = 0.1
    model = algo(
        LnMlpPolicy,
        "Pendulum-v1",
        policy_kwargs={"net_arch": [16, 16]},
        learning_starts=64,
        batch_size=32,
        tau=tau,
        seed=0,
    )
    model.learn(total_timesteps=64)  # fills the buffer, no gradient step yet (num_timesteps <= learning_starts)
    pairs = []
    gen = th.Generator().manual_seed(0)
    for online, target in ((model.actor, model.actor_target), (model.critic, model.critic_target)):
        online_ln = [m for m in online.modules() if isinstance(m, nn.LayerNorm)]
        target_ln = [m for m in target.modules() if isinstance(m, nn.LayerNorm)]
        assert len(online_ln) == len(target_ln) > 0
        for m_on, m_tg in zip(online_ln, target_ln):
            for p_on, p_tg in ((m_on.weight, m_tg.weight), (m_on.bias, m_tg.bias)):
                # Move the online LN params far from the target ones, so tracking is visible
                with th.no_grad():
                    p_on.add_(th.randn(p_on.shape, generator=gen))
                pairs.append((p_on, p_tg, p_tg.detach().clone()))
    # Targets are updated once every policy_delay gradient steps (DDPG: 1, TD3: 2): exactly one polyak step here,
    # target <- (1 - tau) target + tau online, with the online params after the last gradient step
    model.train(gradient_steps=model.policy_delay, batch_size=32)
    assert model._n_updates == model.policy_delay
    for p_on, p_tg, before in pairs:
        expected = (1 - tau) * before + tau * p_on.detach()
        th.testing.assert_close(p_tg.detach(), expected)
        # ... which is not what an untracked (frozen) target would hold
        assert not th.allclose(p_tg.detach(), before)


# ---------------------------------------------------------------------------------------------------------------------
# Save / load


@pytest.mark.parametrize(("ln_actor", "ln_critic"), FLAG_COMBOS)
def test_policy_save_load_round_trip(tmp_path: Path, ln_actor: bool, ln_critic: bool) -> None:
    policy = make_policy(net_arch=[16, 8], layer_norm_actor=ln_actor, layer_norm_critic=ln_critic)
    with th.no_grad():
        for m in policy.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
    path = tmp_path / "policy.pt"
    policy.save(str(path))
    loaded = LnMlpPolicy.load(str(path))
    assert (loaded.layer_norm_actor, loaded.layer_norm_critic) == (ln_actor, ln_critic)
    assert describe(loaded.actor.mu) == describe(policy.actor.mu)
    assert describe(loaded.critic.qf1) == describe(policy.critic.qf1)
    obs, actions = random_obs_actions()
    with th.no_grad():
        th.testing.assert_close(loaded(obs), policy(obs), rtol=0, atol=0)
        for a, b in zip(loaded.critic(obs, actions), policy.critic(obs, actions)):
            th.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("critic_late_action", [False, True])
def test_model_save_load_round_trip(tmp_path: Path, critic_late_action: bool) -> None:
    policy_kwargs = {
        "net_arch": [16, 16],
        "layer_norm_actor": True,
        "layer_norm_critic": False,
        "critic_late_action": critic_late_action,
    }
    model = DDPG(LnMlpPolicy, "Pendulum-v1", policy_kwargs=policy_kwargs, learning_starts=32, batch_size=16, seed=1)
    model.learn(total_timesteps=48)  # a few gradient steps so that weights differ from init
    model.save(tmp_path / "model.zip")
    loaded = DDPG.load(tmp_path / "model.zip")
    assert isinstance(loaded.policy, LnMlpPolicy)
    assert loaded.policy.critic_late_action == critic_late_action
    assert count_layer_norms(loaded.policy.actor) == 2
    assert count_layer_norms(loaded.policy.critic) == 0
    obs = np.random.default_rng(0).uniform(-1, 1, size=(20, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    obs_t, _ = random_obs_actions()
    obs_t = obs_t[:, :3]
    act_t = th.as_tensor(model.predict(obs, deterministic=True)[0][:1]).repeat(32, 1)
    with th.no_grad():
        for a, b in zip(loaded.critic_target(obs_t, act_t), model.critic_target(obs_t, act_t)):
            th.testing.assert_close(a, b, rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------------------------------
# Baselines-style critic (action joins after the first hidden layer)


@pytest.mark.parametrize("ln_critic", [True, False])
def test_late_action_critic_structure_and_forward(ln_critic: bool) -> None:
    policy = make_policy(net_arch=[16, 8], n_critics=2, layer_norm_critic=ln_critic, critic_late_action=True)
    for critic in (policy.critic, policy.critic_target):
        for q_net in critic.q_networks:
            assert isinstance(q_net, LateActionQNetwork)
            assert describe(q_net.obs_net) == expected_hidden([16], ln_critic)
            assert q_net.obs_net[0].in_features == OBS_SPACE.shape[0]
            assert q_net.joint_net[0].in_features == 16 + ACT_SPACE.shape[0]
            assert describe(q_net.joint_net) == [*expected_hidden([8], ln_critic), (nn.Linear, 1)]
    obs, actions = random_obs_actions()
    q_net = policy.critic.qf0
    with th.no_grad():
        h = q_net.obs_net(obs)
        expected = q_net.joint_net(th.cat([h, actions], dim=1))
        (q0, _) = policy.critic(obs, actions)
        th.testing.assert_close(q0, expected)
    # The action matters: Q has a non-zero gradient with respect to it
    actions = actions.clone().requires_grad_(True)
    policy.critic.q1_forward(obs, actions).sum().backward()
    assert actions.grad is not None
    assert actions.grad.abs().sum() > 0


def test_late_action_single_hidden_layer() -> None:
    policy = make_policy(net_arch=[8], critic_late_action=True)
    q_net = policy.critic.qf0
    assert describe(q_net.joint_net) == [(nn.Linear, 1)]
    assert q_net.joint_net[0].in_features == 8 + ACT_SPACE.shape[0]


# ---------------------------------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("name", ["layer_norm_actor", "layer_norm_critic", "critic_late_action"])
@pytest.mark.parametrize("value", ["False", None, 1])
def test_bad_flag_raises_value_error(name: str, value: Any) -> None:
    with pytest.raises(ValueError, match=name):
        make_policy(**{name: value})


def test_numpy_bool_flag_accepted() -> None:
    policy = make_policy(layer_norm_actor=np.bool_(False))
    assert policy.layer_norm_actor is False
    assert count_layer_norms(policy.actor) == 0


def test_late_action_without_hidden_layer_raises() -> None:
    with pytest.raises(ValueError, match="critic_late_action"):
        make_policy(net_arch={"pi": [8], "qf": []}, critic_late_action=True)


# ---------------------------------------------------------------------------------------------------------------------
# Names usable from a zoo YAML


def test_dotted_path_resolves_in_rl_zoo() -> None:
    from rl_zoo3.utils import get_class_by_name

    assert get_class_by_name("sb3_ddpg_ext.policies.LnMlpPolicy") is LnMlpPolicy


def test_package_level_export() -> None:
    import sb3_ddpg_ext

    assert sb3_ddpg_ext.LnMlpPolicy is LnMlpPolicy
    from rl_zoo3.utils import get_class_by_name

    assert get_class_by_name("sb3_ddpg_ext.LnMlpPolicy") is LnMlpPolicy


def test_alias_in_our_ddpg() -> None:
    ddpg_mod = pytest.importorskip("sb3_ddpg_ext.ddpg")
    model = ddpg_mod.DDPG("LnMlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8, 8], "layer_norm_critic": False})
    assert isinstance(model.policy, LnMlpPolicy)
    assert count_layer_norms(model.policy.actor) == 2
    assert count_layer_norms(model.policy.critic) == 0


# ---------------------------------------------------------------------------------------------------------------------
# Real training: a few hundred steps of SB3's DDPG and TD3 on Pendulum-v1 and a MuJoCo v5 task


def check_training(algo: Any, env_id: str, ln_actor: bool, ln_critic: bool, total: int = 200, starts: int = 100) -> None:
    model = algo(
        LnMlpPolicy,
        env_id,
        policy_kwargs={"net_arch": [32, 32], "layer_norm_actor": ln_actor, "layer_norm_critic": ln_critic},
        learning_starts=starts,
        batch_size=64,
        seed=0,
    )
    init = {k: v.clone() for k, v in model.policy.state_dict().items()}
    model.learn(total_timesteps=total)
    # One gradient step per env step after learning_starts (train_freq=1, gradient_steps=1)
    assert model._n_updates == total - starts
    sd = model.policy.state_dict()
    assert all(th.isfinite(v).all() for v in sd.values())
    # Every parameter of the online and target nets was trained / tracked, LayerNorm gains and biases included
    changed = {k: not th.equal(init[k], sd[k]) for k in sd}
    assert all(changed.values()), [k for k, c in changed.items() if not c]
    assert sum("actor" in k and v.dim() == 1 and k.endswith(".weight") for k, v in sd.items()) == (4 if ln_actor else 0)
    assert np.isfinite(model.logger.name_to_value.get("train/critic_loss", 0.0))


@pytest.mark.parametrize(("ln_actor", "ln_critic"), FLAG_COMBOS)
@pytest.mark.parametrize("algo", [DDPG, TD3])
@pytest.mark.parametrize("env_id", ["Pendulum-v1", "InvertedPendulum-v5"])
@pytest.mark.slow
def test_learns_few_hundred_steps(env_id: str, algo: Any, ln_actor: bool, ln_critic: bool) -> None:
    check_training(algo, env_id, ln_actor, ln_critic)


def test_learns_smoke_ddpg_pendulum() -> None:
    check_training(DDPG, "Pendulum-v1", True, True, total=150, starts=50)


@pytest.mark.slow
def test_rl_zoo_train_with_dotted_policy_path(tmp_path: Path) -> None:
    """rl_zoo3's train CLI builds the model from the dotted path in the ``policy`` hyperparameter."""
    cmd = [
        sys.executable,
        "-m",
        "rl_zoo3.train",
        "--algo",
        "ddpg",
        "--env",
        "Pendulum-v1",
        "-n",
        "150",
        "--seed",
        "0",
        "--eval-freq",
        "-1",
        "--log-folder",
        str(tmp_path),
        "--hyperparams",
        "policy:'sb3_ddpg_ext.policies.LnMlpPolicy'",
        "learning_starts:50",
        "policy_kwargs:dict(net_arch=[16,16],layer_norm_critic=False)",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={"OMP_NUM_THREADS": "1", **_env()})
    assert res.returncode == 0, res.stderr[-3000:]
    (zip_path,) = tmp_path.glob("ddpg/Pendulum-v1_1/Pendulum-v1.zip")
    loaded = DDPG.load(zip_path)
    assert isinstance(loaded.policy, LnMlpPolicy)
    assert count_layer_norms(loaded.policy.actor) == 2
    assert count_layer_norms(loaded.policy.critic) == 0


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)
