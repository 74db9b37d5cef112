"""
Calibrate parameter-space target-policy noise against action-space target noise (a script, not a test).

For each task and weight std ``sigma_w`` (clip ``2.5 sigma_w``, TD3's clip / std ratio), build ``sb3_ddpg_ext.DDPG``
with ``target_noise_space="parameter"`` and a freshly initialised actor of the given net, collect states with a
uniform random policy, and measure the RMS action distance (scaled [-1, 1] action space) between the unperturbed
target actor ``mu'(s')`` and the noisy target actions ``a'`` that the TD target uses (``DDPG._target_actions``, the
training code path). The same is measured for action-space noise (std 0.2, clip 0.5) as the reference.
Means over ``--seeds`` initialisations x ``--draws`` noise draws.

    python scripts/calibrate_target_noise.py --net 64 64 --stds 0.02 0.03 0.05 0.07 0.08 0.1 0.15 \\
        --out hyperparams/calibration/tn_parameter_net64.json
"""

from __future__ import annotations

import argparse
import json
import platform
from typing import Any

import numpy as np
import torch as th

DEFAULT_TASKS = (
    "HalfCheetah-v5",
    "Hopper-v5",
    "HalfCheetahBulletEnv-v0",
    "HopperBulletEnv-v0",
    "Pendulum-v1",
    "MountainCarContinuous-v0",
)
DEFAULT_STDS = (0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2)


def random_states(env_id: str, n: int, seed: int) -> np.ndarray:
    """``n`` observations visited by a uniform random policy (resets on episode end)."""
    import gymnasium as gym

    if "Bullet" in env_id:
        import pybullet_envs_gymnasium  # noqa: F401

    env = gym.make(env_id)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    states = []
    for _ in range(n):
        states.append(obs)
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return np.asarray(states, dtype=np.float32)


def distances(env_id: str, net: list[int], stds: list[float], seeds: int, draws: int, n_states: int) -> dict[str, Any]:
    """RMS action distances per weight std (and for action-space noise 0.2 / 0.5), means and per-seed values."""
    from sb3_ddpg_ext.ddpg import DDPG

    if "Bullet" in env_id:
        import pybullet_envs_gymnasium  # noqa: F401

    per_std: dict[str, list[float]] = {str(s): [] for s in stds}
    action_ref: list[float] = []
    for seed in range(seeds):
        obs = th.as_tensor(random_states(env_id, n_states, seed))
        model = DDPG("MlpPolicy", env_id, policy_kwargs={"net_arch": list(net)}, seed=seed, device="cpu")
        with th.no_grad():
            clean = model.actor_target(obs)
            model.target_noise_space, model.target_noise_sampling = "action", "per_sample"
            model.target_policy_noise, model.target_noise_clip = 0.2, 0.5
            for _ in range(draws):
                action_ref.append(float(th.sqrt(th.mean((model._target_actions(obs) - clean) ** 2))))
            model.target_noise_space, model.target_noise_sampling = "parameter", "per_batch"
            for std in stds:
                model.target_policy_noise, model.target_noise_clip = std, 2.5 * std
                for _ in range(draws):
                    per_std[str(std)].append(float(th.sqrt(th.mean((model._target_actions(obs) - clean) ** 2))))
    return {
        "action_space_0.2_clip_0.5": float(np.mean(action_ref)),
        "parameter_space": {s: float(np.mean(v)) for s, v in per_std.items()},
        "parameter_space_sd_over_draws": {s: float(np.std(v)) for s, v in per_std.items()},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS))
    parser.add_argument("--net", nargs="+", type=int, default=[64, 64])
    parser.add_argument("--stds", nargs="+", type=float, default=list(DEFAULT_STDS))
    parser.add_argument("--seeds", type=int, default=5, help="actor initialisations per task")
    parser.add_argument("--draws", type=int, default=5, help="noise draws per initialisation")
    parser.add_argument("--n-states", type=int, default=256)
    parser.add_argument("--out", default=None, help="JSON file to write")
    args = parser.parse_args(argv)
    th.set_num_threads(1)
    result: dict[str, Any] = {
        "command": "python scripts/calibrate_target_noise.py " + " ".join(argv) if argv else None,
        "net": args.net,
        "seeds": args.seeds,
        "draws": args.draws,
        "n_states": args.n_states,
        "clip_over_std": 2.5,
        "torch": th.__version__,
        "python": platform.python_version(),
        "tasks": {},
    }
    for env_id in args.tasks:
        result["tasks"][env_id] = distances(env_id, args.net, args.stds, args.seeds, args.draws, args.n_states)
        row = result["tasks"][env_id]
        cells = "  ".join(f"{s}:{d:.3f}" for s, d in row["parameter_space"].items())
        print(f"{env_id:28s} action 0.2 -> {row['action_space_0.2_clip_0.5']:.3f} | weight std -> distance  {cells}")
    means = {s: float(np.median([t["parameter_space"][s] for t in result["tasks"].values()])) for s in map(str, args.stds)}
    result["median_over_tasks"] = means
    print("median over tasks:", "  ".join(f"{s}:{d:.3f}" for s, d in means.items()))
    if args.out:
        from pathlib import Path

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
