"""DDPG with target-policy noise variants ("target mu noising") and a fast update path.

A drop-in subclass of :class:`stable_baselines3.DDPG`: same constructor arguments and defaults, same save format
(models load with ``DDPG.load``; models that use no plugin-only feature also load in vanilla SB3), plus

- target-policy noise on mu'(s') in the TD target, in the action space (TD3 smoothing, or the "naive" variant with
  one epsilon shared by the batch) or in the target actor's parameter space (one perturbed target actor per update,
  or an independent perturbation per transition);
- ``update_mode``: ``"fast"`` (default), ``"exact"`` (SB3's numerics bit for bit) or ``"sb3"`` (SB3's own
  ``TD3.train``, unchanged).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any, Callable, ClassVar, Optional, TypeVar, Union

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import DDPG as SB3DDPG
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, ReplayBufferSamples, RolloutReturn, Schedule, TrainFreq
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.td3.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, TD3Policy
from stable_baselines3.td3.td3 import TD3
from torch import nn
from torch.nn import functional as F

from sb3_ddpg_ext.acting import actor_actions
from sb3_ddpg_ext.compiled import CompiledUpdate, compile_fallback
from sb3_ddpg_ext.fast import (
    ManualNetworks,
    ModuleHooks,
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
from sb3_ddpg_ext.param_noise import perturbable_parameters
from sb3_ddpg_ext.policies import LnMlpPolicy
from sb3_ddpg_ext.target_noise import (
    TARGET_NOISE_SAMPLINGS,
    TARGET_NOISE_SPACES,
    action_noise,
    parameter_noise_actions,
)

__all__ = ["DDPG", "TARGET_NOISE_SAMPLINGS", "TARGET_NOISE_SPACES", "UPDATE_MODES"]

SelfDDPG = TypeVar("SelfDDPG", bound="DDPG")

UPDATE_MODES = ("fast", "exact", "sb3")


def _flat_features(observations: th.Tensor) -> th.Tensor:
    """The features of a ``FlattenExtractor`` on a float ``Box``: the flattened observations as float32."""
    return observations.reshape(observations.shape[0], -1).float()


def _mean(values: list[float]) -> Any:
    """``np.mean(values)`` (what SB3 logs), without its ~4 us of overhead for the usual single value."""
    return np.float64(values[0]) if len(values) == 1 else np.mean(values)


def _is_compile_error(error: Exception) -> bool:
    """Whether ``error`` comes from torch.compile failing to build the graph (then the update stays eager)."""
    from torch._dynamo.exc import BackendCompilerFailed, TorchRuntimeError, Unsupported

    return isinstance(error, (BackendCompilerFailed, Unsupported, TorchRuntimeError))


def _adam_step(optimizer: th.optim.Optimizer) -> None:
    """The optimizer's step with the fused Adam kernel (:func:`~sb3_ddpg_ext.fast.fused_adam_step`), else its own
    ``step()`` (fused where :func:`~sb3_ddpg_ext.fast.fused_adam` can: e.g. the first step, which creates the state)."""
    if not fused_adam_step(optimizer):
        with fused_adam([optimizer]):
            optimizer.step()


class DDPG(SB3DDPG):
    """
    Deep Deterministic Policy Gradient (DDPG) with target-policy noise variants and a fast update path.

    DDPG paper: https://arxiv.org/abs/1509.02971
    Target policy smoothing (TD3): https://arxiv.org/abs/1802.09477 (Table 2 applies it to DDPG)
    Parameter-space noise: https://arxiv.org/abs/1706.01905

    Drop-in replacement for :class:`stable_baselines3.DDPG` (same arguments, defaults and save format). The TD
    target is ``y = r + gamma (1 - d) min_i Q'_i(s', a')`` with

    - ``target_policy_noise = 0`` (default): ``a' = mu'(s')``, vanilla DDPG;
    - ``target_noise_space="action"``: ``a' = clip(mu'(s') + clip(eps, -c, c), -1, 1)``, ``eps ~ N(0, sigma^2)``
      per action dimension, one ``eps`` per transition (``target_noise_sampling="per_sample"``, TD3 smoothing) or
      one ``eps`` shared by the whole minibatch (``"per_batch"``, the naive variant);
    - ``target_noise_space="parameter"``: ``a' = clip(mu'_{theta' + clip(E, -c, c)}(s'), -1, 1)``,
      ``E ~ N(0, sigma^2)`` elementwise on every target-actor parameter except LayerNorm gains/biases; one perturbed
      target actor per update (``"per_batch"``) or an independent perturbation per transition (``"per_sample"``,
      computed with ``torch.func.vmap`` over batched weights). The clip ``c = target_noise_clip`` applies
      elementwise to the weight noise (as it does to the action noise); ``target_noise_clip=float("inf")``
      disables it. The outer ``clip(., -1, 1)`` is a no-op for SB3's tanh actors, kept for parity with TD3.

    ``sigma = target_policy_noise`` in both spaces. The noise is drawn from torch's global generator, which
    ``seed`` seeds (SB3's ``set_random_seed``), so action-space per-sample noise reproduces SB3's ``TD3`` exactly.

    ``update_mode`` selects the implementation of ``train()`` (all three compute the same algorithm):

    - ``"exact"``: SB3's numerics bit for bit (same batches, same single-tensor Adam, same RNG draws, including
      the noise SB3's DDPG draws and clips to zero); faster than SB3 because the critic is frozen during the actor's
      backward (SB3 computes critic weight gradients there and discards them) and the polyak update uses
      ``torch._foreach_*`` (same arithmetic).
    - ``"fast"`` (default): the same algorithm with a hand-written backward of the MLPs
      (:class:`~sb3_ddpg_ext.fast.ManualMLP`: no autograd graph, no critic weight gradients in the actor step, only
      the action columns of the critic's input gradient), the fused Adam kernel called directly (equal to
      single-tensor Adam up to float32 rounding), replay sampling through zero-copy torch views (same batches bit for
      bit) and lean rollouts (acting with the actor's hand-written forward under ``torch.inference_mode``, without
      ``predict``'s per-step training-mode switch and action unscale/rescale round trip; SB3's ``collect_rollouts``
      and ``predict`` skip ``set_training_mode(False)`` where it would change nothing); it skips the discarded noise
      draw of vanilla DDPG (only torch's global RNG stream differs). Each update is SB3's up to float32 rounding
      (every ``train()`` call of a ``learn()`` within 2e-6 of SB3's from the same state,
      ``tests/test_fast_loop.py``); over hundreds of updates the two drift apart chaotically, as SB3 with
      ``fused=True`` Adam does from SB3 (a ReLU input within rounding of zero lands on the other side and Adam
      amplifies the difference). Parts that do not apply fall back one by one: a policy the hand-written backward
      does not cover (see :attr:`fast_path_fallback`: e.g. a non-ReLU activation, ``critic_late_action``, image or dict
      observations) -> the autograd update; a replay buffer other than the plain ``ReplayBuffer`` (n-step, HER,
      dict observations) or ``VecNormalize`` -> ``replay_buffer.sample``; an optimizer other than ``Adam``/``AdamW``
      on CPU -> its own ``step()``.
    - ``"sb3"``: SB3's ``TD3.train`` unchanged (only for action-space per-sample target noise, the mode SB3 has).

    :param policy: The policy model to use (MlpPolicy, LnMlpPolicy, CnnPolicy, ...)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: learning rate for adam optimizer,
        the same learning rate will be used for all networks (Q-Values, Actor and Value function)
        it can be a function of the current progress remaining (from 1 to 0)
    :param buffer_size: size of the replay buffer
    :param learning_starts: how many steps of the model to collect transitions for before learning starts
    :param batch_size: Minibatch size for each gradient update
    :param tau: the soft update coefficient ("Polyak update", between 0 and 1)
    :param gamma: the discount factor
    :param train_freq: Update the model every ``train_freq`` steps. Alternatively pass a tuple of frequency and unit
        like ``(5, "step")`` or ``(2, "episode")``.
    :param gradient_steps: How many gradient steps to do after each rollout (see ``train_freq``)
        Set to ``-1`` means to do as many gradient steps as steps done in the environment
        during the rollout.
    :param action_noise: the action noise type (None by default), this can help
        for hard exploration problem. Cf common.noise for the different action noise type.
    :param replay_buffer_class: Replay buffer class to use (for instance ``HerReplayBuffer``).
        If ``None``, it will be automatically selected.
    :param replay_buffer_kwargs: Keyword arguments to pass to the replay buffer on creation.
    :param optimize_memory_usage: Enable a memory efficient variant of the replay buffer
        at a cost of more complexity.
    :param n_steps: When n_step > 1, uses n-step return (with the NStepReplayBuffer) when updating the Q-value network.
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments to be passed to the policy on creation
    :param verbose: Verbosity level: 0 for no output, 1 for info messages (such as device or wrappers used), 2 for
        debug messages
    :param seed: Seed for the pseudo random generators (also seeds the target-policy noise)
    :param device: Device (cpu, cuda, ...) on which the code should be run.
        Setting it to auto, the code will be run on the GPU if possible.
    :param target_policy_noise: Standard deviation sigma of the target-policy noise (action units of the scaled
        [-1, 1] action space, or parameter units); 0 disables it (vanilla DDPG)
    :param target_noise_clip: Elementwise clip c of the target-policy noise (``float("inf")``: no clip)
    :param target_noise_sampling: ``"per_sample"`` (independent noise per transition) or ``"per_batch"`` (one noise
        sample shared by the whole minibatch)
    :param target_noise_space: ``"action"`` (noise on mu'(s')) or ``"parameter"`` (noise on the target actor's
        weights, LayerNorm parameters excluded)
    :param update_mode: ``"fast"``, ``"exact"`` or ``"sb3"`` (see above)
    :param compile_update: In ``"fast"`` mode, run each gradient step of the hand-written update as one
        ``torch.compile`` graph (:mod:`sb3_ddpg_ext.compiled`: same algorithm and random draws, Adam equal up to
        float32 rounding; ~10-25 s of compilation per process, worth it on long runs with small networks). What it
        does not cover runs eagerly (:attr:`compiled_update_fallback`).
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
        "LnMlpPolicy": LnMlpPolicy,
    }

    # Tests set this to True to keep the last target noise in ``_last_target_noise`` (a tensor for the action space,
    # a dict ``parameter name -> noise`` for the parameter space; per-sample parameter noise has a leading batch dim).
    _record_target_noise: bool = False

    def __init__(
        self,
        policy: Union[str, type[TD3Policy]],
        env: Union[GymEnv, str],
        learning_rate: Union[float, Schedule] = 1e-3,
        buffer_size: int = 1_000_000,  # 1e6
        learning_starts: int = 100,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: Union[int, tuple[int, str]] = 1,
        gradient_steps: int = 1,
        action_noise: Optional[ActionNoise] = None,
        replay_buffer_class: Optional[type[ReplayBuffer]] = None,
        replay_buffer_kwargs: Optional[dict[str, Any]] = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        tensorboard_log: Optional[str] = None,
        policy_kwargs: Optional[dict[str, Any]] = None,
        verbose: int = 0,
        seed: Optional[int] = None,
        device: Union[th.device, str] = "auto",
        target_policy_noise: float = 0.0,
        target_noise_clip: float = 0.5,
        target_noise_sampling: str = "per_sample",
        target_noise_space: str = "action",
        update_mode: str = "fast",
        compile_update: bool = False,
        _init_setup_model: bool = True,
    ):
        super().__init__(
            policy=policy,
            env=env,
            learning_rate=learning_rate,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            action_noise=action_noise,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            n_steps=n_steps,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
        )
        self.target_policy_noise = target_policy_noise
        self.target_noise_clip = target_noise_clip
        self.target_noise_sampling = target_noise_sampling
        self.target_noise_space = target_noise_space
        self.update_mode = update_mode
        self.compile_update = compile_update
        self._validate_extension_args()
        self._last_target_noise: Any = None
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------ setup / validation
    def _validate_extension_args(self) -> None:
        for name in ("target_policy_noise", "target_noise_clip"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
            if math.isnan(value) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        if not math.isfinite(self.target_policy_noise):
            raise ValueError(f"target_policy_noise must be finite, got {self.target_policy_noise!r}")
        self.target_policy_noise = float(self.target_policy_noise)
        self.target_noise_clip = float(self.target_noise_clip)
        for name, allowed in (
            ("target_noise_sampling", TARGET_NOISE_SAMPLINGS),
            ("target_noise_space", TARGET_NOISE_SPACES),
            ("update_mode", UPDATE_MODES),
        ):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if not isinstance(self.compile_update, (bool, np.bool_)):
            raise ValueError(f"compile_update must be True or False, got {self.compile_update!r}")
        self.compile_update = bool(self.compile_update)
        if (
            self.update_mode == "sb3"
            and self._target_noise_active()
            and (self.target_noise_space != "action" or self.target_noise_sampling != "per_sample")
        ):
            raise ValueError(
                f"update_mode='sb3' (SB3's own TD3.train) only has action-space per-sample target noise, got "
                f"target_noise_space={self.target_noise_space!r}, target_noise_sampling={self.target_noise_sampling!r}; "
                f"use update_mode='exact' or 'fast'"
            )

    def _setup_learn(self, *args: Any, **kwargs: Any) -> tuple[int, BaseCallback]:
        total_timesteps, callback = super()._setup_learn(*args, **kwargs)
        # The target-policy noise settings, once per learn() (in the first dump of its logs; no random draw).
        self.logger.record("train/target_policy_noise", self.target_policy_noise)
        self.logger.record("train/target_noise_clip", self.target_noise_clip)
        self.logger.record("train/target_noise_sampling", self.target_noise_sampling)
        self.logger.record("train/target_noise_space", self.target_noise_space)
        self.logger.record("train/update_mode", self.update_mode)
        return total_timesteps, callback

    def _target_noise_active(self) -> bool:
        return self.target_policy_noise > 0 and self.target_noise_clip > 0

    def _setup_model(self) -> None:
        # ``load()`` sets attributes (saved ones and its ``**kwargs``) after ``__init__``, then calls this: re-check them
        self._validate_extension_args()
        super()._setup_model()
        self._setup_fast_cache()

    def _setup_fast_cache(self) -> None:
        """Parameter lists used by the update (rebuilt whenever the policy object changes)."""
        actor_params = list(self.actor.parameters())
        self._cache_policy = self.policy
        self._critic_own_params = own_parameters(self.critic, exclude=actor_params)
        self._critic_params = list(self.critic.parameters())
        self._critic_target_params = list(self.critic_target.parameters())
        self._actor_params = actor_params
        self._actor_target_params = list(self.actor_target.parameters())
        # every network's tensors in one polyak call (fast path)
        self._all_params = [*self._critic_params, *self._actor_params]
        self._all_target_params = [*self._critic_target_params, *self._actor_target_params]
        self._perturbable_names = [name for name, _ in perturbable_parameters(self.actor_target)]
        self._sampler: Optional[TorchReplaySampler] = None
        self._manual_key: Optional[tuple[int, ...]] = None
        self._manual: Union[ManualNetworks, str] = "not set up"
        self._policy_hooks: Optional[ModuleHooks] = None
        self._compiled: Optional[CompiledUpdate] = None
        self._compile_error: Optional[str] = None
        self._eval_switch_modules: Optional[list[nn.Module]] = None

    def _manual_update_networks(self) -> Union[ManualNetworks, str]:
        """
        The networks of the hand-written update (``update_mode="fast"``), or why it does not cover this model (then
        the autograd update runs). The layout check is redone when the policy or an optimizer object changes; the
        hook check at every call (~30 us), as hooks can come any time.
        """
        key = (id(self.policy), id(self.actor.optimizer), id(self.critic.optimizer))
        if key != self._manual_key:
            self._manual_key = key
            self._manual = manual_networks(self.policy)
            self._policy_hooks = ModuleHooks(self.policy.named_modules())
        if isinstance(self._manual, ManualNetworks):
            assert self._policy_hooks is not None
            hooked = self._policy_hooks.first_hooked()
            if hooked is not None:
                return f"module {hooked} has forward/backward hooks (the hand-written update would skip them)"
        return self._manual

    @property
    def fast_path_fallback(self) -> Optional[str]:
        """
        Why ``update_mode="fast"`` does not use the hand-written update for this model (None if it does, or if the
        update mode is not ``"fast"``).
        """
        if self.update_mode != "fast":
            return None
        networks = self._manual_update_networks()
        return networks if isinstance(networks, str) else None

    @property
    def compiled_update_fallback(self) -> Optional[str]:
        """
        Why ``compile_update=True`` does not run the compiled update for this model (None if it does, or if
        ``compile_update`` is off or the update mode is not ``"fast"``).
        """
        if self.update_mode != "fast" or not self.compile_update:
            return None
        if self._compile_error is not None:
            return f"compilation failed: {self._compile_error}"
        sampler = self._fast_sampler()
        return compile_fallback(self, self._manual_update_networks(), sampler)

    def _fast_sampler(self) -> Optional[TorchReplaySampler]:
        """The torch replay sampler of the fast path (None where it does not reproduce ``replay_buffer.sample``)."""
        if self.replay_buffer is None or not supports_fast_sampling(self.replay_buffer, self._vec_normalize_env):
            return None
        if self._sampler is None or not self._sampler.is_valid_for(self.replay_buffer):
            self._sampler = TorchReplaySampler(self.replay_buffer, device=self.device)  # type: ignore[arg-type]
        return self._sampler

    def _compiled_step(
        self, manual: Optional[ManualNetworks], sampler: Optional[TorchReplaySampler]
    ) -> Optional[CompiledUpdate]:
        """The compiled update for this train() call, or None (eager): see :attr:`compiled_update_fallback`."""
        if manual is None or sampler is None or not self.compile_update or self._compile_error is not None:
            return None
        if self._compiled is not None and self._compiled.is_valid_for(self, sampler):
            return self._compiled
        self._compiled = None
        if compile_fallback(self, manual, sampler) is None and CompiledUpdate.ready(self, manual):
            self._compiled = CompiledUpdate(self, manual, sampler)
        return self._compiled

    def _excluded_save_params(self) -> list[str]:
        return [
            *super()._excluded_save_params(),
            "_cache_policy",
            "_critic_own_params",
            "_critic_params",
            "_critic_target_params",
            "_actor_params",
            "_actor_target_params",
            "_perturbable_names",
            "_sampler",
            "_last_target_noise",
            "_manual",
            "_manual_key",
            "_policy_hooks",
            "_compiled",
            "_compile_error",
            "_eval_switch_modules",
            "_all_params",
            "_all_target_params",
        ]

    # ------------------------------------------------------------------ acting
    def _lean_actor(self) -> Optional[Callable[[np.ndarray], th.Tensor]]:
        """
        The actor on a VecEnv observation through its hand-written forward (the same kernels as its modules on the
        same float32 features: the same actions bit for bit), for lean acting in ``"fast"`` mode; None if the
        hand-written update does not cover the policy, e.g. when a module has hooks (then the actor module runs, hooks
        and all). The policy is then an MLP on a flattened float ``Box`` observation, the VecEnv's ``(n_envs, *shape)``
        array, so ``obs_to_tensor``'s copy, shape checks and dict handling are not needed.
        """
        nets = self._manual_update_networks()
        if not isinstance(nets, ManualNetworks):
            return None
        forward = nets.actor.forward_only
        return lambda obs: forward(_flat_features(th.as_tensor(obs)))

    def _sample_action(
        self,
        learning_starts: int,
        action_noise: Optional[ActionNoise] = None,
        n_envs: int = 1,
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.update_mode != "fast":
            return super()._sample_action(learning_starts, action_noise, n_envs)
        if (
            self.num_timesteps < learning_starts
            or not isinstance(self.action_space, spaces.Box)
            or type(self.policy)._predict is not TD3Policy._predict
        ):
            with th.inference_mode():
                return super()._sample_action(learning_starts, action_noise, n_envs)
        # Lean acting (sb3_ddpg_ext.acting): what SB3 does through ``predict``, without the per-step
        # ``set_training_mode(False)`` (collect_rollouts has just set it; ~0.1-0.2 ms per call here), without the
        # unscale -> scale round trip of the action (equal up to float32 rounding) and, where the hand-written update
        # covers the policy, with the actor's hand-written forward (no module call overhead).
        assert self._last_obs is not None, "self._last_obs was not set"
        lean_actor = self._lean_actor()
        if lean_actor is None:
            return actor_actions(self.policy, [self.actor], self._last_obs, action_noise)
        return actor_actions(self.policy, [lean_actor], self._last_obs, action_noise, to_tensor=lambda obs: obs)

    def _eval_switch_is_redundant(self) -> bool:
        """
        Whether ``policy.set_training_mode(False)`` would change nothing: every module it switches (the policy, its
        actor and critic and their submodules) is already in eval mode and none overrides ``train()``. The
        hand-written update never switches to training mode (it covers no layer that has one), so after the first
        rollout this holds at every step.
        """
        if self._eval_switch_modules is None or self._eval_switch_modules[0] is not self.policy:
            policy = self.policy
            switch_overridden = type(policy).set_training_mode is not TD3Policy.set_training_mode or any(
                type(net).set_training_mode is not BasePolicy.set_training_mode for net in (self.actor, self.critic)
            )
            modules = [policy, *self.actor.modules(), *self.critic.modules()]
            if switch_overridden or any(type(m).train is not nn.Module.train for m in modules):
                modules = [policy]  # never redundant: the policy or a module switches in its own way
                self._eval_switch_modules = modules
                return False
            self._eval_switch_modules = modules
        modules = self._eval_switch_modules
        return len(modules) > 1 and not any(m.training for m in modules)

    @contextlib.contextmanager
    def _skip_redundant_eval_switch(self) -> Iterator[None]:
        """
        In ``"fast"`` mode, let SB3's ``collect_rollouts`` / ``predict`` skip ``policy.set_training_mode(False)`` when
        it would change nothing (:meth:`_eval_switch_is_redundant`; a walk over every module, ~50-100 us per call
        here, once per env step). Every other call goes through: the policy's method is shadowed, for the duration
        only, by one that checks first.
        """
        policy = self.policy
        if self.update_mode != "fast" or "set_training_mode" in vars(policy) or not self._eval_switch_is_redundant():
            yield  # (or already shadowed by an enclosing call, e.g. ``predict`` in a callback during a rollout)
            return
        switch = policy.set_training_mode

        def set_training_mode(mode: bool) -> None:
            if mode or not self._eval_switch_is_redundant():
                switch(mode)

        policy.set_training_mode = set_training_mode  # type: ignore[method-assign]
        try:
            yield
        finally:
            del policy.set_training_mode

    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        train_freq: TrainFreq,
        replay_buffer: ReplayBuffer,
        action_noise: Optional[ActionNoise] = None,
        learning_starts: int = 0,
        log_interval: Optional[int] = None,
    ) -> RolloutReturn:
        with self._skip_redundant_eval_switch():
            return super().collect_rollouts(
                env, callback, train_freq, replay_buffer, action_noise, learning_starts, log_interval
            )

    def predict(
        self,
        observation: Union[np.ndarray, dict[str, np.ndarray]],
        state: Optional[tuple[np.ndarray, ...]] = None,
        episode_start: Optional[np.ndarray] = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, Optional[tuple[np.ndarray, ...]]]:
        with self._skip_redundant_eval_switch():
            return super().predict(observation, state, episode_start, deterministic)

    # ------------------------------------------------------------------ target actions
    def _target_actions(
        self, next_observations: Any, target_actor: Optional[Callable[[th.Tensor], th.Tensor]] = None
    ) -> th.Tensor:
        """
        The target actions ``a'`` of the TD target, with the configured target-policy noise (called under
        ``th.no_grad()`` inside :meth:`train`). Tests wrap this method to inspect the noise actually applied.

        :param next_observations: Batch of next observations ``s'``.
        :param target_actor: Computes ``mu'(s')`` in place of ``self.actor_target`` (the fast path passes the
            hand-written forward of the same network); not used by parameter-space target noise.
        :return: ``a'``, shape ``(batch, action_dim)``, in the scaled [-1, 1] action space.
        """
        actor_target: Callable[[Any], th.Tensor] = self.actor_target if target_actor is None else target_actor
        batch = next(iter(next_observations.values())) if isinstance(next_observations, dict) else next_observations
        n_rows = batch.shape[0]
        action_dim = int(np.prod(self.action_space.shape))  # type: ignore[arg-type]
        sigma, clip = self.target_policy_noise, self.target_noise_clip
        if not self._target_noise_active():
            if self.update_mode != "fast":
                # SB3's DDPG draws N(0, 0.1) noise then clips it to 0: consume the same draws so that torch's global
                # RNG stream stays identical to SB3's (the values are discarded).
                th.empty((n_rows, action_dim), device=self.device).normal_()
            self._last_target_noise = None
            return actor_target(next_observations).clamp(-1, 1)

        if self.target_noise_space == "action":
            noise = action_noise(n_rows, action_dim, sigma, clip, self.target_noise_sampling, self.device)
            if self._record_target_noise:
                self._last_target_noise = noise
            return (actor_target(next_observations) + noise).clamp(-1, 1)

        actions, noise_dict = parameter_noise_actions(
            self.actor_target,
            next_observations,
            self._perturbable_names,
            sigma,
            clip,
            self.target_noise_sampling,
            record=self._record_target_noise,
        )
        if self._record_target_noise:
            self._last_target_noise = noise_dict
        return actions

    # ------------------------------------------------------------------ training
    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        if self.update_mode == "sb3":
            TD3.train(self, gradient_steps, batch_size)
            return
        if getattr(self, "_cache_policy", None) is not self.policy:
            self._setup_fast_cache()
        fast = self.update_mode == "fast"
        networks = self._manual_update_networks() if fast else None
        manual = networks if isinstance(networks, ManualNetworks) else None
        if manual is None:
            # Switch to train mode (this affects batch norm / dropout). The hand-written update only covers layers
            # without a training mode (Linear, LayerNorm, ReLU, Tanh), so it skips this per-call module walk.
            self.policy.set_training_mode(True)
        # Update learning rate according to lr schedule
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])

        sampler = self._fast_sampler() if fast else None
        compiled = self._compiled_step(manual, sampler)

        actor_losses: list[float] = []
        critic_losses: list[float] = []
        if compiled is not None:
            gradient_steps -= self._compiled_train(compiled, gradient_steps, batch_size, actor_losses, critic_losses)
        # (the hand-written update calls the fused kernel itself, see _adam_step)
        with fused_adam([self.actor.optimizer, self.critic.optimizer], enabled=fast and manual is None):
            for _ in range(gradient_steps):
                self._n_updates += 1
                replay_data: ReplayBufferSamples
                if sampler is not None:
                    replay_data = sampler.sample(batch_size)
                else:
                    replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
                # For n-step replay, discount factor is gamma**n_steps (when no early termination)
                discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma

                if manual is not None:
                    self._manual_step(manual, replay_data, discounts, actor_losses, critic_losses)
                    continue

                with th.no_grad():
                    next_actions = self._target_actions(replay_data.next_observations)
                    # Compute the next Q-values: min over all critics targets
                    next_q_values = th.cat(self.critic_target(replay_data.next_observations, next_actions), dim=1)
                    next_q_values, _ = th.min(next_q_values, dim=1, keepdim=True)
                    target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values

                # Get current Q-values estimates for each critic network
                current_q_values = self.critic(replay_data.observations, replay_data.actions)
                critic_loss = sum(F.mse_loss(current_q, target_q_values) for current_q in current_q_values)
                assert isinstance(critic_loss, th.Tensor)
                critic_losses.append(critic_loss.item())

                self.critic.optimizer.zero_grad()
                critic_loss.backward()
                self.critic.optimizer.step()

                # Delayed policy updates
                if self._n_updates % self.policy_delay == 0:
                    # The critic's own weights get no gradient from the actor loss (SB3 computes and discards it)
                    with frozen(self._critic_own_params):
                        actor_loss = -self.critic.q1_forward(
                            replay_data.observations, self.actor(replay_data.observations)
                        ).mean()
                        actor_losses.append(actor_loss.item())
                        self.actor.optimizer.zero_grad()
                        actor_loss.backward()
                    self.actor.optimizer.step()

                    foreach_polyak(self._critic_params, self._critic_target_params, self.tau)
                    foreach_polyak(self._actor_params, self._actor_target_params, self.tau)
                    # Copy running stats, see SB3 GH issue #996
                    foreach_polyak(self.critic_batch_norm_stats, self.critic_batch_norm_stats_target, 1.0)
                    foreach_polyak(self.actor_batch_norm_stats, self.actor_batch_norm_stats_target, 1.0)

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if len(actor_losses) > 0:
            self.logger.record("train/actor_loss", _mean(actor_losses))
        self.logger.record("train/critic_loss", _mean(critic_losses))

    def _compiled_train(
        self,
        compiled: CompiledUpdate,
        gradient_steps: int,
        batch_size: int,
        actor_losses: list[float],
        critic_losses: list[float],
    ) -> int:
        """
        The gradient steps of :meth:`train` through the compiled update (losses read once, at the end).

        :return: The number of steps done: all of them, or 0 if the graph fails to compile (e.g. no C++ compiler),
            which is then recorded (:attr:`compiled_update_fallback`) and the caller does the steps eagerly.
        """
        critic_t: list[th.Tensor] = []
        actor_t: list[th.Tensor] = []
        for _ in range(gradient_steps):
            self._n_updates += 1
            actor_step = self._n_updates % self.policy_delay == 0
            try:
                critic_loss, actor_loss = compiled.step(self, batch_size, actor_step)
            except Exception as error:
                if critic_t or not _is_compile_error(error):
                    raise
                self._compile_error = f"{type(error).__name__}: {error}".splitlines()[0][:300]
                self._compiled = None
                self._n_updates -= 1
                return 0
            critic_t.append(critic_loss)
            if actor_step:
                actor_t.append(actor_loss)
        critic_losses += th.stack(critic_t).tolist()
        actor_losses += th.stack(actor_t).tolist() if actor_t else []
        return gradient_steps

    @th.no_grad()
    def _manual_step(
        self,
        nets: ManualNetworks,
        replay_data: ReplayBufferSamples,
        discounts: Union[th.Tensor, float],
        actor_losses: list[float],
        critic_losses: list[float],
    ) -> None:
        """
        One gradient step (critic, then, every ``policy_delay`` updates, actor and targets) with the hand-written
        backward of :class:`~sb3_ddpg_ext.fast.ManualMLP`: the same algorithm and kernels as the autograd update, but
        no graph, no critic weight gradients in the actor step and only the action columns of the critic's input
        gradient. The TD target uses the hand-written forward of the target networks (parameter-space target noise:
        the target actor module, through ``torch.func``).
        """
        next_obs = _flat_features(replay_data.next_observations)
        if self._target_noise_active() and self.target_noise_space == "parameter":
            next_actions = self._target_actions(replay_data.next_observations)
        else:
            next_actions = self._target_actions(next_obs, target_actor=nets.actor_target.forward_only)
        target_input = th.cat([next_obs, next_actions], dim=1)
        next_q_values = nets.critic_targets[0].forward_only(target_input)
        for critic_target in nets.critic_targets[1:]:
            next_q_values = th.minimum(next_q_values, critic_target.forward_only(target_input))
        target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values

        obs = _flat_features(replay_data.observations)
        critic_input = th.cat([obs, replay_data.actions], dim=1)
        critic_loss = 0.0
        for critic_net in nets.critics:
            current_q, saved = critic_net.forward(critic_input)
            diff = current_q - target_q_values
            critic_loss += diff.square().mean().item()
            # d/dq of mse_loss(q, y) = 2 (q - y) / numel
            critic_net.backward(diff.mul_(2.0 / diff.numel()), saved)
        critic_losses.append(critic_loss)
        _adam_step(self.critic.optimizer)

        if self._n_updates % self.policy_delay == 0:
            actions, saved_actor = nets.actor.forward(obs)
            q1, saved_critic = nets.critics[0].forward(th.cat([obs, actions], dim=1))
            actor_losses.append(-q1.mean().item())
            # d/dq of -mean(q)
            grad_q = th.full_like(q1, -1.0 / q1.numel())
            grad_actions = nets.critics[0].backward(
                grad_q, saved_critic, weight_grads=False, input_columns=slice(nets.obs_dim, None)
            )
            assert grad_actions is not None
            nets.actor.backward(grad_actions, saved_actor)
            _adam_step(self.actor.optimizer)

            lerp_polyak(self._all_params, self._all_target_params, self.tau)
            # (no batch-norm statistics: the hand-written update only covers Linear/LayerNorm/ReLU/Tanh networks)
