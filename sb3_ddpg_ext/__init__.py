"""sb3_ddpg_ext: DDPG research extensions for Stable-Baselines3.

Public API (each re-exported here, in the style of ``stable_baselines3/__init__.py``).
"""

from sb3_ddpg_ext.version import __version__

__all__ = [
    "__version__",
]
