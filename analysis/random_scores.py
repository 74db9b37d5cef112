"""Measure the return of a uniformly random policy (the "random" end of score normalisation).

Used for the tasks whose random score we could not source from a publication; the values written into
:mod:`analysis.scores` were produced with::

    python -m analysis random-scores --episodes 10 --seed 0 <env ids...>
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np


def measure_random_score(env_id: str, n_episodes: int = 10, seed: int = 0) -> dict[str, Any]:
    """Average undiscounted return of uniformly random actions (``action_space.sample()``).

    :param env_id: Gymnasium id (Bullet ids need ``pybullet_envs_gymnasium``, imported on demand).
    :param n_episodes: episodes to average.
    :param seed: seeds the environment (``reset(seed=seed + i)``) and the action space.
    :return: ``{"env_id", "mean", "sem", "n_episodes", "mean_length", "seconds"}``.
    """
    import gymnasium as gym

    if n_episodes < 1:
        raise ValueError(f"measure_random_score: n_episodes must be >= 1, got {n_episodes}")
    if "Bullet" in env_id:
        import pybullet_envs_gymnasium  # noqa: F401  (registers the Bullet envs)
    start = time.perf_counter()
    env = gym.make(env_id)
    env.action_space.seed(seed)
    returns, lengths = [], []
    try:
        for i in range(n_episodes):
            env.reset(seed=seed + i)
            total, steps, done = 0.0, 0, False
            while not done:
                _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
                total += float(reward)
                steps += 1
                done = terminated or truncated
            returns.append(total)
            lengths.append(steps)
    finally:
        env.close()
    arr = np.asarray(returns)
    sem = float(arr.std(ddof=1) / np.sqrt(len(arr))) if len(arr) > 1 else float("nan")
    return {
        "env_id": env_id,
        "mean": float(arr.mean()),
        "sem": sem,
        "n_episodes": n_episodes,
        "mean_length": float(np.mean(lengths)),
        "seconds": time.perf_counter() - start,
    }
