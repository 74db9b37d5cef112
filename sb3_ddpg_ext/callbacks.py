"""
SB3 callbacks of sb3_ddpg_ext.

:class:`ParameterNoiseCallback` adds adaptive parameter-space noise (Plappert et al., ICLR 2018) to SB3's
``DDPG`` / ``TD3`` (and subclasses, e.g. :class:`sb3_ddpg_ext.ddpg.DDPG`) without changing the algorithm class.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
import torch as th
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.td3.td3 import TD3
from torch import nn

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
    numpy_generator_from_state,
    numpy_generator_state,
    param_noise_generators,
    torch_generator_from_state,
    torch_generator_state,
)

#: Name of the model attribute holding the parameter-noise state; a plain JSON-serialisable dict,
#: so ``model.save()`` stores it and ``load()`` restores it.
PARAM_NOISE_STATE_ATTR = "param_noise_state"


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
        obs_tensor, _ = model.policy.obs_to_tensor(model._last_obs)
        with th.no_grad():
            if len(self.perturbed_actors) == 1:
                scaled = self.perturbed_actors[0](obs_tensor)
            else:
                scaled = th.cat(
                    [actor(_index_obs(obs_tensor, i)) for i, actor in enumerate(self.perturbed_actors)],
                    dim=0,
                )
        scaled_action = scaled.cpu().numpy().reshape((-1, *model.action_space.shape))  # type: ignore[misc]
        if action_noise is not None:
            scaled_action = np.clip(scaled_action + action_noise(), -1, 1)
        buffer_action = scaled_action
        action = model.policy.unscale_action(scaled_action)
        return action, buffer_action

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


def _index_obs(obs: TensorObs, idx: int) -> TensorObs:
    if isinstance(obs, dict):
        return {key: value[idx : idx + 1] for key, value in obs.items()}
    return obs[idx : idx + 1]


__all__ = ["PARAM_NOISE_STATE_ATTR", "ParameterNoiseCallback"]
