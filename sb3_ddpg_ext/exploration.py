"""
The exploration spec: one baselines-style string for the exploration of a DDPG / TD3 run, e.g.
``"adaptive-param_0.2,normal_0.1"``: comma-separated parts, at most one action noise (a spec of
:func:`sb3_ddpg_ext.noise.make_action_noise`, whose grammar :mod:`sb3_ddpg_ext.noise` owns) and at most one
parameter noise (:data:`PARAM_NOISE_PREFIXES`).

- :func:`parse_exploration_spec`: string -> :class:`ExplorationSpec`;
- :func:`format_exploration_spec`: the parts -> string (used by the Optuna sampler).

The callback that applies a spec is :class:`sb3_ddpg_ext.callbacks.ExplorationCallback`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from sb3_ddpg_ext.noise import SPEC_PLACEHOLDERS, check_action_noise_spec

__all__ = [
    "PARAM_NOISE_PREFIXES",
    "SPEC_PLACEHOLDERS",
    "ExplorationSpec",
    "format_exploration_spec",
    "parse_exploration_spec",
]

#: Parameter-noise spec prefixes -> ``ParameterNoiseCallback`` sampling mode.
PARAM_NOISE_PREFIXES: dict[str, str] = {
    "adaptive-param": "per_element",
    "adaptive-param-naive": "per_tensor",
    "adaptive-param-single": "single",
}


@dataclass(frozen=True)
class ExplorationSpec:
    """
    A parsed exploration spec string.

    :param action_noise: The action-noise part, a :func:`sb3_ddpg_ext.noise.make_action_noise` spec
        (``None`` when the spec has no action noise).
    :param param_noise_stddev: Initial parameter-noise std and target action distance (``None``: no parameter noise).
    :param param_noise_sampling: ``ParameterNoiseCallback`` sampling mode (``None``: no parameter noise).
    """

    action_noise: Optional[str]
    param_noise_stddev: Optional[float] = None
    param_noise_sampling: Optional[str] = None


def parse_exploration_spec(spec: str) -> ExplorationSpec:
    """
    Parse a baselines-style exploration spec: comma-separated parts, at most one action noise and at most one
    parameter noise, e.g. ``"adaptive-param_0.2,normal_0.1"``, ``"pink_0.3"``, ``"adaptive-param-naive_0.2"``,
    ``"none"``.

    Action-noise parts are :func:`sb3_ddpg_ext.noise.make_action_noise` specs (grammar:
    :data:`sb3_ddpg_ext.noise.ACTION_NOISE_SPECS`: ``none``, ``normal_<s>``, ``normal_<s>_<final_s>_<decay_steps>``,
    ``ou_<s>``, ``ou-stationary_<s>``, ``pink_<s>``, ``colored_<beta>_<s>``); ``<decay_steps>`` may be the placeholder
    ``{total_timesteps}`` or ``{noise_steps}``. Parameter-noise parts are
    ``adaptive-param_<s>`` (per-element sampling, the paper's), ``adaptive-param-naive_<s>`` (one sample per
    parameter tensor) and ``adaptive-param-single_<s>`` (one sample for the whole actor); ``<s>`` is both the initial
    parameter std and the target action distance, as in baselines.

    :param spec: The spec string.
    :return: The parsed spec.
    :raises ValueError: naming the spec and the offending part.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"exploration spec must be a non-empty string, got spec={spec!r}")
    action_part: Optional[str] = None
    param: Optional[tuple[float, str]] = None
    for raw in spec.split(","):
        part = raw.strip().lower()
        if not part:
            raise ValueError(f"exploration spec {spec!r} has an empty part")
        kind, _, arg = part.rpartition("_")
        if kind in PARAM_NOISE_PREFIXES:
            if param is not None:
                raise ValueError(f"exploration spec {spec!r} has more than one parameter-noise part")
            try:
                stddev = float(arg)
            except ValueError:
                raise ValueError(f"exploration spec {spec!r}: parameter-noise std in {part!r} must be a number") from None
            if not (math.isfinite(stddev) and stddev > 0):
                raise ValueError(f"exploration spec {spec!r}: parameter-noise std in {part!r} must be > 0")
            param = (stddev, PARAM_NOISE_PREFIXES[kind])
        elif part.startswith("adaptive-param"):
            raise ValueError(
                f"exploration spec {spec!r}: unknown parameter-noise part {part!r}; "
                f"expected one of {[p + '_<stddev>' for p in PARAM_NOISE_PREFIXES]}"
            )
        else:
            if action_part is not None:
                raise ValueError(f"exploration spec {spec!r} has more than one action-noise part")
            try:
                action_part = check_action_noise_spec(part)
            except ValueError as e:
                raise ValueError(f"exploration spec {spec!r}: invalid action-noise part {part!r}: {e}") from e
    if param is None:
        return ExplorationSpec(action_noise=action_part)
    return ExplorationSpec(action_noise=action_part, param_noise_stddev=param[0], param_noise_sampling=param[1])


def format_exploration_spec(
    action_noise: Optional[str] = None,
    param_noise_sampling: Optional[str] = None,
    param_noise_stddev: Optional[float] = None,
) -> str:
    """
    The exploration spec string of its parts (parameter noise first, as baselines writes it), e.g.
    ``format_exploration_spec("normal_0.1", "per_element", 0.2) == "adaptive-param_0.2,normal_0.1"``.

    :param action_noise: An action-noise spec (e.g. from :func:`sb3_ddpg_ext.noise.format_action_noise_spec`);
        ``None`` or ``"none"``: no action noise.
    :param param_noise_sampling: ``ParameterNoiseCallback`` sampling mode (a value of :data:`PARAM_NOISE_PREFIXES`);
        ``None``: no parameter noise.
    :param param_noise_stddev: The parameter-noise std (6 significant digits), needed with ``param_noise_sampling``.
    :return: The spec (checked with :func:`parse_exploration_spec`); ``"none"`` when it has no part.
    :raises ValueError: on an unknown sampling mode or an invalid part.
    """
    parts = []
    if param_noise_sampling is not None:
        prefixes = {sampling: prefix for prefix, sampling in PARAM_NOISE_PREFIXES.items()}
        if param_noise_sampling not in prefixes:
            raise ValueError(f"param_noise_sampling must be one of {list(prefixes)} or None, got {param_noise_sampling!r}")
        if param_noise_stddev is None:
            raise ValueError(f"param_noise_sampling={param_noise_sampling!r} needs param_noise_stddev")
        parts.append(f"{prefixes[param_noise_sampling]}_{float(param_noise_stddev):.6g}")
    elif param_noise_stddev is not None:
        raise ValueError("param_noise_stddev given without param_noise_sampling")
    if action_noise is not None and action_noise.strip().lower() != "none":
        parts.append(action_noise)
    spec = ",".join(parts) if parts else "none"
    parse_exploration_spec(spec)
    return spec
