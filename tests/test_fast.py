"""Tests for the fast update path (issue 9): exact mode == SB3 bit for bit, fast mode within a stated tolerance,
exact building blocks, fallbacks, and vanilla-SB3 loading of our saved models."""

from __future__ import annotations

import copy
import sys

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import DDPG as SB3DDPG
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.utils import polyak_update
from torch import nn

from sb3_ddpg_ext.ddpg import DDPG
from sb3_ddpg_ext.fast import (
    ManualMLP,
    TorchReplaySampler,
    foreach_polyak,
    frozen,
    fused_adam,
    fused_adam_step,
    lerp_polyak,
    manual_networks,
    own_parameters,
    supports_fast_sampling,
)
from sb3_ddpg_ext.policies import LnMlpPolicy, ln_mlp

# Fast mode = exact mode + fused Adam, whose per-step result differs from single-tensor Adam by float32 rounding
# (~1e-7 relative). Measured max |difference| after 40 updates of these [32, 32] nets: ~1e-7 (parameters are O(1)).
# 1e-5 leaves two orders of magnitude for accumulation while still catching any real numerical difference (one wrong
# update moves parameters by ~lr = 1e-3).
FAST_TOL = 1e-5

CONFIGS = {
    "plain": ("MlpPolicy", {}, {}),
    "layer_norm": (LnMlpPolicy, {}, {}),
    "target_noise": ("MlpPolicy", {}, {"target_policy_noise": 0.2, "target_noise_clip": 0.5}),
    "n_critics_2": ("MlpPolicy", {"n_critics": 2}, {}),
    "n_critics_2_target_noise_ln": (LnMlpPolicy, {"n_critics": 2}, {"target_policy_noise": 0.2, "target_noise_clip": 0.5}),
    # not covered by the hand-written backward: fast mode falls back to the autograd update
    "late_action": (LnMlpPolicy, {"critic_late_action": True}, {}),
}


def build(cls, policy, policy_kwargs, algo_kwargs, **extra):
    model = cls(
        policy,
        "Pendulum-v1",
        learning_starts=100,
        batch_size=32,
        seed=7,
        policy_kwargs={"net_arch": [32, 32], **policy_kwargs},
        **extra,
    )
    for name, value in algo_kwargs.items():  # SB3's DDPG has no constructor argument for these: set the attributes
        setattr(model, name, value)
    return model


def trained(cls, config, n_updates=40, **extra):
    """Fill the buffer (100 random steps, no update), then n_updates gradient steps on fixed numpy/torch seeds."""
    policy, policy_kwargs, algo_kwargs = CONFIGS[config]
    model = build(cls, policy, policy_kwargs, algo_kwargs, **extra)
    model.learn(100)
    np.random.seed(123)
    th.manual_seed(123)
    model.train(n_updates, batch_size=32)
    return model


def params(model) -> list[th.Tensor]:
    return [p.detach().clone() for p in model.policy.parameters()]


def max_diff(a, b) -> float:
    return max((p - q).abs().max().item() for p, q in zip(params(a), params(b), strict=True))


@pytest.mark.parametrize("config", list(CONFIGS))
def test_exact_mode_equals_sb3_bit_for_bit(config):
    ref = trained(SB3DDPG, config)
    ours = trained(DDPG, config, update_mode="exact")
    assert ours._n_updates == ref._n_updates == 40
    assert max_diff(ref, ours) == 0.0
    for opt_ref, opt_ours in ((ref.actor.optimizer, ours.actor.optimizer), (ref.critic.optimizer, ours.critic.optimizer)):
        for s_ref, s_ours in zip(opt_ref.state_dict()["state"].values(), opt_ours.state_dict()["state"].values()):
            assert th.equal(s_ref["exp_avg"], s_ours["exp_avg"]) and th.equal(s_ref["exp_avg_sq"], s_ours["exp_avg_sq"])


@pytest.mark.parametrize("config", list(CONFIGS))
def test_fast_mode_within_tolerance_of_sb3(config):
    ref = trained(SB3DDPG, config)
    ours = trained(DDPG, config, update_mode="fast")
    assert ours._sampler is not None, "plain ReplayBuffer: the fast sampler is used"
    if config == "late_action":
        assert ours.fast_path_fallback is not None and "critic networks" in ours.fast_path_fallback
    else:
        assert ours.fast_path_fallback is None, "the hand-written backward covers these policies"
    diff = max_diff(ref, ours)
    assert diff < FAST_TOL, diff
    # and the run did move the parameters far more than the tolerance (the comparison is not vacuous)
    start = build(DDPG, *CONFIGS[config])
    assert max_diff(start, ours) > 100 * FAST_TOL


def test_fast_mode_falls_back_for_n_step_buffer():
    """n-step returns use SB3's NStepReplayBuffer: fast mode must use its sampler (same batches), not ours."""
    ref = trained(SB3DDPG, "plain", n_steps=3)
    ours = trained(DDPG, "plain", n_steps=3, update_mode="fast")
    assert ours._sampler is None
    assert max_diff(ref, ours) < FAST_TOL
    exact = trained(DDPG, "plain", n_steps=3, update_mode="exact")
    assert max_diff(ref, exact) == 0.0


def test_fast_mode_non_adam_optimizer():
    """An optimizer fused Adam cannot stand in for (SGD) is left alone: only the hand-written backward's float32
    rounding separates fast mode from SB3 (measured 7e-12 after 30 SGD updates)."""
    kwargs = {"policy_kwargs": {"net_arch": [32, 32], "optimizer_class": th.optim.SGD}}
    models = []
    for cls, extra in ((SB3DDPG, {}), (DDPG, {"update_mode": "fast"})):
        model = cls("MlpPolicy", "Pendulum-v1", learning_starts=100, batch_size=32, seed=7, **kwargs, **extra)
        model.learn(100)
        np.random.seed(1)
        model.train(30, batch_size=32)
        models.append(model)
    assert models[1].fast_path_fallback is None
    assert max_diff(*models) < FAST_TOL


def test_exact_mode_with_parameter_noise_callback_equals_sb3():
    """Parameter-space exploration only changes acting: with the same callback, exact mode == SB3 over a full learn()."""
    from sb3_ddpg_ext.callbacks import ParameterNoiseCallback

    results = []
    for cls, extra in ((SB3DDPG, {}), (DDPG, {"update_mode": "exact"})):
        model = cls("LnMlpPolicy" if cls is DDPG else LnMlpPolicy, "Pendulum-v1", learning_starts=50, batch_size=32, seed=5,
                    policy_kwargs={"net_arch": [32, 32]}, **extra)  # fmt: skip
        callback = ParameterNoiseCallback(adaptation_interval=20, seed=1)
        model.learn(150, callback=callback)
        assert callback.n_adaptations > 0 and model._n_updates == 100
        results.append(model)
    assert max_diff(*results) == 0.0


def test_fast_mode_runs_parameter_noise_callback():
    from sb3_ddpg_ext.callbacks import ParameterNoiseCallback

    model = DDPG("LnMlpPolicy", "Pendulum-v1", learning_starts=50, batch_size=32, seed=5, policy_kwargs={"net_arch": [32, 32]})
    callback = ParameterNoiseCallback(adaptation_interval=20, seed=1)
    model.learn(120, callback=callback)
    assert model.update_mode == "fast" and model._sampler is not None
    assert callback.n_adaptations > 0 and model._n_updates == 70
    assert "_sample_action" not in model.__dict__, "the callback's acting hook is removed after learn()"


# ----------------------------------------------------------------------------- building blocks
@pytest.mark.parametrize("n_envs, optimize_memory_usage, full", [(1, False, False), (2, False, True), (3, True, True)])
def test_torch_sampler_matches_replay_buffer_sample(n_envs, optimize_memory_usage, full):
    rng = np.random.default_rng(0)
    obs_space = spaces.Box(-5, 5, shape=(4,), dtype=np.float32)
    act_space = spaces.Box(-1, 1, shape=(2,), dtype=np.float32)
    buffer = ReplayBuffer(
        50, obs_space, act_space, device="cpu", n_envs=n_envs, optimize_memory_usage=optimize_memory_usage,
        handle_timeout_termination=not optimize_memory_usage,
    )  # fmt: skip
    for _ in range(60 if full else 20):
        done = rng.random(n_envs) < 0.2
        infos = [{"TimeLimit.truncated": bool(rng.random() < 0.5)} for _ in range(n_envs)]
        buffer.add(
            rng.normal(size=(n_envs, 4)).astype(np.float32), rng.normal(size=(n_envs, 4)).astype(np.float32),
            rng.uniform(-1, 1, size=(n_envs, 2)).astype(np.float32), rng.normal(size=n_envs).astype(np.float32), done, infos,
        )  # fmt: skip
    sampler = TorchReplaySampler(buffer)
    for _ in range(3):
        np.random.seed(11)
        expected = buffer.sample(64)
        state_after_sb3 = np.random.get_state()[1].copy()
        np.random.seed(11)
        got = sampler.sample(64)
        assert np.array_equal(np.random.get_state()[1], state_after_sb3), "same numpy RNG consumption as SB3"
        for name in ("observations", "actions", "next_observations", "dones", "rewards"):
            assert getattr(got, name).dtype == getattr(expected, name).dtype
            assert th.equal(getattr(got, name), getattr(expected, name)), name
        assert got.discounts is None
    # views stay valid as the buffer fills: a new transition is visible without rebuilding
    assert sampler.is_valid_for(buffer)
    buffer.observations[0] += 1.0
    assert th.equal(sampler._obs[0:n_envs], th.from_numpy(buffer.observations[0]))


def test_supports_fast_sampling_only_plain_buffers():
    from stable_baselines3.common.buffers import DictReplayBuffer, NStepReplayBuffer

    box = spaces.Box(-1, 1, (2,))
    assert supports_fast_sampling(ReplayBuffer(10, box, box))
    assert not supports_fast_sampling(ReplayBuffer(10, box, box), vec_normalize_env=object())
    assert not supports_fast_sampling(NStepReplayBuffer(10, box, box))
    assert not supports_fast_sampling(DictReplayBuffer(10, spaces.Dict({"a": box}), box))
    with pytest.raises(ValueError, match="buffer"):
        TorchReplaySampler(NStepReplayBuffer(10, box, box))  # type: ignore[arg-type]


def test_foreach_polyak_equals_sb3_polyak_bit_for_bit():
    gen = th.Generator().manual_seed(0)
    src = [th.randn(17, 5, generator=gen), th.randn(5, generator=gen), th.randn(300, 400, generator=gen)]
    tgt_a = [th.randn(t.shape, generator=gen) for t in src]
    tgt_b = [t.clone() for t in tgt_a]
    for tau in (0.005, 0.3, 1.0):
        polyak_update(src, tgt_a, tau)
        foreach_polyak(src, tgt_b, tau)
        assert all(th.equal(a, b) for a, b in zip(tgt_a, tgt_b))
    with pytest.raises(ValueError, match="lengths"):
        foreach_polyak(src, tgt_b[:2], 0.1)


def test_frozen_critic_keeps_shared_extractor_trainable():
    actor, critic_head = nn.Linear(3, 3), nn.Linear(3, 1)
    critic = nn.Sequential(actor, critic_head)  # the actor's layer plays the role of a shared features extractor
    own = own_parameters(critic, exclude=actor.parameters())
    assert {id(p) for p in own} == {id(p) for p in critic_head.parameters()}
    with frozen(own):
        loss = critic(th.ones(2, 3)).sum()
        loss.backward()
    assert critic_head.weight.grad is None and actor.weight.grad is not None
    assert all(p.requires_grad for p in critic.parameters())


def test_fused_adam_context_restores_flags():
    net = nn.Linear(4, 2)
    adam, sgd = th.optim.Adam(net.parameters()), th.optim.SGD(net.parameters(), lr=0.1)
    before = [(g["fused"], g["foreach"]) for g in adam.param_groups]
    with fused_adam([adam, sgd]) as status:
        assert status == [True, False]
        assert adam.param_groups[0]["fused"] is True
        net(th.ones(1, 4)).sum().backward()
        adam.step()
    assert [(g["fused"], g["foreach"]) for g in adam.param_groups] == before
    with fused_adam([adam], enabled=False) as status:
        assert status == [False] and not adam.param_groups[0]["fused"]


# ----------------------------------------------------------------------------- vanilla SB3 compatibility
def test_fast_model_loads_in_vanilla_sb3_without_plugin(tmp_path, monkeypatch):
    """A model trained by our class (fast mode, no plugin-only feature) loads with stable_baselines3.DDPG.load even
    when sb3_ddpg_ext cannot be imported, with the same parameters and SB3's optimizer flags."""
    model = DDPG("MlpPolicy", "Pendulum-v1", learning_starts=50, batch_size=32, seed=0, policy_kwargs={"net_arch": [32, 32]})
    model.learn(100)
    path = tmp_path / "ours.zip"
    model.save(path)
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    for name in [m for m in sys.modules if m == "sb3_ddpg_ext" or m.startswith("sb3_ddpg_ext.")]:
        monkeypatch.setitem(sys.modules, name, None)  # any import of the plugin now fails
    vanilla = SB3DDPG.load(path, env=model.get_env())
    assert type(vanilla) is SB3DDPG
    assert max_diff(model, vanilla) == 0.0
    for group in vanilla.critic.optimizer.param_groups:
        assert not group["fused"]
    vanilla.load_replay_buffer(tmp_path / "buffer.pkl")
    assert type(vanilla.replay_buffer) is ReplayBuffer and vanilla.replay_buffer.size() == 100
    vanilla.learn(20)


@pytest.mark.parametrize("layer_norm", [False, True])
@pytest.mark.parametrize("squash", [False, True])
def test_manual_mlp_gradients_equal_autograd(layer_norm, squash):
    """The hand-written backward gives autograd's parameter and input gradients (float32 rounding: same kernels,
    so agreement to ~1e-7 relative; 1e-5 relative + 1e-6 absolute is a loose bound that still catches any wrong
    term, which changes gradients at O(1) relative)."""
    th.manual_seed(0)
    net = nn.Sequential(*ln_mlp(5, 3, [16, 8], nn.ReLU, squash_output=squash, layer_norm=layer_norm))
    x = th.randn(64, 5, requires_grad=True)
    grad_out = th.randn(64, 3)
    (net(x) * grad_out).sum().backward()
    expected = {name: p.grad.clone() for name, p in net.named_parameters()}
    expected_input = x.grad[:, 2:].clone()
    net.zero_grad(set_to_none=True)

    manual = ManualMLP(net)
    assert len(manual.hidden) == 2 and manual.squash == squash
    with th.no_grad():
        out, saved = manual.forward(x.detach())
        assert th.allclose(out, net(x), rtol=1e-6, atol=1e-7)
        got_input = manual.backward(grad_out, saved, input_columns=slice(2, None))
    assert got_input is not None and th.allclose(got_input, expected_input, rtol=1e-5, atol=1e-6)
    for name, p in net.named_parameters():
        assert p.grad is not None and th.allclose(p.grad, expected[name], rtol=1e-5, atol=1e-6), name
        assert expected[name].abs().max() > 1e-3, "non-trivial gradients"

    # differentiate through only: no parameter gradient is written
    net.zero_grad(set_to_none=True)
    with th.no_grad():
        out, saved = manual.forward(x.detach())
        assert manual.backward(grad_out, saved, weight_grads=False) is None
    assert all(p.grad is None for p in net.parameters())


def test_manual_mlp_rejects_other_layouts():
    relu_mlp = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    assert ManualMLP.parse(relu_mlp) is not None
    for net in (
        nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)),  # other activation
        nn.Sequential(nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 1)),  # no bias
        nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4, elementwise_affine=False), nn.ReLU(), nn.Linear(4, 1)),
        nn.Sequential(nn.Linear(3, 4), nn.ReLU()),  # no output layer
        nn.Linear(3, 1),  # not a Sequential
    ):
        assert ManualMLP.parse(net) is None, net
        with pytest.raises(ValueError, match="net: not a"):
            ManualMLP(net)


@pytest.mark.parametrize(
    "policy_kwargs, reason",
    [
        ({"activation_fn": nn.Tanh}, "actor network"),
        ({"critic_late_action": True}, "critic networks"),
        ({"layer_norm_actor": True, "layer_norm_critic": True}, None),
        ({"n_critics": 3}, None),
    ],
)
def test_fast_path_fallback_reasons(policy_kwargs, reason):
    model = DDPG(LnMlpPolicy, "Pendulum-v1", policy_kwargs={"net_arch": [8], **policy_kwargs}, seed=0)
    covered = manual_networks(model.policy)
    if reason is None:
        assert model.fast_path_fallback is None and not isinstance(covered, str)
        assert len(covered.critics) == policy_kwargs.get("n_critics", 1) and covered.obs_dim == 3
    else:
        assert isinstance(covered, str) and reason in covered and model.fast_path_fallback == covered
    model.update_mode = "exact"
    assert model.fast_path_fallback is None, "only fast mode uses the hand-written update"


def test_fast_path_fallback_for_a_replaced_optimizer():
    """An optimizer that does not hold exactly the network's parameters (e.g. a user's custom param groups) keeps the
    autograd update, and the check is redone when the optimizer object changes."""
    model = DDPG("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8]}, seed=0)
    assert model.fast_path_fallback is None
    model.actor.optimizer = th.optim.Adam(list(model.actor.parameters())[:2], lr=1e-3)
    assert model.fast_path_fallback is not None and "actor optimizer" in model.fast_path_fallback


@pytest.mark.parametrize("opt_class, kwargs", [(th.optim.Adam, {}), (th.optim.AdamW, {"weight_decay": 0.1}),
                                               (th.optim.Adam, {"amsgrad": True, "weight_decay": 0.01})])  # fmt: skip
def test_fused_adam_step_equals_optimizer_step_bit_for_bit(opt_class, kwargs):
    th.manual_seed(0)
    nets = [nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    opts = [opt_class(net.parameters(), lr=1e-2, fused=True, **kwargs) for net in nets]
    x = th.randn(16, 4)
    initial = nets[0][0].weight.detach().clone()
    for step in range(5):
        for net, opt, direct in zip(nets, opts, (False, True)):
            opt.zero_grad()
            net(x).square().mean().backward()
            if direct:
                # the first step creates the optimizer state: the direct call declines and step() is used
                assert fused_adam_step(opt) == (step > 0)
                if step == 0:
                    opt.step()
            else:
                opt.step()
    for p, q in zip(nets[0].parameters(), nets[1].parameters()):
        assert th.equal(p, q)
    assert (nets[0][0].weight - initial).abs().max() > 1e-3, "the steps moved the parameters"


def test_fused_adam_step_declines_hooks_and_other_optimizers():
    net = nn.Linear(3, 1)
    net(th.randn(4, 3)).sum().backward()
    sgd = th.optim.SGD(net.parameters(), lr=0.1)
    assert not fused_adam_step(sgd)
    adam = th.optim.Adam(net.parameters(), lr=0.1)
    adam.step()
    before = [p.clone() for p in net.parameters()]
    handle = adam.register_step_post_hook(lambda *args: None)
    assert not fused_adam_step(adam)
    assert all(th.equal(p, q) for p, q in zip(before, net.parameters())), "declining leaves the parameters alone"
    handle.remove()
    assert fused_adam_step(adam)


def test_fused_adam_step_follows_a_loaded_optimizer_state():
    """The gathered kernel arguments are re-gathered when the optimizer's state is replaced (load_state_dict, as in
    model.load / set_parameters): the direct step keeps matching optimizer.step(). The .grad tensors are kept
    (zero_grad(set_to_none=False)), so only the state check can trigger the re-gathering."""
    th.manual_seed(0)
    nets = [nn.Linear(4, 2) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    opts = [th.optim.Adam(net.parameters(), lr=1e-2, fused=True) for net in nets]
    x = th.randn(8, 4)

    def step(i: int, direct: bool) -> None:
        opts[i].zero_grad(set_to_none=False)
        nets[i](x).square().mean().backward()
        if not (direct and fused_adam_step(opts[i])):
            opts[i].step()

    for _ in range(3):
        step(0, False)
        step(1, True)
    snapshot = ({k: v.clone() for k, v in nets[0].state_dict().items()}, copy.deepcopy(opts[0].state_dict()))
    for _ in range(2):
        step(0, False)
        step(1, True)
    for i in range(2):  # rewind both to the snapshot
        nets[i].load_state_dict(snapshot[0])
        opts[i].load_state_dict(copy.deepcopy(snapshot[1]))
    for _ in range(3):
        step(0, False)
        step(1, True)
    for p, q in zip(nets[0].parameters(), nets[1].parameters()):
        assert th.equal(p, q)
    assert opts[1].state[nets[1].weight]["step"].item() == 6  # 3 + 2, rewound to 3, + 3


def test_lerp_polyak_equals_sb3_polyak_to_rounding():
    gen = th.Generator().manual_seed(0)
    params = [th.randn(30, 20, generator=gen), th.randn(7, generator=gen)]
    targets = [th.randn(30, 20, generator=gen), th.randn(7, generator=gen)]
    initial = [t.clone() for t in targets]
    expected = [t.clone() for t in targets]
    polyak_update(params, expected, 0.005)
    lerp_polyak(params, targets, 0.005)
    for got, want, before in zip(targets, expected, initial):
        # a few float32 roundings apart: |x| <= ~5, eps32 * 5 ~ 6e-7; the update itself moves them by ~tau = 5e-3
        assert th.allclose(got, want, rtol=0, atol=2e-6)
        assert (got - before).abs().max() > 1e-3
    with pytest.raises(ValueError, match="lengths differ"):
        lerp_polyak(params, targets[:1], 0.005)


def test_fast_path_honours_module_hooks():
    """A forward hook on a policy module (e.g. activation logging) would be skipped by the hand-written update: fast
    mode then runs the autograd update, so the hook sees every forward, and returns to the hand-written one after."""
    model = DDPG("MlpPolicy", "Pendulum-v1", learning_starts=50, batch_size=16, seed=0, policy_kwargs={"net_arch": [8]})
    model.learn(60)
    calls = []
    handle = model.critic_target.register_forward_hook(lambda module, args, out: calls.append(1))
    assert model.fast_path_fallback is not None and "critic_target" in model.fast_path_fallback
    model.train(3, batch_size=16)
    assert len(calls) == 3, "the target critic module ran once per update"
    handle.remove()
    assert model.fast_path_fallback is None
    model.train(3, batch_size=16)
    assert len(calls) == 3


def test_lean_acting_matches_sb3_acting():
    """Fast mode's lean acting stores the same (scaled) actions as SB3's predict-based acting: identical during the
    random warm-up, then equal up to float32 rounding (the parameters themselves stay within FAST_TOL, and the
    actor is 1-Lipschitz-ish in them at this scale), with the same action-noise draws."""
    from stable_baselines3.common.noise import NormalActionNoise

    buffers = []
    for mode in ("exact", "fast"):
        noise = NormalActionNoise(np.zeros(1), 0.1 * np.ones(1))
        model = DDPG("MlpPolicy", "Pendulum-v1", learning_starts=50, batch_size=16, seed=3, action_noise=noise,
                     policy_kwargs={"net_arch": [16, 16]}, update_mode=mode)  # fmt: skip
        model.learn(120)
        buffers.append(model.replay_buffer.actions[: model.replay_buffer.pos].copy())
    exact, fast = buffers
    assert exact.shape == fast.shape == (120, 1, 1)
    np.testing.assert_array_equal(exact[:50], fast[:50])
    np.testing.assert_allclose(fast[50:], exact[50:], rtol=0, atol=1e-4)
    assert np.abs(fast[50:]).max() <= 1.0 and np.std(fast[50:]) > 0.05, "real, noisy, in-range actions"


class _TrainingFlags(BaseCallback):
    """Records the policy's training flags at every step; optionally switches the policy to training mode, as a
    callback may, then predicts (as EvalCallback does), which must switch it back to eval mode, in our loop (where the
    shadowed switch is in place during the rollout) as in SB3's."""

    def __init__(self, switch_to_train: bool):
        super().__init__()
        self.switch_to_train = switch_to_train
        self.flags: list[tuple[bool, bool, bool]] = []

    def _on_step(self) -> bool:
        policy = self.model.policy
        self.flags.append((policy.training, policy.actor.training, policy.critic.qf0[0].training))
        if self.switch_to_train:
            policy.set_training_mode(True)
            self.model.predict(self.locals["new_obs"], deterministic=True)
            self.flags.append((policy.training, policy.actor.training, policy.critic.qf0[0].training))
        return True


@pytest.mark.parametrize("switch_to_train", [False, True])
def test_skipped_eval_switch_keeps_training_flags(switch_to_train):
    """Fast mode skips ``set_training_mode(False)`` only where it would change nothing: every step sees the same
    training flags as under SB3's loop (also when a callback switches the policy to training mode mid-rollout), and
    the policy's method is not left shadowed."""
    flags = {}
    for name, cls in (("sb3", SB3DDPG), ("fast", DDPG)):
        model = cls("MlpPolicy", "Pendulum-v1", learning_starts=30, batch_size=16, seed=0, train_freq=4,
                    gradient_steps=4, policy_kwargs={"net_arch": [8]})  # fmt: skip
        callback = _TrainingFlags(switch_to_train)
        model.learn(80, callback=callback)
        flags[name] = callback.flags
        assert "set_training_mode" not in vars(model.policy)
    assert len(flags["fast"]) == 80 * (2 if switch_to_train else 1)
    assert flags["fast"] == flags["sb3"]
    assert all(flag == (False, False, False) for flag in flags["fast"])  # every rollout starts in eval mode


def test_eval_switch_not_skipped_for_modules_with_their_own_train():
    """A module that overrides ``train()`` may do more than set its flag: its switch is never skipped."""

    class CountingReLU(nn.ReLU):
        calls = 0

        def train(self, mode: bool = True):
            CountingReLU.calls += 1
            return super().train(mode)

    model = DDPG("MlpPolicy", "Pendulum-v1", learning_starts=10, batch_size=8, seed=0,
                 policy_kwargs={"net_arch": [8], "activation_fn": CountingReLU})  # fmt: skip
    model.learn(30)
    assert not model._eval_switch_is_redundant()
    assert CountingReLU.calls >= 30, "the switch ran at every rollout"


def test_lean_actor_equals_actor_module_bit_for_bit():
    """The hand-written actor forward used for acting gives the actor module's output bit for bit (same kernels on
    the same float32 features), for a float64 and a float32 observation."""
    model = DDPG(LnMlpPolicy, "Pendulum-v1", seed=0, policy_kwargs={"net_arch": [16, 16], "layer_norm_actor": True})
    lean = model._lean_actor()
    assert lean is not None
    obs = np.random.default_rng(0).normal(size=(5, 3))
    with th.no_grad():
        for array in (obs, obs.astype(np.float32)):
            assert th.equal(lean(array), model.actor(th.as_tensor(array)))
    model.actor.register_forward_hook(lambda *args: None)
    assert model._lean_actor() is None, "a hooked actor runs as a module"
