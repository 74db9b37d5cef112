"""
Adaptive parameter-space noise (Plappert et al., ICLR 2018).

Paper: https://arxiv.org/abs/1706.01905
Reference implementation: openai/baselines ``baselines/ddpg/noise.py`` (``AdaptiveParamNoiseSpec``) and
``baselines/ddpg/ddpg_learner.py`` (``get_perturbed_actor_updates``, ``adapt_param_noise``).

This module holds the framework-agnostic pieces (pure functions on ``torch.nn.Module``):

- :class:`AdaptiveParamNoiseSpec`: the scalar sigma and its adaptation rule;
- :func:`perturb` / :func:`perturb_into`: perturbed copies of a network, never touching LayerNorm parameters;
- :func:`perturbable_parameters` / :func:`is_layer_norm_param`: which parameters get noise (reused by the DDPG
  parameter-space target-noise mode);
- :func:`action_distance`: the RMS action distance used for adaptation.

The SB3 integration (acting with the perturbed actor during rollouts) is
:class:`sb3_ddpg_ext.callbacks.ParameterNoiseCallback`.
"""

from __future__ import annotations

import copy
import math
import numbers
from typing import Literal, Union

import numpy as np
import torch as th
from torch import nn

from sb3_ddpg_ext.seeding import make_generator  # noqa: F401 (re-export: the generator of perturb())

SamplingMode = Literal["per_element", "per_tensor", "single"]
SAMPLING_MODES: tuple[str, ...] = ("per_element", "per_tensor", "single")

TensorObs = Union[th.Tensor, dict[str, th.Tensor]]


class AdaptiveParamNoiseSpec:
    """
    Scale of the parameter-space noise and its adaptation rule, as in openai/baselines ``AdaptiveParamNoiseSpec``.

    After measuring the action-space distance ``d`` between the actor and a perturbed copy,
    ``sigma <- sigma / alpha`` if ``d > delta`` else ``sigma <- sigma * alpha``.

    Paper: https://arxiv.org/abs/1706.01905

    The three numbers may be Python or NumPy real scalars (e.g. ``np.float32(0.2)``); they are stored as ``float``.

    :param initial_stddev: Initial parameter noise standard deviation sigma (baselines ``adaptive-param_0.2`` uses 0.2).
    :param desired_action_stddev: Target action-space distance delta (scaled [-1, 1] action space).
    :param adoption_coefficient: Multiplicative adaptation factor alpha (> 1).
    """

    def __init__(
        self,
        initial_stddev: float = 0.2,
        desired_action_stddev: float = 0.2,
        adoption_coefficient: float = 1.01,
    ) -> None:
        _check_positive("initial_stddev", initial_stddev)
        _check_positive("desired_action_stddev", desired_action_stddev)
        _check_real("adoption_coefficient", adoption_coefficient)
        if not (math.isfinite(adoption_coefficient) and adoption_coefficient > 1.0):
            raise ValueError(f"adoption_coefficient must be a finite number > 1, got {adoption_coefficient!r}")
        self.initial_stddev = float(initial_stddev)
        self.desired_action_stddev = float(desired_action_stddev)
        self.adoption_coefficient = float(adoption_coefficient)
        self.current_stddev = float(initial_stddev)

    def adapt(self, distance: float) -> float:
        """
        Adapt ``current_stddev`` from a measured action distance.

        :param distance: RMS action distance between the actor and a perturbed copy (see :func:`action_distance`).
        :return: the new ``current_stddev``.
        """
        distance = float(distance)
        if not math.isfinite(distance) or distance < 0:
            raise ValueError(f"distance must be a finite non-negative number, got {distance!r}")
        if distance > self.desired_action_stddev:
            # Decrease stddev.
            self.current_stddev /= self.adoption_coefficient
        else:
            # Increase stddev.
            self.current_stddev *= self.adoption_coefficient
        return self.current_stddev

    def get_stats(self) -> dict[str, float]:
        """:return: ``{"param_noise_stddev": current_stddev}`` (the baselines statistic name)."""
        return {"param_noise_stddev": self.current_stddev}

    def __repr__(self) -> str:
        return (
            f"AdaptiveParamNoiseSpec(initial_stddev={self.initial_stddev}, "
            f"desired_action_stddev={self.desired_action_stddev}, "
            f"adoption_coefficient={self.adoption_coefficient}, current_stddev={self.current_stddev})"
        )


def _check_real(name: str, value: object) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a real number (Python or NumPy scalar, not a bool)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {name}={value!r} of type {type(value).__name__}")


def _check_positive(name: str, value: float) -> None:
    _check_real(name, value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {name}={value!r}")


def _check_sampling(sampling: str) -> None:
    if sampling not in SAMPLING_MODES:
        raise ValueError(f"sampling must be one of {SAMPLING_MODES}, got {sampling!r}")


def is_layer_norm_param(module: nn.Module, param_name: str) -> bool:
    """
    Whether the parameter ``param_name`` (a dotted name from ``module.named_parameters()``) belongs to a
    ``nn.LayerNorm`` (its gain ``weight`` or ``bias``). Such parameters are never perturbed.

    :param module: Root module.
    :param param_name: Dotted parameter name, e.g. ``"mu.1.weight"``.
    :return: True if the module owning the parameter is an ``nn.LayerNorm``.
    """
    owner_name, _, _ = param_name.rpartition(".")
    try:
        owner = module.get_submodule(owner_name) if owner_name else module
    except AttributeError as err:
        raise ValueError(f"param_name {param_name!r} does not name a parameter of {type(module).__name__}") from err
    return isinstance(owner, nn.LayerNorm)


def perturbable_parameters(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """
    The parameters that parameter-space noise perturbs: every trainable parameter (``requires_grad``), weights and
    biases of all layers including the output layer, except LayerNorm gains and biases (baselines'
    ``get_perturbable_vars``).

    :param module: The network (e.g. an SB3 ``Actor``).
    :return: List of ``(name, parameter)`` pairs in ``named_parameters()`` order.
    """
    return [
        (name, param)
        for name, param in module.named_parameters()
        if param.requires_grad and not is_layer_norm_param(module, name)
    ]


def sample_parameter_noise(
    shapes: list[th.Size],
    stddev: float,
    sampling: SamplingMode = "per_element",
    generator: th.Generator | None = None,
    dtype: th.dtype = th.float32,
) -> list[th.Tensor]:
    """
    Draw additive noise tensors for a list of parameter shapes.

    :param shapes: Shapes of the parameters to perturb.
    :param stddev: Standard deviation sigma.
    :param sampling: ``"per_element"`` (independent N(0, sigma^2) per element, the paper's version),
        ``"per_tensor"`` (one scalar per tensor, broadcast) or ``"single"`` (one scalar for the whole network).
    :param generator: Torch generator (on the CPU) for reproducible draws; the global RNG if None.
    :param dtype: dtype of the noise tensors.
    :return: One noise tensor per shape, on the CPU.
    """
    _check_sampling(sampling)
    if not (math.isfinite(stddev) and stddev >= 0):
        raise ValueError(f"stddev must be a finite number >= 0, got {stddev!r}")
    if sampling == "per_element":
        # One draw for all elements (fewer kernel launches), split into per-parameter views.
        numels = [int(math.prod(shape)) for shape in shapes]
        flat = th.randn(sum(numels), generator=generator, dtype=dtype) * stddev
        return [chunk.view(shape) for chunk, shape in zip(th.split(flat, numels), shapes)]
    if sampling == "per_tensor":
        scalars = th.randn(len(shapes), generator=generator, dtype=dtype) * stddev
        return [scalars[i].expand(shape) for i, shape in enumerate(shapes)]
    scalar = th.randn(1, generator=generator, dtype=dtype)[0] * stddev
    return [scalar.expand(shape) for shape in shapes]


def perturb_into(
    source: nn.Module,
    target: nn.Module,
    stddev: float,
    sampling: SamplingMode = "per_element",
    generator: th.Generator | None = None,
) -> nn.Module:
    """
    In place: set ``target``'s parameters and buffers to ``source``'s, then add noise to the perturbable ones.
    ``target`` must have the same architecture (e.g. an earlier ``copy.deepcopy(source)``). ``source`` is not modified.
    This is the allocation-free path used to re-draw a perturbation at every episode start.

    :param source: Network to copy (the current actor).
    :param target: Network receiving ``source + noise``.
    :param stddev: Noise standard deviation sigma.
    :param sampling: See :func:`sample_parameter_noise`.
    :param generator: Torch generator (CPU) for reproducible draws.
    :return: ``target``.
    """
    src_params = dict(source.named_parameters())
    tgt_params = dict(target.named_parameters())
    if src_params.keys() != tgt_params.keys():
        raise ValueError(
            f"target ({type(target).__name__}) does not have the same parameters as source ({type(source).__name__})"
        )
    perturbable = perturbable_parameters(source)
    noises = sample_parameter_noise([p.shape for _, p in perturbable], stddev, sampling, generator)
    with th.no_grad():
        for name, param in src_params.items():
            tgt_params[name].copy_(param)
        for (name, _), noise in zip(perturbable, noises):
            tgt = tgt_params[name]
            tgt.add_(noise.to(device=tgt.device, dtype=tgt.dtype))
        for (_, src_buf), (_, tgt_buf) in zip(source.named_buffers(), target.named_buffers()):
            tgt_buf.copy_(src_buf)
    return target


def clone_module(module: nn.Module) -> nn.Module:
    """
    Deep copy of a network without its optimizer (SB3 policies and actors carry one as ``.optimizer``; the copy gets
    ``optimizer = None``) and with gradients disabled. Used to create perturbed copies cheaply.

    :param module: Network to copy.
    :return: The copy.
    """
    memo: dict[int, object] = {}
    for value in vars(module).values():
        if isinstance(value, th.optim.Optimizer):
            memo[id(value)] = None
    clone = copy.deepcopy(module, memo)
    for param in clone.parameters():
        param.requires_grad_(False)
    return clone


def perturb(
    module: nn.Module,
    stddev: float,
    sampling: SamplingMode = "per_element",
    generator: th.Generator | None = None,
) -> nn.Module:
    """
    Return a perturbed deep copy of ``module``: ``theta~ = theta + noise`` for every perturbable parameter
    (see :func:`perturbable_parameters`: LayerNorm gains/biases and frozen parameters are left as they are).
    The original is untouched. The copy has gradients disabled and no optimizer (see :func:`clone_module`).

    :param module: Network to perturb (e.g. ``model.actor``).
    :param stddev: Noise standard deviation sigma.
    :param sampling: ``"per_element"`` (proper: independent N(0, sigma^2) per weight), ``"per_tensor"``
        (naive: one scalar per parameter tensor) or ``"single"`` (naive: one scalar for the whole network).
    :param generator: Torch generator (on the CPU) for reproducible draws; the global torch RNG if None.
    :return: The perturbed copy.
    """
    _check_sampling(sampling)
    return perturb_into(module, clone_module(module), stddev, sampling, generator)


def action_distance(actor: nn.Module, perturbed_actor: nn.Module, observations: TensorObs) -> float:
    """
    RMS distance between the actions of two actors on a batch of observations:
    ``sqrt(mean over batch and action dims of (mu(s) - mu~(s))^2)``.

    Both actors must output actions in the scaled [-1, 1] space (SB3's TD3/DDPG ``Actor.forward`` does, through its
    final tanh), so the distance is in that space as in baselines.

    :param actor: The unperturbed actor mu.
    :param perturbed_actor: The perturbed actor mu~.
    :param observations: Batch of (preprocessable) observations as a tensor, or dict of tensors.
    :return: The distance as a Python float.
    """
    with th.no_grad():
        actions = actor(observations)
        perturbed_actions = perturbed_actor(observations)
    if actions.shape != perturbed_actions.shape:
        raise ValueError(f"actor and perturbed_actor output shapes differ: {actions.shape} vs {perturbed_actions.shape}")
    return float(th.sqrt(th.mean((actions - perturbed_actions) ** 2)).item())
