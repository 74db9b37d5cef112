"""Contract tests for the fast path's rollout loop and update (``update_mode="fast"``, the default), at the network
size the study uses for its quick runs (net_arch [64, 64], batch 64, Pendulum-v1):

1. every gradient step of a real ``learn()`` equals SB3's update from the same state up to float32 rounding, for plain
   MLPs, LayerNorm actor and critic, action-space target noise (SB3's TD3 smoothing) and parameter-space exploration;
2. callbacks see what they see under SB3's own loop: the same events in the same order, the same ``num_timesteps``,
   the same ``self.locals``, the same EvalCallback evaluations and Monitor rows (also with ``train_freq=(1,
   "episode"), gradient_steps=-1``, and when a callback stops training);
3. the logger gets SB3's keys plus our ``train/target_*`` and ``train/update_mode``;
4. the hand-written update really runs (``fast_path_fallback is None``) for the four configurations.

Why per-update and not "parameters after N updates": two float32 implementations of the same update drift apart
chaotically once a ReLU pre-activation sits within rounding distance of zero (a "kink flip": one sample's gradient
through one unit is on in one run and off in the other, and Adam turns that into a step of up to ~1e-4). Measured on
a fixed buffer at [64, 64], batch 64: fast vs SB3 stays ~1e-6 for ~230 updates, then jumps (max |diff| 5e-3 plain,
4.5e-2 LayerNorm after 300), and SB3 with nothing changed but ``optimizer_kwargs={"fused": True}`` drifts just as far
(4.6e-2 LayerNorm after 300; over a full 600-step learn(), where actions feed back into the data, 0.3 in the
parameters for both). So the update is checked where it is deterministic: each ``train()`` call of the fast model is
redone by the reference from the fast model's own state (parameters, Adam moments and step counts, replay buffer, RNG
states), and the results are compared; the rollout loop is compared on what does not depend on float32 rounding.
"""

from __future__ import annotations

import copy
import csv
import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import DDPG as SB3DDPG
from stable_baselines3 import TD3
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, EvalCallback
from stable_baselines3.common.logger import CSVOutputFormat, KVWriter, Logger
from stable_baselines3.common.monitor import Monitor, load_results
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.vec_env import DummyVecEnv
from torch import nn

from sb3_ddpg_ext.callbacks import ParameterNoiseCallback
from sb3_ddpg_ext.ddpg import DDPG
from sb3_ddpg_ext.policies import LnMlpPolicy

NET_ARCH = [64, 64]
BATCH_SIZE = 64
SEED = 7

# Per-update tolerance on every parameter (actor, critic and both targets) after one train() call, both runs starting
# from the same state. Fast mode = SB3's update with fused Adam (differs from single-tensor Adam by float32 rounding,
# as tests/test_fast.py states), lerp polyak (idem) and a hand-written backward using autograd's kernels (gradients
# equal to ~1e-7 relative, which Adam's normalised step turns into ~1e-10). With both forwards bitwise equal (they
# are: the same addmm on the same tensors) no ReLU kink can flip within one update, so the measured max |diff| over
# the 150 calls (2 updates each) of each configuration is 1-2 ulp of the O(1) parameters: 1.2e-7 (MLP), 2.4e-7
# (LayerNorm, gains ~1). 2e-6 leaves 8x for that and ~3x for other float32 orderings (simulated by a 1e-7 relative
# jitter of the reference's parameters before each call: max 7e-7, of which ~1.5e-7 is the jitter itself), and is far
# below what a wrong setting does: checked once by hand (not kept), the fast model with tau=0.00505 instead of 0.005
# fails at 140 of the 150 calls (max 1.9e-5), learning_rate=1.01e-3 instead of 1e-3 at all 150 (max 1.9e-3),
# gamma=0.991 instead of 0.99 at ~115 (max 4e-5 to 1.2e-4), target_noise_clip=0.4 instead of 0.5 at 11 (max 1.5e-5).
# If a change of the forward's float32 summation order makes this fail at a few isolated calls with all others at
# rounding level, those are kink flips (a 1e-6 relative jitter, ten times rounding, gives isolated calls off by up to
# 1e-4), not a bug.
UPDATE_TOL = 2e-6
# Adam moments after the update, relative to the largest moment of the same tensor: measured <= 2e-5 (1e-4 with the
# 1e-7 jitter; elements that are sums with cancellation carry the gradients' rounding further). 1e-2 catches moments
# that are not the optimizer's real state (e.g. private buffers never written back: save/load would lose them) or
# wrong betas.
MOMENT_RTOL = 1e-2

TARGET_NOISE = {"target_policy_noise": 0.2, "target_noise_clip": 0.5}

# config -> (policy, policy_kwargs, our DDPG's extra kwargs, reference, parameter-space exploration)
# reference: "sb3" = stable_baselines3.DDPG (it takes our LnMlpPolicy class, like tests/test_fast.py), "td3" =
# stable_baselines3.TD3 with policy_delay=1 and one critic (SB3's DDPG is exactly that TD3 with the target noise
# clipped to 0, so TD3 with the same target_policy_noise / target_noise_clip is the reference for action-space
# per-sample target noise; our noise draws are the same as TD3's), "exact" = our DDPG with update_mode="exact" (SB3's
# numerics bit for bit, tests/test_fast.py), with the same ParameterNoiseCallback as the fast run.
CONFIGS: dict[str, tuple[Any, dict[str, Any], dict[str, Any], str, bool]] = {
    "plain": ("MlpPolicy", {}, {}, "sb3", False),
    "layer_norm": (LnMlpPolicy, {"layer_norm_actor": True, "layer_norm_critic": True}, {}, "sb3", False),
    "target_noise": ("MlpPolicy", {}, TARGET_NOISE, "td3", False),
    # LayerNorm in the actor only (the study's ln_actor variant; Plappert et al. normalise the perturbed actor)
    "param_noise": (LnMlpPolicy, {"layer_norm_actor": True, "layer_norm_critic": False}, {}, "exact", True),
}

# The keys of OffPolicyAlgorithm.collect_rollouts' locals() when it calls callback.update_locals (SB3 2.9: the
# arguments, the loop counters and the step's variables; ``idx``/``done``/``kwargs`` are loop leftovers, not required)
ROLLOUT_LOCALS = (
    "self",
    "env",
    "callback",
    "train_freq",
    "replay_buffer",
    "action_noise",
    "learning_starts",
    "log_interval",
    "num_collected_steps",
    "num_collected_episodes",
    "continue_training",
    "actions",
    "buffer_actions",
    "new_obs",
    "rewards",
    "dones",
    "infos",
)

# What sb3_ddpg_ext.DDPG._setup_learn records on top of SB3 (once per learn(), so in its first dump)
EXTRA_LOGGER_KEYS = {
    "train/target_policy_noise",
    "train/target_noise_clip",
    "train/target_noise_sampling",
    "train/target_noise_space",
    "train/update_mode",
}


def max_diff(a: nn.Module, b: nn.Module) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters(), strict=True))


def make_model(config: str, reference: bool = False, **kwargs: Any):
    """The fast model of ``config`` (``reference=False``) or the model whose update it is compared with."""
    policy, policy_kwargs, algo_kwargs, ref_kind, _ = CONFIGS[config]
    common = {
        "learning_starts": 100,
        "batch_size": BATCH_SIZE,
        "seed": SEED,
        "policy_kwargs": {"net_arch": NET_ARCH, **policy_kwargs},
        **kwargs,
    }
    if not reference:
        return DDPG(policy, "Pendulum-v1", **algo_kwargs, **common)
    if ref_kind == "sb3":
        return SB3DDPG(policy, "Pendulum-v1", **common)
    if ref_kind == "td3":
        common["policy_kwargs"]["n_critics"] = 1
        return TD3(policy, "Pendulum-v1", policy_delay=1, **algo_kwargs, **common)
    return DDPG(policy, "Pendulum-v1", update_mode="exact", **algo_kwargs, **common)


# ----------------------------------------------------------------------------- 1. the update, update by update
class ShadowUpdateCheck(BaseCallback):
    """
    Redoes every ``train()`` call of the model it is attached to with a reference model, from the same state, and
    records how far apart the results are.

    At each rollout end (train() follows, if any) it snapshots the model's parameters, Adam states, numpy/torch RNG
    states, update count and progress; at the next rollout start (or training end) it loads the snapshot into the
    reference, gives it the model's replay buffer, restores the RNG states, runs the same number of gradient steps,
    compares, and puts the RNG states back as the model left them (so the model's run is not disturbed). Only callback
    events are used, so it works whatever the fast rollout loop looks like inside. It also checks each step's
    ``buffer_actions`` against SB3's acting (``predict`` then ``scale_action``) on the observation the action was
    taken from (without action noise or parameter noise only).
    """

    def __init__(self, reference, check_acting: bool, same_torch_rng: bool):
        super().__init__()
        self.reference = reference
        self.reference.set_logger(Logger(None, []))
        self.check_acting = check_acting
        self.same_torch_rng = same_torch_rng
        self.snapshot: Optional[tuple[Any, ...]] = None
        self.param_diffs: list[float] = []
        self.param_moves: list[float] = []
        self.moment_diffs: list[float] = []
        # train() call's mean critic loss, relative difference (the logger's train/critic_loss of both models)
        self.loss_diffs: list[float] = []
        self.steps_per_call: list[int] = []
        self.fallbacks: set[Optional[str]] = set()
        self.acting_diffs: list[float] = []
        self._obs: Optional[np.ndarray] = None

    def _on_training_start(self) -> None:
        self._obs = np.copy(self.model._last_obs)

    def _on_step(self) -> bool:
        # the action was chosen by the actor iff num_timesteps (before this step's increment) >= learning_starts
        if self.check_acting and self.model.num_timesteps > self.model.learning_starts:
            expected, _ = self.model.predict(self._obs, deterministic=True)
            scaled = self.model.policy.scale_action(expected)
            self.acting_diffs.append(float(np.abs(self.locals["buffer_actions"] - scaled).max()))
        self._obs = np.copy(self.locals["new_obs"])
        return True

    def _on_rollout_end(self) -> None:
        model = self.model
        self.snapshot = (
            copy.deepcopy(model.policy.state_dict()),
            copy.deepcopy(model.actor.optimizer.state_dict()),
            copy.deepcopy(model.critic.optimizer.state_dict()),
            np.random.get_state(),
            th.get_rng_state(),
            model._n_updates,
            model._current_progress_remaining,
        )

    def _on_rollout_start(self) -> None:
        self._check()

    def _on_training_end(self) -> None:
        self._check()

    def _check(self) -> None:
        model, ref = self.model, self.reference
        if self.snapshot is None or model._n_updates == self.snapshot[5]:
            return
        policy_state, actor_opt, critic_opt, np_state, th_state, n_updates, progress = self.snapshot
        self.snapshot = None
        self.fallbacks.add(model.fast_path_fallback)
        ref.policy.load_state_dict(policy_state)
        # deep copies: load_state_dict keeps the given state tensors (no copy), and the reference steps them in place
        ref.actor.optimizer.load_state_dict(copy.deepcopy(actor_opt))
        ref.critic.optimizer.load_state_dict(copy.deepcopy(critic_opt))
        ref._n_updates = n_updates
        ref._current_progress_remaining = progress
        ref.replay_buffer = model.replay_buffer
        after_np, after_th = np.random.get_state(), th.get_rng_state()
        np.random.set_state(np_state)
        th.set_rng_state(th_state)
        n_steps = model._n_updates - n_updates
        self.steps_per_call.append(n_steps)
        ref.train(gradient_steps=n_steps, batch_size=model.batch_size)
        # same replay batches: the same np.random draws as ReplayBuffer.sample (so action noise, drawn from
        # np.random too, stays in step); torch's stream: the same target-noise draws as TD3 (vanilla fast mode skips
        # the N(0, 0.1) noise SB3's DDPG draws and clips to 0, so there it differs by design)
        assert np.array_equal(np.random.get_state()[1], after_np[1]), "the update drew other numpy random numbers"
        if self.same_torch_rng:
            assert th.equal(th.get_rng_state(), after_th), "the update drew other torch random numbers"
        np.random.set_state(after_np)
        th.set_rng_state(after_th)

        self.param_diffs.append(max_diff(model.policy, ref.policy))
        self.param_moves.append(max((p - policy_state[k]).abs().max().item() for k, p in ref.policy.state_dict().items()))
        worst = 0.0
        for opt, ref_opt in ((model.actor.optimizer, ref.actor.optimizer), (model.critic.optimizer, ref.critic.optimizer)):
            params = [p for g in opt.param_groups for p in g["params"]]
            ref_params = [p for g in ref_opt.param_groups for p in g["params"]]
            for p, q in zip(params, ref_params, strict=True):
                state, ref_state = opt.state[p], ref_opt.state[q]
                assert float(state["step"]) == float(ref_state["step"]), "Adam step counts differ"
                for key in ("exp_avg", "exp_avg_sq"):
                    scale = ref_state[key].abs().max().item()
                    worst = max(worst, (state[key] - ref_state[key]).abs().max().item() / max(scale, 1e-30))
        self.moment_diffs.append(worst)
        loss, ref_loss = (m.logger.name_to_value["train/critic_loss"] for m in (model, ref))
        self.loss_diffs.append(abs(loss - ref_loss) / abs(ref_loss))


@pytest.mark.parametrize("config", list(CONFIGS))
def test_fast_updates_match_reference_update_by_update(config):
    """
    A fast-mode learn() of 400 steps (learning_starts=100, train_freq=2, gradient_steps=2: 150 train() calls of two
    gradient steps, 300 updates; parameter noise: a ParameterNoiseCallback adapting every 50 updates): every train()
    call gives the reference's parameters within UPDATE_TOL and its Adam state (see ShadowUpdateCheck), the
    hand-written update runs throughout, each call moved the parameters far more than the tolerance, and the
    actions taken equal SB3's acting on the same observation and parameters.
    """
    param_noise = CONFIGS[config][4]
    reference = make_model(config, reference=True, train_freq=2, gradient_steps=2)
    model = make_model(config, train_freq=2, gradient_steps=2)
    shadow = ShadowUpdateCheck(reference, check_acting=not param_noise, same_torch_rng=config == "target_noise")
    callbacks: list[BaseCallback] = [shadow]
    if param_noise:
        callbacks.append(ParameterNoiseCallback(adaptation_interval=50, seed=1))
    model.learn(400, callback=CallbackList(callbacks))

    assert model._n_updates == 300 and shadow.steps_per_call == [2] * 150
    assert shadow.fallbacks == {None}, "the hand-written update ran at every train() call"
    diffs = np.array(shadow.param_diffs)
    over = np.flatnonzero(diffs >= UPDATE_TOL)
    assert over.size == 0, f"{over.size} train() calls off by more than {UPDATE_TOL}: first #{over[:5]}, max {diffs.max():.3g}"
    assert max(shadow.moment_diffs) < MOMENT_RTOL, max(shadow.moment_diffs)
    assert min(shadow.param_moves) > 100 * UPDATE_TOL, "every call moved the parameters: the comparison is not vacuous"
    if param_noise:
        assert callbacks[1].n_adaptations == 5  # at n_updates 50, ..., 250 (adaptation happens at rollout starts)
    else:
        # lean acting skips predict's unscale -> scale round trip: equal up to float32 rounding of [-2, 2] actions
        assert len(shadow.acting_diffs) == 300 and max(shadow.acting_diffs) < 1e-6, max(shadow.acting_diffs)


# ----------------------------------------------------------------------------- 4. the fast path is the one tested
@pytest.mark.parametrize("config", list(CONFIGS))
def test_fast_path_covers_configurations(config):
    """The four configurations at [64, 64] use the hand-written update (not the autograd fallback), with the layers
    and noise they claim: so test 1 exercises the fast path."""
    model = make_model(config)
    assert model.update_mode == "fast"
    assert model.fast_path_fallback is None
    _, policy_kwargs, _, _, _ = CONFIGS[config]
    for net, flag in ((model.actor, "layer_norm_actor"), (model.critic, "layer_norm_critic")):
        has_ln = any(isinstance(m, nn.LayerNorm) for m in net.modules())
        assert has_ln == policy_kwargs.get(flag, False), (net, flag)
    assert [m.out_features for m in model.actor.mu if isinstance(m, nn.Linear)] == [*NET_ARCH, 1]
    assert (model.target_policy_noise > 0) == (config == "target_noise")


# ----------------------------------------------------------------------------- 2./3. the rollout loop
class EventRecorder(BaseCallback):
    """Records every callback event with the model's counters, and each step's view of ``self.locals``; returns False
    from ``_on_step`` at ``stop_at`` steps (stops training, as e.g. DivergenceGuardCallback does)."""

    def __init__(self, stop_at: Optional[int] = None):
        super().__init__()
        self.stop_at = stop_at
        self.events: list[tuple[Any, ...]] = []
        self.step_views: list[tuple[Any, ...]] = []
        self.action_mismatch = 0.0

    def _event(self, name: str) -> None:
        model = self.model
        self.events.append(
            (name, model.num_timesteps, model._n_updates, model._episode_num, model._current_progress_remaining)
        )

    def _on_training_start(self) -> None:
        self._event("training_start")

    def _on_rollout_start(self) -> None:
        self._event("rollout_start")

    def _on_rollout_end(self) -> None:
        self._event("rollout_end")

    def _on_training_end(self) -> None:
        self._event("training_end")

    def _on_step(self) -> bool:
        self._event("step")
        loc = self.locals
        missing = [key for key in ROLLOUT_LOCALS if key not in loc]
        assert not missing, f"self.locals lacks {missing}"
        model = self.model
        assert loc["self"] is model and loc["env"] is model.env and loc["replay_buffer"] is model.replay_buffer
        assert loc["action_noise"] is model.action_noise and loc["learning_starts"] == model.learning_starts
        assert self.num_timesteps == model.num_timesteps and self.n_calls == model.num_timesteps
        # the env got the unscaled buffer action (SB3: action = unscale_action(clip(scaled + noise)))
        self.action_mismatch = max(
            self.action_mismatch, float(np.abs(loc["actions"] - model.policy.unscale_action(loc["buffer_actions"])).max())
        )
        arrays = tuple(
            (key, type(loc[key]).__name__, np.shape(loc[key]), str(getattr(loc[key], "dtype", None)))
            for key in ("actions", "buffer_actions", "new_obs", "rewards", "dones")
        )
        self.step_views.append(
            (
                loc["num_collected_steps"],
                loc["num_collected_episodes"],
                loc["continue_training"],
                loc["train_freq"],
                loc["log_interval"],
                loc["dones"].tolist(),
                [sorted(info) for info in loc["infos"]],
                arrays,
            )
        )
        return self.stop_at is None or self.num_timesteps < self.stop_at


class DumpRecorder(KVWriter):
    """Logger output format keeping every dump's keys, exclusions and values."""

    def __init__(self):
        self.dumps: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        self.dumps.append((dict(key_values), dict(key_excluded)))

    def close(self) -> None:
        pass


# variant -> (train_freq, gradient_steps, total_timesteps): the default DDPG loop, and the zoo's HalfCheetahBullet
# setting (one episode per rollout, as many gradient steps as steps; Pendulum's episodes are 200 steps)
LOOP_VARIANTS = {
    "step": (1, 1, 600),
    "episode": ((1, "episode"), -1, 800),
}
ALGOS = {"sb3": (SB3DDPG, {}), "fast": (DDPG, {}), "exact": (DDPG, {"update_mode": "exact"})}


@dataclass
class LoopRun:
    events: list[tuple[Any, ...]]
    step_views: list[tuple[Any, ...]]
    action_mismatch: float
    evaluations: dict[str, np.ndarray]
    monitor: dict[str, list[float]]
    dumps: list[tuple[dict[str, Any], dict[str, Any]]]
    csv_columns: list[str]
    buffer: dict[str, np.ndarray]
    params: list[th.Tensor]
    fast_path_fallback: Optional[str]
    num_timesteps: int
    n_updates: int


@functools.cache
def loop_run(algo: str, variant: str, stop_at: Optional[int] = None) -> LoopRun:
    """
    One learn() on a Monitor-wrapped Pendulum-v1 (episode rows written to a file) with Gaussian action noise, an
    EvalCallback (eval_freq=100, 2 episodes, evaluations.npz), an EventRecorder and a logger recording every dump;
    cached, as several tests read the same runs.
    """
    train_freq, gradient_steps, total = LOOP_VARIANTS[variant]
    cls, extra = ALGOS[algo]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = Monitor(gym.make("Pendulum-v1"), str(folder / "train"))
        eval_env = DummyVecEnv([lambda: Monitor(gym.make("Pendulum-v1"))])
        eval_env.seed(0)
        model = cls(
            "MlpPolicy",
            env,
            learning_starts=100,
            batch_size=BATCH_SIZE,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            action_noise=NormalActionNoise(np.zeros(1), 0.1 * np.ones(1)),
            seed=3,
            policy_kwargs={"net_arch": NET_ARCH},
            **extra,
        )
        dumps = DumpRecorder()
        model.set_logger(Logger(str(folder), [dumps, CSVOutputFormat(str(folder / "progress.csv"))]))
        recorder = EventRecorder(stop_at=stop_at)
        evaluation = EvalCallback(eval_env, eval_freq=100, n_eval_episodes=2, log_path=str(folder), verbose=0)
        model.learn(total, callback=[evaluation, recorder], log_interval=1)
        model.logger.close()
        with open(folder / "progress.csv") as f:
            csv_columns = next(csv.reader(f))
        evaluations = dict(np.load(folder / "evaluations.npz")) if (folder / "evaluations.npz").exists() else {}
        rows = load_results(str(folder))
        buf = model.replay_buffer
        return LoopRun(
            events=recorder.events,
            step_views=recorder.step_views,
            action_mismatch=recorder.action_mismatch,
            evaluations=evaluations,
            monitor={"l": rows["l"].tolist(), "r": rows["r"].tolist()},
            dumps=dumps.dumps,
            csv_columns=csv_columns,
            buffer={
                name: getattr(buf, name)[: buf.pos].copy()
                for name in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
            },
            params=[p.detach().clone() for p in model.policy.parameters()],
            fast_path_fallback=getattr(model, "fast_path_fallback", None),
            num_timesteps=model.num_timesteps,
            n_updates=model._n_updates,
        )


LOOP_CASES = [pytest.param(algo, variant, id=f"{algo}-{variant}") for variant in LOOP_VARIANTS for algo in ("fast", "exact")]


@pytest.mark.parametrize("algo, variant", LOOP_CASES)
def test_callbacks_see_the_sb3_loop(algo, variant):
    """
    The same callback events as SB3's DDPG, in the same order, with the same num_timesteps, update count, episode
    count and progress at each (so train() runs at the same points with the same number of gradient steps and the
    same learning-rate schedule), and at every step the same view of ``self.locals`` (the keys collect_rollouts
    exposes, the loop counters, dones, info keys, array types and shapes).
    """
    ref, ours = loop_run("sb3", variant), loop_run(algo, variant)
    train_freq, gradient_steps, total = LOOP_VARIANTS[variant]
    assert ours.fast_path_fallback is None
    assert ours.num_timesteps == ref.num_timesteps == total
    assert ours.n_updates == ref.n_updates == (total - 100 if gradient_steps == 1 else total)
    steps = [e[1] for e in ref.events if e[0] == "step"]
    assert steps == list(range(1, total + 1))
    n_rollouts = sum(e[0] == "rollout_start" for e in ref.events)
    assert n_rollouts == (total if train_freq == 1 else total // 200)
    assert ours.events == ref.events
    assert ours.step_views == ref.step_views
    assert ref.action_mismatch < 1e-6 and ours.action_mismatch < 1e-6


@pytest.mark.parametrize("algo, variant", LOOP_CASES)
def test_eval_callback_and_monitor_match_sb3(algo, variant):
    """
    EvalCallback's evaluations.npz has the same timesteps and episode lengths, the Monitor file the same rows (count
    and lengths), and the replay buffer the same warm-up transitions (bit for bit) and the same done/timeout flags.
    Returns and post-warm-up transitions are compared bit for bit in exact mode only: in fast mode they follow the
    parameters, which drift from SB3's chaotically (module docstring: SB3 with fused Adam drifts as far).
    """
    ref, ours = loop_run("sb3", variant), loop_run(algo, variant)
    total = LOOP_VARIANTS[variant][2]
    np.testing.assert_array_equal(ref.evaluations["timesteps"], np.arange(100, total + 1, 100))
    np.testing.assert_array_equal(ours.evaluations["timesteps"], ref.evaluations["timesteps"])
    np.testing.assert_array_equal(ours.evaluations["ep_lengths"], ref.evaluations["ep_lengths"])
    assert ref.evaluations["results"].shape == ours.evaluations["results"].shape == (total // 100, 2)
    assert ref.monitor["l"] == ours.monitor["l"] == [200] * (total // 200)
    for name in ("dones", "timeouts"):
        np.testing.assert_array_equal(ours.buffer[name], ref.buffer[name])
    assert ref.buffer["timeouts"].sum() == total // 200
    for name, array in ref.buffer.items():  # warm-up: uniform random actions, identical in every mode
        np.testing.assert_array_equal(ours.buffer[name][:100], array[:100], err_msg=name)
    if algo == "exact":
        np.testing.assert_array_equal(ours.evaluations["results"], ref.evaluations["results"])
        assert ours.monitor["r"] == ref.monitor["r"]
        for name, array in ref.buffer.items():
            np.testing.assert_array_equal(ours.buffer[name], array, err_msg=name)
        assert all(th.equal(p, q) for p, q in zip(ours.params, ref.params, strict=True))


@pytest.mark.parametrize("algo, variant", LOOP_CASES)
def test_logger_keys_are_sb3_keys_plus_ours(algo, variant):
    """
    Every logger dump (EvalCallback's and the episode-end ones, log_interval=1) has SB3's keys with SB3's exclusions,
    plus our train/target_* and train/update_mode in the first dump of the learn() (recorded once, in _setup_learn);
    the counters among the values are SB3's; progress.csv has SB3's columns plus ours.
    """
    ref, ours = loop_run("sb3", variant), loop_run(algo, variant)
    assert len(ours.dumps) == len(ref.dumps) > 0
    for i, ((ref_values, ref_excluded), (values, excluded)) in enumerate(zip(ref.dumps, ours.dumps)):
        expected = set(ref_values) | (EXTRA_LOGGER_KEYS if i == 0 else set())
        assert set(values) == expected, (i, set(values) ^ expected)
        assert {k: excluded[k] for k in ref_excluded} == ref_excluded, i
        for key in ("time/total_timesteps", "time/episodes", "train/n_updates", "train/learning_rate",
                    "rollout/ep_len_mean", "eval/mean_ep_length"):  # fmt: skip
            assert values.get(key) == ref_values.get(key), (i, key)
    first = ours.dumps[0][0]
    assert {k: first[k] for k in EXTRA_LOGGER_KEYS} == {
        "train/target_policy_noise": 0.0,
        "train/target_noise_clip": 0.5,
        "train/target_noise_sampling": "per_sample",
        "train/target_noise_space": "action",
        "train/update_mode": algo,
    }
    assert "train/actor_loss" in set().union(*(values for values, _ in ref.dumps))
    assert set(ours.csv_columns) == set(ref.csv_columns) | EXTRA_LOGGER_KEYS


@pytest.mark.parametrize("variant", list(LOOP_VARIANTS))
def test_callback_stopping_training_matches_sb3(variant):
    """A callback returning False at step 350 stops learn() there, as in SB3: the same events (no rollout end for the
    stopped rollout, no train() after it), the same update count, episode count and Monitor rows."""
    ref, ours = loop_run("sb3", variant, stop_at=350), loop_run("fast", variant, stop_at=350)
    assert ours.num_timesteps == ref.num_timesteps == 350
    assert ours.n_updates == ref.n_updates == (249 if variant == "step" else 200)
    assert ours.events == ref.events
    assert ours.step_views == ref.step_views
    assert ours.events[-2][0] == "step" and ours.events[-1][0] == "training_end"
    assert ours.monitor["l"] == ref.monitor["l"] == [200]
    np.testing.assert_array_equal(ours.evaluations["timesteps"], ref.evaluations["timesteps"])
