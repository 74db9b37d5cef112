"""
SB3 callbacks of sb3_ddpg_ext (all of them, as SB3 keeps its own in ``stable_baselines3.common.callbacks``).
They work with SB3's ``DDPG`` / ``TD3`` and subclasses (e.g. :class:`sb3_ddpg_ext.ddpg.DDPG`) without changing the
algorithm class, and from a plain rl-zoo3 ``callback:`` entry.

- :class:`ParameterNoiseCallback`: adaptive parameter-space noise (Plappert et al., ICLR 2018);
- :class:`ExplorationCallback`: exploration (action noise and/or parameter noise) from one exploration spec
  string (:mod:`sb3_ddpg_ext.exploration`); :class:`ActionNoiseCallback`: the same for action noise only;
- :class:`DivergenceGuardCallback`: stops a run whose losses, Q-values or weights become NaN/inf and writes a
  marker file (:func:`read_divergence_marker`).

The zoo paths ``sb3_ddpg_ext.zoo.ExplorationCallback`` / ``ActionNoiseCallback`` and
``sb3_ddpg_ext.divergence.DivergenceGuardCallback`` (in YAMLs and results) name these same classes.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.td3.td3 import TD3
from torch import nn

from sb3_ddpg_ext.acting import actor_actions
from sb3_ddpg_ext.exploration import parse_exploration_spec
from sb3_ddpg_ext.noise import make_action_noise, noise_sigma
from sb3_ddpg_ext.param_noise import (
    SAMPLING_MODES,
    AdaptiveParamNoiseSpec,
    SamplingMode,
    TensorObs,
    action_distance,
    clone_module,
    perturb_into,
)
from sb3_ddpg_ext.seeding import (
    derive_seed,
    numpy_generator_from_state,
    numpy_generator_state,
    param_noise_generators,
    torch_generator_from_state,
    torch_generator_state,
)

__all__ = [
    "DIVERGENCE_MARKER",
    "EXPLORATION_SPEC_ATTR",
    "PARAM_NOISE_STATE_ATTR",
    "ActionNoiseCallback",
    "DivergenceGuardCallback",
    "ExplorationCallback",
    "ParameterNoiseCallback",
    "read_divergence_marker",
]

#: Name of the model attribute holding the parameter-noise state; a plain JSON-serialisable dict,
#: so ``model.save()`` stores it and ``load()`` restores it.
PARAM_NOISE_STATE_ATTR = "param_noise_state"
#: Model attribute recording the spec of the ExplorationCallback that set ``model.action_noise`` (saved with it).
EXPLORATION_SPEC_ATTR = "exploration_spec"


class ParameterNoiseCallback(BaseCallback):
    """
    Adaptive parameter-space noise for SB3 ``DDPG`` / ``TD3`` and subclasses, as a callback.

    Paper: https://arxiv.org/abs/1706.01905 (Plappert et al., "Parameter Space Noise for Exploration", ICLR 2018).
    Algorithm as in openai/baselines ``baselines/ddpg/ddpg_learner.py``.

    Behaviour:

    - Exploration rollouts (``OffPolicyAlgorithm.collect_rollouts``, after ``learning_starts``) act with a perturbed
      copy of the current actor, one per environment. Env ``i``'s copy is re-drawn from the current actor with the
      current sigma when env ``i``'s episode ends, and for every env at the start of each ``learn()``. Any action noise
      of the model is added on top (as baselines' ``adaptive-param_0.2,normal_0.1``), then clipped to [-1, 1],
      exactly as SB3's ``_sample_action`` does.
    - ``model.predict()`` (either ``deterministic`` value), ``EvalCallback`` and the gradient updates use the
      unperturbed actor: only the model's private ``_sample_action`` is replaced, during ``learn()`` only
      (an instance attribute installed in ``_on_training_start`` and removed in ``_on_training_end``; it is also
      excluded from ``model.save()`` while installed).
    - Every ``adaptation_interval`` gradient steps (counted with ``model._n_updates``), once the replay buffer holds
      ``batch_size`` transitions (``replay_buffer.size() * n_envs``: SB3's ``size()`` counts rows of ``n_envs``
      transitions; baselines' ``memory.nb_entries``), a fresh replay batch is drawn, a separate perturbation of the
      current actor is made with the current sigma, the RMS action distance ``d`` is measured and sigma adapted
      (:meth:`AdaptiveParamNoiseSpec.adapt`).
    - Logs ``param_noise/stddev`` (every rollout) and ``param_noise/distance`` (at each adaptation).
    - State persistence: the sigma and the states of this callback's two random generators (perturbations and
      replay indices) are stored on the **model**, as the plain JSON-serialisable dict attribute
      ``model.param_noise_state`` (see :data:`PARAM_NOISE_STATE_ATTR`), updated at the start and end of every
      ``learn()`` and at every adaptation. SB3's ``save()`` stores it with the other model attributes and ``load()``
      restores it; on the next ``learn()`` a callback with ``restore_state=True`` starts from that sigma (instead of
      ``initial_stddev``) and, if it has not been used yet, those generator states (instead of seeding from
      ``seed``), so ``save()`` -> ``load()`` -> ``learn()`` draws the same perturbations as going on with the same
      callback without the round trip. A ``save()`` during ``learn()`` (e.g. a checkpoint) stores the generators as
      of the last adaptation.

    Observation scale matters: the perturbed actor explores through how its output depends on the observation, so an
    input on a much smaller scale than the others barely shapes the exploration. Baselines normalised observations
    by default; with SB3 wrap the env in ``VecNormalize(norm_obs=True, norm_reward=False)`` (zoo: ``normalize:``).
    On MountainCarContinuous-v0 (30k steps) it took the solved seeds from 1 of 4 to 13 of 16 (README, "Parameter-space noise").

    Usable from an rl-zoo3 YAML::

        callback:
          - sb3_ddpg_ext.callbacks.ParameterNoiseCallback:
              initial_stddev: 0.2
              sampling: per_tensor

    :param initial_stddev: Initial parameter noise std sigma (baselines ``adaptive-param_0.2``: 0.2).
    :param desired_action_stddev: Target RMS action distance delta, in the scaled [-1, 1] action space.
    :param adoption_coefficient: Adaptation factor alpha (> 1).
    :param adaptation_interval: Number of gradient steps between two adaptations (baselines: 50).
    :param sampling: ``"per_element"`` (independent noise per weight, the paper's method), ``"per_tensor"``
        (one scalar per parameter tensor) or ``"single"`` (one scalar for the whole actor).
    :param restore_state: Start from the state in ``model.param_noise_state`` when the model has one (e.g. after
        ``load()`` or a previous ``learn()``): its sigma instead of ``initial_stddev`` and, when stored and this
        callback has not been used yet, its generator states instead of ``seed``.
    :param seed: Seed (a non-negative integer) of the perturbation and replay-index generators, used when no
        generator state is restored. If None, derived from ``model.seed`` when set (so ``--seed`` of the zoo makes
        the run reproducible), else from OS entropy.
    :param verbose: Verbosity (1: print each adaptation).
    """

    def __init__(
        self,
        initial_stddev: float = 0.2,
        desired_action_stddev: float = 0.2,
        adoption_coefficient: float = 1.01,
        adaptation_interval: int = 50,
        sampling: SamplingMode = "per_element",
        restore_state: bool = True,
        seed: Optional[int] = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose=verbose)
        if sampling not in SAMPLING_MODES:
            raise ValueError(f"sampling must be one of {SAMPLING_MODES}, got {sampling!r}")
        if (
            isinstance(adaptation_interval, (bool, np.bool_))
            or not isinstance(adaptation_interval, (int, np.integer))
            or adaptation_interval < 1
        ):
            raise ValueError(f"adaptation_interval must be an integer >= 1, got adaptation_interval={adaptation_interval!r}")
        if seed is not None and (isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got seed={seed!r}")
        self.spec = AdaptiveParamNoiseSpec(initial_stddev, desired_action_stddev, adoption_coefficient)
        self.adaptation_interval = int(adaptation_interval)
        self.sampling: SamplingMode = sampling
        self.restore_state = restore_state
        self.seed = None if seed is None else int(seed)
        self.perturbed_actors: list[nn.Module] = []
        #: Number of perturbation draws per env since the last ``learn()`` started (1 at learn start, +1 per episode end).
        self.n_resamples: np.ndarray = np.zeros(0, dtype=np.int64)
        self.n_adaptations = 0
        self.last_distance: Optional[float] = None
        self._adaptation_actor: Optional[nn.Module] = None
        self._generator: Optional[th.Generator] = None
        self._rng: Optional[np.random.Generator] = None
        self._last_adapt_n_updates = 0
        self._original_sample_action: Optional[Callable[..., tuple[np.ndarray, np.ndarray]]] = None
        self._original_excluded_save_params: Optional[Callable[[], list[str]]] = None
        self._active = False
        #: ``model.start_time`` of the ``learn()`` call the overrides were installed in (SB3 sets it anew in every
        #: ``_setup_learn``); a different value means that ``learn()`` ended without ``_on_training_end`` (it raised).
        self._learn_id: Optional[float] = None

    # ------------------------------------------------------------------ setup / teardown
    @property
    def current_stddev(self) -> float:
        """The current parameter noise standard deviation sigma."""
        return self.spec.current_stddev

    def _td3(self) -> TD3:
        model = self.model
        assert isinstance(model, TD3)
        return model

    def _actor(self) -> nn.Module:
        return self._td3().actor

    def _init_callback(self) -> None:
        if not isinstance(self.model, TD3):
            raise ValueError(
                f"ParameterNoiseCallback needs a DDPG/TD3 model (a stable_baselines3 TD3 subclass), "
                f"got model of type {type(self.model).__name__}"
            )

    def _run_seed(self) -> Optional[int]:
        seed = self.seed if self.seed is not None else getattr(self.model, "seed", None)
        return None if seed is None else int(seed)

    def _on_training_start(self) -> None:
        model = self._td3()
        existing = model.__dict__.get("_sample_action")
        if existing is not None:
            owner = getattr(existing, "__self__", None)
            if isinstance(owner, ParameterNoiseCallback) and owner._is_stale():
                owner._uninstall()  # left over from a learn() that raised: not active any more
            elif isinstance(owner, ParameterNoiseCallback) and owner is not self and owner._active:
                raise ValueError("model already has an active ParameterNoiseCallback; use only one per learn() call")
        state = model.__dict__.get(PARAM_NOISE_STATE_ATTR)
        if not (self.restore_state and isinstance(state, dict)):
            state = {}
        if "current_stddev" in state:
            self.spec.current_stddev = float(state["current_stddev"])
            self.n_adaptations = int(state.get("n_adaptations", 0))
        if self._generator is None:  # a callback used before goes on with its own generators
            if "generator_state" in state and "rng_state" in state:
                self._restore_generators(state)
            else:
                self._generator, self._rng = param_noise_generators(self._run_seed())

        actor = self._actor()
        n_envs = model.n_envs
        self.perturbed_actors = [self._make_clone(actor) for _ in range(n_envs)]
        self._adaptation_actor = self._make_clone(actor)
        self.n_resamples = np.zeros(n_envs, dtype=np.int64)
        for env_idx in range(n_envs):
            self._resample(env_idx)
        self._last_adapt_n_updates = int(getattr(model, "_n_updates", 0))

        # Instance-level overrides, removed in _on_training_end (or, when learn() raised, at the next learn() that
        # acts: see _is_stale); excluded from save() while installed.
        self._original_sample_action = type(model)._sample_action.__get__(model)
        self._original_excluded_save_params = type(model)._excluded_save_params.__get__(model)
        model._sample_action = self._perturbed_sample_action  # type: ignore[method-assign]
        model._excluded_save_params = self._excluded_save_params  # type: ignore[method-assign]
        self._active = True
        self._learn_id = model.start_time
        self._store_state()

    def _on_training_end(self) -> None:
        self._uninstall()
        self._store_state()

    def _uninstall(self) -> None:
        model = self.model
        for name in ("_sample_action", "_excluded_save_params"):
            value = model.__dict__.get(name)
            if value is not None and getattr(value, "__self__", None) is self:
                del model.__dict__[name]
        self._active = False
        self._learn_id = None

    def _is_stale(self) -> bool:
        """Whether the overrides are installed for a ``learn()`` call other than the model's current one."""
        return self._active and self._learn_id != self.model.start_time

    def _excluded_save_params(self) -> list[str]:
        assert self._original_excluded_save_params is not None
        return [*self._original_excluded_save_params(), "_sample_action", "_excluded_save_params"]

    def _store_state(self) -> None:
        assert self._generator is not None and self._rng is not None
        setattr(
            self.model,
            PARAM_NOISE_STATE_ATTR,
            {
                "current_stddev": self.spec.current_stddev,
                "desired_action_stddev": self.spec.desired_action_stddev,
                "adoption_coefficient": self.spec.adoption_coefficient,
                "sampling": self.sampling,
                "n_adaptations": self.n_adaptations,
                # torch.Generator state (a uint8 tensor) as base64 text, NumPy's as its (JSON-able) state dict
                "generator_state": torch_generator_state(self._generator),
                "rng_state": numpy_generator_state(self._rng),
            },
        )

    def _restore_generators(self, state: dict[str, Any]) -> None:
        """Set the perturbation and replay-index generators to the states stored by :meth:`_store_state`."""
        self._generator = torch_generator_from_state(state["generator_state"])
        self._rng = numpy_generator_from_state(state["rng_state"], f"{PARAM_NOISE_STATE_ATTR}['rng_state']")

    @staticmethod
    def _make_clone(actor: nn.Module) -> nn.Module:
        clone = clone_module(actor)
        clone.train(False)
        return clone

    # ------------------------------------------------------------------ perturbations
    def _resample(self, env_idx: int) -> None:
        perturb_into(self._actor(), self.perturbed_actors[env_idx], self.spec.current_stddev, self.sampling, self._generator)
        self.n_resamples[env_idx] += 1

    def _perturbed_sample_action(
        self,
        learning_starts: int,
        action_noise: Optional[ActionNoise] = None,
        n_envs: int = 1,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Replacement of ``OffPolicyAlgorithm._sample_action`` acting with the per-env perturbed actors."""
        model = self._td3()
        if self._is_stale():
            # The learn() this was installed in raised (no _on_training_end): remove the overrides, act as SB3.
            self._uninstall()
            return type(model)._sample_action(model, learning_starts, action_noise, n_envs)
        assert self._original_sample_action is not None
        if model.num_timesteps < learning_starts:
            # Warm-up: uniform random actions, as SB3.
            return self._original_sample_action(learning_starts, action_noise, n_envs)
        assert model._last_obs is not None, "self._last_obs was not set"
        return actor_actions(model.policy, self.perturbed_actors, model._last_obs, action_noise)

    # ------------------------------------------------------------------ adaptation
    def _sample_replay_observations(self, batch_size: int) -> TensorObs:
        """Observations of a replay batch, drawn with this callback's own generator (does not touch np.random)."""
        model = self._td3()
        buffer = model.replay_buffer
        assert buffer is not None and self._rng is not None
        env = model._vec_normalize_env
        if isinstance(buffer, DictReplayBuffer):  # before ReplayBuffer: it is a subclass
            upper = buffer.buffer_size if buffer.full else buffer.pos
            batch_inds = self._rng.integers(0, upper, size=batch_size)
            env_inds = self._rng.integers(0, buffer.n_envs, size=batch_size)
            obs_dict = buffer._normalize_obs({k: v[batch_inds, env_inds] for k, v in buffer.observations.items()}, env)
            assert isinstance(obs_dict, dict)
            return {k: buffer.to_torch(v) for k, v in obs_dict.items()}
        if isinstance(buffer, ReplayBuffer):
            upper = buffer.buffer_size if buffer.full else buffer.pos
            batch_inds = self._rng.integers(0, upper, size=batch_size)
            env_inds = self._rng.integers(0, buffer.n_envs, size=batch_size)
            obs = buffer._normalize_obs(buffer.observations[batch_inds, env_inds], env)
            return buffer.to_torch(obs)  # type: ignore[arg-type]
        # Unknown buffer type: use its own sampler.
        return buffer.sample(batch_size, env=env).observations  # type: ignore[return-value]

    def adapt(self) -> float:
        """
        One adaptation step: fresh replay batch, separate perturbation with the current sigma, distance, sigma update.

        :return: The measured distance.
        """
        assert self._adaptation_actor is not None
        actor = self._actor()
        self.model.policy.set_training_mode(False)
        perturb_into(actor, self._adaptation_actor, self.spec.current_stddev, self.sampling, self._generator)
        obs = self._sample_replay_observations(self._td3().batch_size)
        distance = action_distance(actor, self._adaptation_actor, obs)
        self.spec.adapt(distance)
        self.n_adaptations += 1
        self.last_distance = distance
        self.logger.record("param_noise/distance", distance)
        self.logger.record("param_noise/stddev", self.spec.current_stddev)
        self._store_state()
        if self.verbose >= 1:
            print(f"param noise: distance={distance:.4f} -> stddev={self.spec.current_stddev:.4f}")
        return distance

    def _on_rollout_start(self) -> None:
        # Gradient steps happen between rollouts: count them here.
        model = self._td3()
        n_updates = int(getattr(model, "_n_updates", 0))
        buffer = model.replay_buffer
        # size() counts rows of n_envs transitions; compare transitions with batch_size (baselines' nb_entries)
        if buffer is not None and buffer.size() * buffer.n_envs >= model.batch_size:
            while n_updates - self._last_adapt_n_updates >= self.adaptation_interval:
                self._last_adapt_n_updates += self.adaptation_interval
                self.adapt()
        else:
            self._last_adapt_n_updates = n_updates
        self.logger.record("param_noise/stddev", self.spec.current_stddev)

    def _on_step(self) -> bool:
        dones = self.locals.get("dones")
        if dones is not None:
            for env_idx in np.flatnonzero(dones):
                self._resample(int(env_idx))
        return True


class ExplorationCallback(BaseCallback):
    """
    Exploration of a DDPG / TD3 model from one baselines-style spec string, usable as an rl-zoo3 ``callback:`` entry
    (so it works with plain ``python -m rl_zoo3.train --algo ddpg`` and with ``--algo ddpg_ext``)::

        callback:
          - sb3_ddpg_ext.zoo.ExplorationCallback:
              spec: "adaptive-param_0.2,normal_0.1"

    At the start of training it sets ``model.action_noise`` to ``make_action_noise(<action part>, action_dim,
    n_envs, seed)`` (one independent stream per env when ``n_envs > 1``), and when the spec has a parameter-noise part
    it runs a :class:`sb3_ddpg_ext.callbacks.ParameterNoiseCallback` (forwarding every callback event to it).
    The spec fully defines exploration: if the model already has an action noise that this callback did not set
    (e.g. from the zoo's ``noise_type``), a ``ValueError`` is raised unless ``override=True``, in which case it is
    replaced (by ``None`` for a spec without action noise). On a later ``learn()`` the noise this callback set is
    kept as it is (its decay schedule goes on). The spec is recorded as ``model.exploration_spec`` (saved with the
    model), so after ``save()`` / ``load()`` a callback with the same spec adopts the loaded noise, state included
    (continuing training, e.g. the zoo's ``-i``, needs no ``override``); ``override=True`` rebuilds it instead.

    Placeholders in the action-noise part, replaced when training starts: ``{total_timesteps}`` (the ``learn()``
    budget, ``-n`` included) and ``{noise_steps}`` (the number of noise draws per env in that ``learn()`` call:
    ``ceil((total_timesteps - num_timesteps) / n_envs)``; SB3 draws the noise at every step, the uniform-random
    warm-up steps before ``learning_starts`` included), e.g. ``normal_0.2_0.0_{noise_steps}`` decays sigma
    linearly to 0 over the run.

    Logs ``noise/sigma`` at every rollout start: the scale of the model's action noise for that rollout (the
    current sigma of a decaying Gaussian; the mean over action dimensions and envs), plus the ``param_noise/*``
    keys of :class:`ParameterNoiseCallback` with a parameter-noise part.

    :param spec: The exploration spec, see :func:`sb3_ddpg_ext.exploration.parse_exploration_spec`.
    :param seq_len: Sequence length of coloured / pink noise; ``None`` for the training env's time limit
        (``max_episode_steps``), or 1000 when it has none.
    :param seed: Seed of the noise; ``None`` derives one from the model's seed (the zoo's ``--seed``), so the run
        is reproducible. Action noise and parameter noise get independent streams.
    :param override: Replace an action noise the model already has instead of raising.
    :param param_noise_kwargs: Extra keyword arguments of ``ParameterNoiseCallback`` (``adoption_coefficient``,
        ``adaptation_interval``, ``desired_action_stddev`` to differ from the initial std, ...).
    :param verbose: Verbosity (1: print what was set up).
    """

    def __init__(
        self,
        spec: str,
        seq_len: Optional[int] = None,
        seed: Optional[int] = None,
        override: bool = False,
        param_noise_kwargs: Optional[dict[str, Any]] = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose=verbose)
        self.spec = spec
        self.parsed = parse_exploration_spec(spec)
        if seq_len is not None and (not isinstance(seq_len, (int, np.integer)) or isinstance(seq_len, bool) or seq_len < 2):
            raise ValueError(f"seq_len must be an integer >= 2 or None, got seq_len={seq_len!r}")
        if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)):
            raise ValueError(f"seed must be an integer or None, got seed={seed!r}")
        self.seq_len = seq_len
        self.seed = seed
        self.override = bool(override)
        self.param_noise_kwargs = dict(param_noise_kwargs or {})
        if self.param_noise_kwargs and self.parsed.param_noise_stddev is None:
            raise ValueError(f"param_noise_kwargs given but exploration spec {spec!r} has no parameter-noise part")
        #: The action noise this callback set (``None`` before training starts or for a spec without one).
        self.action_noise: Optional[ActionNoise] = None
        #: The resolved action-noise spec string (placeholders replaced), set at training start.
        self.action_noise_spec: Optional[str] = None
        self.param_noise_callback: Optional[ParameterNoiseCallback] = None
        if self.parsed.param_noise_stddev is not None:
            kwargs: dict[str, Any] = {
                "initial_stddev": self.parsed.param_noise_stddev,
                "desired_action_stddev": self.parsed.param_noise_stddev,
                "sampling": self.parsed.param_noise_sampling,
                "verbose": verbose,
            }
            kwargs.update(self.param_noise_kwargs)
            # seed None: ParameterNoiseCallback derives its own stream from model.seed.
            kwargs.setdefault("seed", derive_seed(seed, 1))
            self.param_noise_callback = ParameterNoiseCallback(**kwargs)

    # -------------------------------------------------------------- helpers
    def _run_seed(self) -> Optional[int]:
        seed = self.seed if self.seed is not None else getattr(self.model, "seed", None)
        return None if seed is None else int(seed)

    def _episode_length(self) -> int:
        if self.seq_len is not None:
            return int(self.seq_len)
        env = self.model.get_env()
        if env is not None:
            try:
                env_spec = env.get_attr("spec", indices=[0])[0]
            except AttributeError:
                env_spec = None
            max_steps = getattr(env_spec, "max_episode_steps", None)
            if max_steps is not None and int(max_steps) >= 2:
                return int(max_steps)
        return 1000

    def _resolve_placeholders(self, part: str) -> str:
        model = self.model
        total = int(self.locals.get("total_timesteps", 0)) if self.locals else 0
        # SB3 2.9 draws the noise at every step, warm-up (learning_starts) included (OffPolicyAlgorithm._sample_action).
        noise_steps = max(1, math.ceil((total - int(model.num_timesteps)) / max(1, model.n_envs)))
        return part.replace("{total_timesteps}", str(max(1, total))).replace("{noise_steps}", str(noise_steps))

    # -------------------------------------------------------------- callback events
    def _init_callback(self) -> None:
        if not isinstance(self.model, OffPolicyAlgorithm):
            raise ValueError(f"ExplorationCallback needs an off-policy model (DDPG/TD3), got {type(self.model).__name__}")
        if not isinstance(self.model.action_space, spaces.Box):
            raise ValueError(f"ExplorationCallback needs a Box action space, got {self.model.action_space}")
        if self.param_noise_callback is not None:
            self.param_noise_callback.init_callback(self.model)

    def _on_training_start(self) -> None:
        model = self.model
        assert isinstance(model, OffPolicyAlgorithm)
        current = model.action_noise
        if current is not None and self.action_noise is not None and current is self.action_noise:
            pass  # a later learn(): keep our noise and its schedule position
        elif current is not None and getattr(model, EXPLORATION_SPEC_ATTR, None) == self.spec and not self.override:
            # Set by an ExplorationCallback with the same spec, then saved and loaded with the model (e.g. the
            # zoo's -i): adopt it, keeping its state (decay position, OU / pink state).
            self.action_noise = current
            if self.verbose >= 1:
                print(f"ExplorationCallback: keeping the model's action_noise={current!r}, spec={self.spec!r}")
        else:
            if current is not None and not self.override:
                raise ValueError(
                    f"ExplorationCallback(spec={self.spec!r}): the model already has action_noise={current!r} "
                    "(e.g. from the zoo's noise_type/noise_std); remove it (set noise_type and noise_std to null) "
                    "or pass override=True"
                )
            self.action_noise = None
            self.action_noise_spec = None
            if self.parsed.action_noise is not None:
                self.action_noise_spec = self._resolve_placeholders(self.parsed.action_noise)
                assert model.action_space.shape is not None
                action_dim = int(np.prod(model.action_space.shape))
                self.action_noise = make_action_noise(
                    self.action_noise_spec,
                    action_dim,
                    n_envs=model.n_envs,
                    seed=derive_seed(self._run_seed(), 0),
                    seq_len=self._episode_length(),
                )
            model.action_noise = self.action_noise
            # A plain attribute, saved with the model: a loaded model's noise is then known to be ours.
            setattr(model, EXPLORATION_SPEC_ATTR, self.spec)
            if self.verbose >= 1:
                print(f"ExplorationCallback: action_noise={self.action_noise!r}, spec={self.spec!r}")
        if self.param_noise_callback is not None:
            self.param_noise_callback.on_training_start(self.locals, self.globals)

    def _on_rollout_start(self) -> None:
        # The action-noise scale of the coming rollout (a decaying Gaussian's current sigma); no random draw.
        sigma = noise_sigma(self.model.action_noise) if isinstance(self.model, OffPolicyAlgorithm) else None
        if sigma is not None:
            self.logger.record("noise/sigma", sigma)
        if self.param_noise_callback is not None:
            self.param_noise_callback.on_rollout_start()

    def _on_step(self) -> bool:
        if self.param_noise_callback is not None:
            return self.param_noise_callback.on_step()
        return True

    def _on_rollout_end(self) -> None:
        if self.param_noise_callback is not None:
            self.param_noise_callback.on_rollout_end()

    def _on_training_end(self) -> None:
        if self.param_noise_callback is not None:
            self.param_noise_callback.on_training_end()

    def update_child_locals(self, locals_: dict[str, Any]) -> None:
        if self.param_noise_callback is not None:
            self.param_noise_callback.update_locals(locals_)


class ActionNoiseCallback(ExplorationCallback):
    """
    :class:`ExplorationCallback` restricted to action noise (a :func:`sb3_ddpg_ext.noise.make_action_noise` spec)::

        callback:
          - sb3_ddpg_ext.zoo.ActionNoiseCallback: {spec: pink_0.3, seq_len: 1000}

    :param spec: The action-noise spec.
    :param seq_len: See :class:`ExplorationCallback`.
    :param seed: See :class:`ExplorationCallback`.
    :param override: See :class:`ExplorationCallback`.
    :param verbose: Verbosity.
    """

    def __init__(
        self, spec: str, seq_len: Optional[int] = None, seed: Optional[int] = None, override: bool = False, verbose: int = 0
    ) -> None:
        if parse_exploration_spec(spec).param_noise_stddev is not None:
            raise ValueError(
                f"ActionNoiseCallback takes an action-noise spec only, got spec={spec!r}; use ExplorationCallback"
            )
        super().__init__(spec, seq_len=seq_len, seed=seed, override=override, verbose=verbose)


# ------------------------------------------------------------------------------------------------ divergence guard
#: Default file name of the marker written next to the run's logs.
DIVERGENCE_MARKER = "diverged.json"


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_divergence_marker(path: Union[str, os.PathLike]) -> Optional[dict[str, Any]]:
    """
    Read a marker written by :class:`DivergenceGuardCallback`.

    :param path: the marker file
    :return: its content, or ``None`` when the file does not exist
    """
    path = Path(path)
    if not path.is_file():
        return None
    with open(path) as f:
        return json.load(f)


class DivergenceGuardCallback(BaseCallback):
    """
    Stop training as soon as the run has diverged and record it in a marker file.

    Every ``check_freq`` calls of ``_on_step`` (i.e. environment steps of the vectorised env) it
    checks, in this order:

    1. every value the model recorded in its logger whose key contains ``"loss"``
       (``train/actor_loss``, ``train/critic_loss``, ...);
    2. every parameter of the policy (actor, critic and their targets);
    3. a Q-value probe: the critic evaluated at (s, a) for the last ``probe_size`` transitions of the
       replay buffer, and at (s, mu(s)) for the current observation.

    A value that is NaN or +-inf (or, if ``max_abs_q`` is set, a Q-value larger in absolute value)
    counts as divergence: the callback writes ``marker_path`` (JSON: step, reason, time), records
    ``divergence/diverged`` in the logger and returns ``False``, which stops ``learn()``.

    :param check_freq: check every ``check_freq`` calls (>= 1)
    :param marker_path: JSON file written on divergence; ``None``: ``<logger dir>/diverged.json`` if the
        model has a logger folder, otherwise no file (a warning is emitted)
    :param probe_size: number of most recent replay-buffer transitions used by the Q-value probe (>= 0)
    :param max_abs_q: optional bound on ``|Q|``; a larger finite Q-value also counts as divergence
    :param verbose: 0 silent, 1 print a message when divergence is detected
    """

    def __init__(
        self,
        check_freq: int = 100,
        marker_path: Optional[Union[str, os.PathLike]] = None,
        probe_size: int = 64,
        max_abs_q: Optional[float] = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if not isinstance(check_freq, int) or check_freq < 1:
            raise ValueError(f"check_freq must be an integer >= 1, got {check_freq!r}")
        if not isinstance(probe_size, int) or probe_size < 0:
            raise ValueError(f"probe_size must be an integer >= 0, got {probe_size!r}")
        if max_abs_q is not None and not (max_abs_q > 0 and math.isfinite(max_abs_q)):
            raise ValueError(f"max_abs_q must be a finite number > 0 or None, got {max_abs_q!r}")
        self.check_freq = check_freq
        self.marker_path = None if marker_path is None else Path(marker_path)
        self.probe_size = probe_size
        self.max_abs_q = max_abs_q
        self.diverged = False
        self.reason: Optional[str] = None

    # ------------------------------------------------------------------ checks
    def _bad(self, value: float) -> bool:
        return not math.isfinite(value)

    def _check_losses(self) -> Optional[str]:
        for key, value in self.logger.name_to_value.items():
            if "loss" not in key:
                continue
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
            if self._bad(value):
                return f"logged {key} = {value}"
        return None

    def _check_parameters(self) -> Optional[str]:
        for name, param in self.model.policy.named_parameters():
            if not bool(th.isfinite(param).all()):
                return f"non-finite parameter policy.{name}"
        return None

    def _probe_observations(self) -> list[Any]:
        """Observations for the Q probe: the current one and the latest transitions of the replay buffer."""
        batches: list[Any] = []
        last_obs = getattr(self.model, "_last_obs", None)
        if last_obs is not None:
            batches.append((last_obs, None))
        buffer = getattr(self.model, "replay_buffer", None)
        observations = getattr(buffer, "observations", None)
        if self.probe_size > 0 and buffer is not None and isinstance(observations, np.ndarray) and buffer.size() > 0:
            pos = buffer.pos if buffer.pos > 0 else buffer.buffer_size
            start = max(0, pos - self.probe_size)
            obs = observations[start:pos].reshape((-1, *observations.shape[2:]))
            actions = buffer.actions[start:pos].reshape((-1, *buffer.actions.shape[2:]))
            vec_normalize_env = getattr(self.model, "_vec_normalize_env", None)
            if vec_normalize_env is not None:
                obs = vec_normalize_env.normalize_obs(obs)
            batches.append((obs, actions))
        return batches

    def _check_q_values(self) -> Optional[str]:
        critic = getattr(self.model, "critic", None)
        policy = self.model.policy
        if critic is None:
            return None
        with th.no_grad():
            for obs, actions in self._probe_observations():
                obs_t, _ = policy.obs_to_tensor(obs)
                if actions is None:
                    act_t = policy._predict(obs_t, deterministic=True)
                    if not bool(th.isfinite(act_t).all()):
                        return "non-finite action mu(s) at the current observation"
                else:
                    act_t = th.as_tensor(actions, device=policy.device, dtype=th.float32)
                q_values = critic(obs_t, act_t)
                if isinstance(q_values, th.Tensor):
                    q_values = (q_values,)
                for q in q_values:
                    if not bool(th.isfinite(q).all()):
                        return "non-finite Q-value in the probe"
                    if self.max_abs_q is not None and float(q.abs().max()) > self.max_abs_q:
                        return f"|Q| = {float(q.abs().max()):.3g} > max_abs_q = {self.max_abs_q}"
        return None

    def check(self) -> Optional[str]:
        """
        Run all checks now.

        :return: a description of the first problem found, or ``None`` if everything is finite
        """
        for check in (self._check_losses, self._check_parameters, self._check_q_values):
            reason = check()
            if reason is not None:
                return reason
        return None

    # --------------------------------------------------------------- callback
    def _resolve_marker(self) -> Optional[Path]:
        if self.marker_path is not None:
            return self.marker_path
        log_dir = self.logger.get_dir() if self.logger is not None else None
        if log_dir:
            return Path(log_dir) / DIVERGENCE_MARKER
        return None

    def _on_step(self) -> bool:
        if self.n_calls % self.check_freq != 0:
            return True
        reason = self.check()
        if reason is None:
            return True
        self.diverged = True
        self.reason = reason
        self.logger.record("divergence/diverged", 1)
        marker = self._resolve_marker()
        payload = {"diverged": True, "reason": reason, "num_timesteps": int(self.num_timesteps), "time": time.time()}
        if marker is not None:
            _write_json_atomic(marker, payload)
        else:
            warnings.warn("DivergenceGuardCallback: no marker_path and no logger folder, divergence not written to disk")
        if self.verbose >= 1:
            print(f"DivergenceGuardCallback: run diverged at step {self.num_timesteps}: {reason}; stopping training")
        return False
