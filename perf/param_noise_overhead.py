"""
Overhead of :class:`sb3_ddpg_ext.callbacks.ParameterNoiseCallback`: env-steps/s of SB3 DDPG with and without the
callback, measured in one process with the runs interleaved (A B B A A B ...) so that machine-load drift affects
both sides alike. Only ``model.learn()`` is timed (model construction is not).

Two settings:

- ``train``: the usual DDPG loop (one gradient step per env step), the realistic case;
- ``rollout``: ``gradient_steps=0``, i.e. acting only, the worst case for the callback's relative cost.

Example::

    python perf/param_noise_overhead.py --n-timesteps 2000 --repeats 5
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Optional

import numpy as np
import torch as th
from stable_baselines3 import DDPG
from stable_baselines3.common.noise import NormalActionNoise

from sb3_ddpg_ext.callbacks import ParameterNoiseCallback

SETTINGS: dict[str, dict[str, Any]] = {
    "train": {"gradient_steps": 1},
    "rollout": {"gradient_steps": 0},
}


def time_learn(
    env_id: str,
    n_timesteps: int,
    with_callback: bool,
    setting: str,
    net_arch: list[int],
    seed: int,
    action_noise_std: float = 0.1,
) -> tuple[float, float]:
    """
    Build DDPG, time ``learn(n_timesteps)``.

    :param env_id: Gymnasium id.
    :param n_timesteps: Timed env steps.
    :param with_callback: Whether to pass a :class:`ParameterNoiseCallback`.
    :param setting: ``"train"`` or ``"rollout"`` (see module docstring).
    :param net_arch: Hidden layers of actor and critic.
    :param seed: Seed of the model and of the callback.
    :param action_noise_std: Gaussian action noise std (used in both arms; the callback adds param noise on top).
    :return: env steps per wall-clock second, and per CPU second of this process (``time.process_time``; less
        sensitive to other processes competing for the cores).
    """
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {sorted(SETTINGS)}, got {setting!r}")
    model = DDPG(
        "MlpPolicy",
        env_id,
        learning_starts=0,
        batch_size=256,
        buffer_size=max(n_timesteps, 1000),
        policy_kwargs={"net_arch": net_arch},
        seed=seed,
        **SETTINGS[setting],
    )
    n_actions = int(np.prod(model.action_space.shape))  # type: ignore[arg-type]
    model.action_noise = NormalActionNoise(np.zeros(n_actions), action_noise_std * np.ones(n_actions))
    callback = ParameterNoiseCallback(seed=seed) if with_callback else None
    start, start_cpu = time.perf_counter(), time.process_time()
    model.learn(n_timesteps, callback=callback)
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return n_timesteps / wall, n_timesteps / max(cpu, 1e-9)


def measure_overhead(
    env_id: str = "Pendulum-v1",
    n_timesteps: int = 2000,
    repeats: int = 5,
    settings: tuple[str, ...] = ("train", "rollout"),
    net_arch: Optional[list[int]] = None,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """
    Interleaved timing of DDPG with and without the callback.

    :param env_id: Gymnasium id.
    :param n_timesteps: Env steps per timed run.
    :param repeats: Timed runs per arm and setting.
    :param settings: Subset of :data:`SETTINGS`.
    :param net_arch: Hidden layers (default [400, 300], SB3's DDPG default).
    :param seed: Seed (the same for both arms).
    :return: ``{setting: {"without": [steps/s...], "with": [...], "without_cpu": [steps/CPU-s...], "with_cpu": [...],
        "median_without", "median_with", "slowdown_pct", "median_without_cpu", "median_with_cpu", "slowdown_cpu_pct"}}``
        with ``slowdown_pct = 100 * (1 - median_with / median_without)`` (same for CPU time).
    """
    if repeats < 1 or n_timesteps < 1:
        raise ValueError(f"repeats and n_timesteps must be >= 1, got repeats={repeats}, n_timesteps={n_timesteps}")
    net_arch = net_arch if net_arch is not None else [400, 300]
    results: dict[str, dict[str, Any]] = {}
    for setting in settings:
        # Untimed warm-up of both arms (lazy imports, allocator, first optimizer construction).
        for with_callback in (False, True):
            time_learn(env_id, min(n_timesteps, 300), with_callback, setting, net_arch, seed)
        rates: dict[str, list[float]] = {"without": [], "with": [], "without_cpu": [], "with_cpu": []}
        for rep in range(repeats):
            order = (False, True) if rep % 2 == 0 else (True, False)  # ABBA interleaving
            for with_callback in order:
                rate, cpu_rate = time_learn(env_id, n_timesteps, with_callback, setting, net_arch, seed)
                arm = "with" if with_callback else "without"
                rates[arm].append(rate)
                rates[f"{arm}_cpu"].append(cpu_rate)
        summary: dict[str, Any] = dict(rates)
        for suffix in ("", "_cpu"):
            med_without, med_with = float(np.median(rates[f"without{suffix}"])), float(np.median(rates[f"with{suffix}"]))
            summary[f"median_without{suffix}"] = med_without
            summary[f"median_with{suffix}"] = med_with
            summary[f"slowdown{suffix}_pct"] = 100.0 * (1.0 - med_with / med_without)
        results[setting] = summary
    return results


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--n-timesteps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--settings", nargs="+", default=["train", "rollout"], choices=sorted(SETTINGS))
    parser.add_argument("--net-arch", type=int, nargs="+", default=[400, 300])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    th.set_num_threads(args.threads)
    results = measure_overhead(args.env, args.n_timesteps, args.repeats, tuple(args.settings), args.net_arch, args.seed)
    print(f"{args.env}, DDPG net {args.net_arch}, {args.n_timesteps} steps x {args.repeats} interleaved runs per arm")
    print("medians; wall = env steps per wall-clock second, cpu = per CPU second of this process")
    print(f"{'setting':<10}{'clock':<6}{'without callback':>18}{'with callback':>16}{'slowdown':>10}   runs (without | with)")
    for setting, res in results.items():
        for clock, suffix in (("wall", ""), ("cpu", "_cpu")):
            runs_without = [round(r) for r in res[f"without{suffix}"]]
            runs_with = [round(r) for r in res[f"with{suffix}"]]
            print(
                f"{setting:<10}{clock:<6}{res[f'median_without{suffix}']:>18.1f}{res[f'median_with{suffix}']:>16.1f}"
                f"{res[f'slowdown{suffix}_pct']:>9.1f}%   {runs_without} | {runs_with}"
            )


if __name__ == "__main__":
    main()
