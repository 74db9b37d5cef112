"""sb3_ddpg_ext: DDPG research extensions for Stable-Baselines3.

Public API, re-exported here in the style of ``stable_baselines3/__init__.py``:

- exploration noise: :class:`GaussianActionNoise`, :class:`OrnsteinUhlenbeckActionNoise`,
  :class:`ColoredActionNoise`, :class:`PinkActionNoise`, :func:`make_action_noise`
- adaptive parameter-space noise: :class:`ParameterNoiseCallback`, :class:`AdaptiveParamNoiseSpec`
- policies: :class:`LnMlpPolicy`
- algorithm: :class:`DDPG` (target-policy noise, fast update path)
- runs: :class:`DivergenceGuardCallback`
- rl-zoo3: :class:`ExplorationCallback`, :class:`ActionNoiseCallback`, :func:`resolve_variant`, :func:`register_zoo`
  (importing them does not import rl_zoo3)
"""

from sb3_ddpg_ext.callbacks import ParameterNoiseCallback
from sb3_ddpg_ext.ddpg import DDPG
from sb3_ddpg_ext.divergence import DivergenceGuardCallback
from sb3_ddpg_ext.noise import (
    ColoredActionNoise,
    GaussianActionNoise,
    OrnsteinUhlenbeckActionNoise,
    PinkActionNoise,
    make_action_noise,
)
from sb3_ddpg_ext.param_noise import AdaptiveParamNoiseSpec
from sb3_ddpg_ext.policies import LnMlpPolicy
from sb3_ddpg_ext.version import __version__
from sb3_ddpg_ext.zoo import ActionNoiseCallback, ExplorationCallback, register_zoo, resolve_variant

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
