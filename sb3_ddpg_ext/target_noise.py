"""
Target-policy noise ("target mu noising"): the noisy target actions ``a'`` of the DDPG/TD3 TD target
``y = r + gamma (1 - d) min_i Q'_i(s', a')``.

- action space: ``a' = clip(mu'(s') + clip(eps, -c, c), -1, 1)``, ``eps ~ N(0, sigma^2)`` per action dimension, one
  ``eps`` per transition (``"per_sample"``, TD3's target smoothing) or one shared by the minibatch (``"per_batch"``);
- parameter space: ``a' = clip(mu'_{theta' + clip(E, -c, c)}(s'), -1, 1)``, ``E ~ N(0, sigma^2)`` elementwise on the
  parameters that parameter-space exploration noise perturbs (:func:`sb3_ddpg_ext.param_noise.perturbable_parameters`:
  every weight and bias, LayerNorm gains/biases excluded); one perturbed target actor per update (``"per_batch"``) or
  an independent perturbation per transition (``"per_sample"``, ``torch.func.vmap`` over batched weights, in row
  chunks of at most :data:`PER_SAMPLE_CHUNK_FLOATS` perturbed floats).

The noise is drawn from torch's global generator (seeded by SB3's ``set_random_seed``), so action-space per-sample
noise reproduces SB3's ``TD3`` exactly. Used by :class:`sb3_ddpg_ext.ddpg.DDPG`.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import torch as th
from torch import nn
from torch.func import functional_call, vmap

__all__ = [
    "PER_SAMPLE_CHUNK_FLOATS",
    "TARGET_NOISE_SAMPLINGS",
    "TARGET_NOISE_SPACES",
    "action_noise",
    "clipped_normal_",
    "parameter_noise_actions",
]

TARGET_NOISE_SAMPLINGS = ("per_sample", "per_batch")
TARGET_NOISE_SPACES = ("action", "parameter")

#: Upper bound on the number of perturbed-parameter floats held at once by per-sample parameter-space target noise
#: (batch rows x perturbed parameters); larger batches are processed in chunks of rows.
PER_SAMPLE_CHUNK_FLOATS = 1 << 24


def clipped_normal_(tensor: th.Tensor, std: float, clip: float) -> th.Tensor:
    """
    Fill ``tensor`` in place with ``clip(N(0, std^2), -clip, clip)`` (no clip if ``clip`` is infinite).

    :param tensor: The tensor to fill.
    :param std: Standard deviation.
    :param clip: Elementwise bound.
    :return: ``tensor``.
    """
    tensor.normal_(0.0, std)
    if math.isfinite(clip):
        tensor.clamp_(-clip, clip)
    return tensor


def action_noise(n_rows: int, action_dim: int, sigma: float, clip: float, sampling: str, device: th.device) -> th.Tensor:
    """
    Action-space target noise: shape ``(n_rows, action_dim)`` (``"per_sample"``) or ``(1, action_dim)``
    (``"per_batch"``, broadcast over the minibatch).

    :param n_rows: Minibatch size.
    :param action_dim: Action dimension.
    :param sigma: Standard deviation.
    :param clip: Elementwise clip.
    :param sampling: ``"per_sample"`` or ``"per_batch"``.
    :param device: Device of the noise.
    :return: The noise, to add to ``mu'(s')``.
    """
    shape = (n_rows, action_dim) if sampling == "per_sample" else (1, action_dim)
    return clipped_normal_(th.empty(shape, device=device), sigma, clip)


def parameter_noise_actions(
    actor: nn.Module,
    next_observations: Any,
    names: list[str],
    sigma: float,
    clip: float,
    sampling: str,
    record: bool = False,
) -> tuple[th.Tensor, Optional[dict[str, th.Tensor]]]:
    """
    Target actions of the (target) actor with parameter-space noise, clipped to [-1, 1].

    :param actor: The target actor (its parameters are read, never changed).
    :param next_observations: Batch of next observations ``s'`` (tensor or dict of tensors).
    :param names: Names of the perturbed parameters (``named_parameters()`` order).
    :param sigma: Standard deviation of the weight noise.
    :param clip: Elementwise clip of the weight noise.
    :param sampling: ``"per_batch"`` (one perturbation) or ``"per_sample"`` (one per row).
    :param record: Also return the noise (``name -> noise``; per-sample noise has a leading row dimension).
    :return: ``(a', noise or None)``.
    """
    params: dict[str, th.Tensor] = dict(actor.named_parameters())
    if sampling == "per_batch":
        noise = {name: clipped_normal_(th.empty_like(params[name]), sigma, clip) for name in names}
        perturbed = {name: params[name] + noise[name] for name in names}
        return functional_call(actor, perturbed, (next_observations,)).clamp(-1, 1), noise if record else None

    batch = next(iter(next_observations.values())) if isinstance(next_observations, dict) else next_observations
    n_rows = batch.shape[0]
    n_perturbed = sum(params[name].numel() for name in names)
    chunk = max(1, min(n_rows, PER_SAMPLE_CHUNK_FLOATS // max(n_perturbed, 1)))

    def single(batched: dict[str, th.Tensor], obs: Any) -> th.Tensor:
        obs_row = {k: v.unsqueeze(0) for k, v in obs.items()} if isinstance(obs, dict) else obs.unsqueeze(0)
        return functional_call(actor, batched, (obs_row,)).squeeze(0)

    single_rows: Callable[..., th.Tensor] = vmap(single, in_dims=(0, 0), randomness="error")
    outputs, recorded = [], []
    for start in range(0, n_rows, chunk):
        stop = min(n_rows, start + chunk)
        noise = {
            name: clipped_normal_(
                th.empty((stop - start, *params[name].shape), device=params[name].device, dtype=params[name].dtype),
                sigma,
                clip,
            )
            for name in names
        }
        batched = {name: params[name].unsqueeze(0) + noise[name] for name in names}
        if isinstance(next_observations, dict):
            obs_chunk: Any = {k: v[start:stop] for k, v in next_observations.items()}
        else:
            obs_chunk = next_observations[start:stop]
        outputs.append(single_rows(batched, obs_chunk))
        if record:
            recorded.append(noise)
    all_noise = {name: th.cat([r[name] for r in recorded]) for name in names} if record else None
    return th.cat(outputs).clamp(-1, 1), all_noise
