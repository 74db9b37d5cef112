"""Divergence guard: stop a training run whose losses, Q-values or weights become NaN/inf.

Used by every run of the benchmark runner (``benchmarks``): the runner appends
:class:`DivergenceGuardCallback` to the zoo ``callback`` hyperparameter and, when the run ends,
reads the marker file the callback wrote to mark the run ``diverged`` instead of ``done``.

The callback lives in :mod:`sb3_ddpg_ext.callbacks` with the package's other callbacks; this module keeps the
names that hyperparameter files and committed results use (``sb3_ddpg_ext.divergence.DivergenceGuardCallback``).
"""

from sb3_ddpg_ext.callbacks import DIVERGENCE_MARKER, DivergenceGuardCallback, read_divergence_marker

__all__ = ["DIVERGENCE_MARKER", "DivergenceGuardCallback", "read_divergence_marker"]
