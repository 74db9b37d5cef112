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
"""

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
from sb3_ddpg_ext.version import __version__
from sb3_ddpg_ext.zoo import register_zoo

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
