"""sb3_ddpg_ext: DDPG research extensions for Stable-Baselines3.

Public API, re-exported here in the style of ``stable_baselines3/__init__.py``:

- exploration noise: :class:`GaussianActionNoise`, :class:`OrnsteinUhlenbeckActionNoise`,
  :class:`ColoredActionNoise`, :class:`PinkActionNoise`, :func:`make_action_noise`
- adaptive parameter-space noise: :class:`ParameterNoiseCallback`, :class:`AdaptiveParamNoiseSpec`
- policies: :class:`LnMlpPolicy`
- algorithm: :class:`DDPG` (target-policy noise, fast update path)
- exploration from one spec string: :class:`ExplorationCallback`, :class:`ActionNoiseCallback`
- runs: :class:`DivergenceGuardCallback`, :func:`resolve_variant` (baseline + ablation variant)
- rl-zoo3: :func:`register_zoo` (importing it does not import rl_zoo3)

The names are imported on first use (PEP 562), so ``import sb3_ddpg_ext.run_folder`` or the analysis package
(``sb3_ddpg_ext.analysis``) does not pay for importing torch and Stable-Baselines3.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sb3_ddpg_ext.version import __version__

if TYPE_CHECKING:
    from sb3_ddpg_ext.callbacks import (
        ActionNoiseCallback,
        DivergenceGuardCallback,
        ExplorationCallback,
        ParameterNoiseCallback,
    )
    from sb3_ddpg_ext.ddpg import DDPG
    from sb3_ddpg_ext.noise import (
        ColoredActionNoise,
        GaussianActionNoise,
        OrnsteinUhlenbeckActionNoise,
        PinkActionNoise,
        make_action_noise,
    )
    from sb3_ddpg_ext.param_noise import AdaptiveParamNoiseSpec
    from sb3_ddpg_ext.policies import LnMlpPolicy
    from sb3_ddpg_ext.variants import resolve_variant
    from sb3_ddpg_ext.zoo import register_zoo

#: Public name -> module that defines it.
_EXPORTS = {
    "ActionNoiseCallback": "callbacks",
    "DivergenceGuardCallback": "callbacks",
    "ExplorationCallback": "callbacks",
    "ParameterNoiseCallback": "callbacks",
    "DDPG": "ddpg",
    "ColoredActionNoise": "noise",
    "GaussianActionNoise": "noise",
    "OrnsteinUhlenbeckActionNoise": "noise",
    "PinkActionNoise": "noise",
    "make_action_noise": "noise",
    "AdaptiveParamNoiseSpec": "param_noise",
    "LnMlpPolicy": "policies",
    "resolve_variant": "variants",
    "register_zoo": "zoo",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = [
    "DDPG",
    "ActionNoiseCallback",
    "AdaptiveParamNoiseSpec",
    "ColoredActionNoise",
    "DivergenceGuardCallback",
    "ExplorationCallback",
    "GaussianActionNoise",
    "LnMlpPolicy",
    "OrnsteinUhlenbeckActionNoise",
    "ParameterNoiseCallback",
    "PinkActionNoise",
    "__version__",
    "make_action_noise",
    "register_zoo",
    "resolve_variant",
]
