"""
Acting during rollouts: the exploration actions of a DDPG / TD3 model from its actor (or from per-env copies of it,
e.g. the perturbed actors of parameter-space noise), in one place.

Used by :meth:`sb3_ddpg_ext.ddpg.DDPG._sample_action` (lean acting) and by
:class:`sb3_ddpg_ext.callbacks.ParameterNoiseCallback` (acting with the perturbed actors). What SB3's
``OffPolicyAlgorithm._sample_action`` does after ``learning_starts`` through ``predict`` (the actor's tanh output plus
action noise, clipped to [-1, 1]), without the per-step ``set_training_mode(False)`` and without the
unscale -> scale round trip of the action.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Optional

import numpy as np
import torch as th
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.td3.policies import TD3Policy

from sb3_ddpg_ext.param_noise import TensorObs

__all__ = ["actor_actions", "index_observation"]


def index_observation(obs: TensorObs, idx: int) -> TensorObs:
    """
    Row ``idx`` of a batch of observations, batch dimension kept.

    :param obs: The batch (tensor or dict of tensors).
    :param idx: The row (env index).
    :return: The row, shape ``(1, ...)``.
    """
    if isinstance(obs, dict):
        return {key: value[idx : idx + 1] for key, value in obs.items()}
    return obs[idx : idx + 1]


def actor_actions(
    policy: TD3Policy,
    actors: Sequence[Callable[[Any], th.Tensor]],
    observation: np.ndarray | dict[str, np.ndarray],
    action_noise: Optional[ActionNoise] = None,
    to_tensor: Optional[Callable[[Any], TensorObs]] = None,
) -> tuple[np.ndarray, np.ndarray]:
    """
    Exploration actions of a vectorised env's step: ``clip(actor(obs) + noise, -1, 1)`` in the scaled action space.

    :param policy: The model's policy (observation preprocessing, action space and unscaling).
    :param actors: One actor for every env (row ``i`` of the observation goes to ``actors[i]``), or a single actor
        for all envs: actor modules, or functions computing the same (e.g. the actor's hand-written forward).
    :param observation: The envs' current observation (``model._last_obs``).
    :param action_noise: Action noise added to the scaled actions before the clip (``None``: none).
    :param to_tensor: Converts the observation to the actors' input (default: ``policy.obs_to_tensor``).
    :return: ``(action, buffer_action)`` as ``OffPolicyAlgorithm._sample_action``: the env action (unscaled) and
        the scaled action stored in the replay buffer.
    """
    with th.inference_mode():
        obs_tensor = policy.obs_to_tensor(observation)[0] if to_tensor is None else to_tensor(observation)
        scaled: th.Tensor
        if len(actors) == 1:
            scaled = actors[0](obs_tensor)
        else:
            scaled = th.cat([actor(index_observation(obs_tensor, i)) for i, actor in enumerate(actors)], dim=0)
        scaled_action = scaled.cpu().numpy().reshape((-1, *policy.action_space.shape))  # type: ignore[misc, arg-type]
    if action_noise is not None:
        scaled_action = np.clip(scaled_action + action_noise(), -1, 1)
    return policy.unscale_action(scaled_action), scaled_action
