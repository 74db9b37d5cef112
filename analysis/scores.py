"""Per-task random and reference scores for normalisation, with their sources.

``normalised = (return - random) / (reference - random)``: 0 is a uniformly random policy, 1 the reference.

Sources (column ``*_source`` of :data:`SCORE_TABLE`):

* ``TD3 paper``: Fujimoto et al. 2018, "Addressing Function Approximation Error in Actor-Critic Methods",
  https://arxiv.org/abs/1802.09477, Table 1, TD3 column (max average return over 10 trials, gym v1 MuJoCo).
  HalfCheetah, Hopper, Walker2d and Ant are reproduced from the paper's own curves by the tests
  (``tests/test_analysis_datasets.py``).
* ``zoo benchmark``: rl-baselines3-zoo ``benchmark.md`` (https://github.com/DLR-RM/rl-baselines3-zoo,
  ``td3`` rows unless stated), mean return of the published agent over ~150k evaluation steps.
* ``env bound``: the largest return the environment can give (reward bound x time limit), read from the
  environment's source.
* ``measured``: we could not find a published random score for these task versions, so it was measured:
  mean return of ``action_space.sample()`` over 10 episodes, ``reset(seed=0..9)``, with
  ``python -m analysis random-scores --episodes 10 --seed 0 <env ids>`` (gymnasium 1.x MuJoCo v5, Box2D,
  classic control, pybullet_envs_gymnasium), on 2026-11-23. ``sem`` is its standard error.

Entries are keyed by the exact environment id; :func:`lookup_scores` falls back to another version of the
same environment (e.g. the TD3 paper's ``HalfCheetah-v1`` uses the ``HalfCheetah-v5`` random score) and says so
in its ``note``. Reward definitions changed little between MuJoCo v1 and v5 for these tasks, but not nothing
(e.g. Ant's contact cost), so cross-version normalised scores are approximate.

Reward thresholds (:data:`SOLVED_THRESHOLDS`, a run *solves* its task when its final return reaches it): the
environment spec's ``reward_threshold``, read with ``gymnasium.spec(env_id).reward_threshold`` (gymnasium 1.x and
pybullet_envs_gymnasium registrations) on 2026-12-07. Tasks whose spec has none (``Pendulum-v1``, ``Walker2d-v5``,
``Humanoid-v5``) are not in the table. Keyed by the exact environment id, with no fallback to another version (a
threshold belongs to one version's reward).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import numpy as np
import numpy.typing as npt
import pandas as pd


@dataclass(frozen=True)
class TaskScores:
    """Random and reference return of one task.

    :param random: return of a uniformly random policy.
    :param reference: return of the reference agent (normalised score 1).
    :param random_source: where ``random`` comes from.
    :param reference_source: where ``reference`` comes from.
    :param random_sem: standard error of a measured random score (NaN if sourced).
    :param note: filled by :func:`lookup_scores` when a different version of the task was used.
    """

    random: float
    reference: float
    random_source: str
    reference_source: str
    random_sem: float = float("nan")
    note: str = ""


_TD3 = "TD3 paper Table 1 (TD3, gym v1)"
_ZOO = "zoo benchmark.md td3"
_MEAS = "measured (10 random episodes, seed 0)"


def _m(random: float, sem: float, reference: float, ref_source: str) -> TaskScores:
    return TaskScores(random, reference, _MEAS, ref_source, sem)


# Random scores marked "measured" come from `python -m analysis random-scores --episodes 10 --seed 0 ...`
SCORE_TABLE: dict[str, TaskScores] = {
    # MuJoCo (gymnasium v5 measured; references from the TD3 paper, else the zoo's TD3 agents on v3)
    "HalfCheetah-v5": _m(-233.684, 10.305, 9636.95, _TD3),
    "Hopper-v5": _m(31.089, 9.800, 3564.07, _TD3),
    "Walker2d-v5": _m(5.732, 3.278, 4682.82, _TD3),
    "Ant-v5": _m(-17.192, 12.013, 4372.44, _TD3),
    "InvertedPendulum-v5": _m(5.100, 0.924, 1000.00, _TD3),
    "InvertedDoublePendulum-v5": _m(45.387, 2.538, 9337.47, _TD3),
    "Reacher-v5": _m(-41.827, 1.488, -3.60, _TD3),
    "Swimmer-v5": _m(-2.312, 2.538, 359.127, _ZOO + " (Swimmer-v3)"),
    "Humanoid-v5": _m(90.079, 3.274, 5566.687, _ZOO + " (Humanoid-v3)"),
    # Classic control / Box2D
    "Pendulum-v1": _m(-1225.283, 89.391, -151.855, _ZOO),
    "MountainCarContinuous-v0": _m(-33.390, 0.339, 93.483, _ZOO),
    "BipedalWalker-v3": _m(-100.659, 4.133, 305.990, _ZOO),
    # the zoo's TD3 agent fails on Hardcore (-98.1, i.e. random level): its TQC agent is the reference
    "BipedalWalkerHardcore-v3": _m(-108.716, 2.077, 235.226, "zoo benchmark.md tqc"),
    # PyBullet (pybullet_envs_gymnasium)
    "HalfCheetahBulletEnv-v0": _m(-1288.053, 43.175, 2821.641, _ZOO),
    "AntBulletEnv-v0": _m(354.639, 63.219, 3300.026, _ZOO),
    "HopperBulletEnv-v0": _m(19.860, 0.426, 2681.609, _ZOO),
    "Walker2DBulletEnv-v0": _m(18.635, 1.351, 2213.672, _ZOO),
    "ReacherBulletEnv-v0": _m(-11.766, 4.395, 17.114, _ZOO),
    # reward +1 per step, time limit 1000 steps (pybullet_envs_gymnasium gym_pendulum_envs.py)
    "InvertedPendulumBulletEnv-v0": _m(24.100, 2.908, 1000.0, "env bound (+1/step x 1000 steps)"),
    # alive bonus 10 per step minus penalties, 1000 steps: an upper bound, not attainable exactly
    "InvertedDoublePendulumBulletEnv-v0": _m(292.525, 17.812, 10000.0, "env bound (alive bonus 10 x 1000 steps)"),
    "LunarLanderContinuous-v3": _m(-237.597, 43.213, 207.451, _ZOO + " (LunarLanderContinuous-v2)"),
}

#: ``gymnasium.spec(env_id).reward_threshold`` of the project's tasks that have one (module docstring).
SOLVED_THRESHOLDS: dict[str, float] = {
    # Classic control / Box2D
    "MountainCarContinuous-v0": 90.0,
    "LunarLanderContinuous-v3": 200.0,
    "BipedalWalker-v3": 300.0,
    # MuJoCo v5
    "HalfCheetah-v5": 4800.0,
    "Hopper-v5": 3800.0,
    "Ant-v5": 6000.0,
    "Swimmer-v5": 360.0,
    "InvertedPendulum-v5": 950.0,
    "InvertedDoublePendulum-v5": 9100.0,
    "Reacher-v5": -3.75,
    # PyBullet (pybullet_envs_gymnasium)
    "HalfCheetahBulletEnv-v0": 3000.0,
    "HopperBulletEnv-v0": 2500.0,
    "Walker2DBulletEnv-v0": 2500.0,
    "AntBulletEnv-v0": 2500.0,
    "InvertedPendulumBulletEnv-v0": 950.0,
    "ReacherBulletEnv-v0": 18.0,
}

_ENV_VERSION_RE = re.compile(r"^(?P<base>.+)-v(?P<version>\d+)$")


def _split_version(env_id: str) -> tuple[str, int]:
    m = _ENV_VERSION_RE.match(env_id)
    return (m.group("base"), int(m.group("version"))) if m else (env_id, -1)


def lookup_scores(task: str, table: Optional[dict[str, TaskScores]] = None) -> Optional[TaskScores]:
    """Scores for ``task``: the exact id, else the same environment at the nearest other version (noted).

    :param task: environment id (e.g. ``"HalfCheetah-v1"``).
    :param table: score table (default :data:`SCORE_TABLE`).
    :return: the :class:`TaskScores` or None if the environment is not in the table.
    """
    table = SCORE_TABLE if table is None else table
    if task in table:
        return table[task]
    base, version = _split_version(task)
    candidates = [(abs(v - version), k) for k in table for b, v in [_split_version(k)] if b == base]
    if not candidates:
        return None
    _, key = min(candidates)
    s = table[key]
    return TaskScores(
        s.random, s.reference, s.random_source, s.reference_source, s.random_sem, note=f"{task}: scores of {key} used"
    )


def normalize(returns: npt.ArrayLike, random: float, reference: float) -> np.ndarray:
    """``(returns - random) / (reference - random)``: the one place scores are normalised.

    :param returns: raw returns (any shape).
    :param random: return of a uniformly random policy (normalised 0).
    :param reference: return of the reference agent (normalised 1).
    :return: float array of the shape of ``returns``.
    :raises ValueError: if ``reference == random``.
    """
    if reference == random:
        raise ValueError(f"normalize: reference ({reference}) equals random ({random})")
    return (np.asarray(returns, dtype=float) - random) / (reference - random)


def score_table_frame(tasks: Optional[list[str]] = None, table: Optional[dict[str, TaskScores]] = None) -> pd.DataFrame:
    """The table (or the rows used for ``tasks``) as a DataFrame, for the report."""
    table = SCORE_TABLE if table is None else table
    rows = []
    for task in tasks if tasks is not None else sorted(table):
        s = lookup_scores(task, table)
        if s is None:
            rows.append({"task": task, "random": np.nan, "reference": np.nan, "note": "not in the score table"})
            continue
        rows.append(
            {
                "task": task,
                "random": s.random,
                "random_sem": s.random_sem,
                "random_source": s.random_source,
                "reference": s.reference,
                "reference_source": s.reference_source,
                "note": s.note,
            }
        )
    return pd.DataFrame(rows)
