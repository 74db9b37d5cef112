"""
Short real runs: DDPG + adaptive parameter-space noise (:class:`sb3_ddpg_ext.callbacks.ParameterNoiseCallback`)
with a LayerNorm actor and critic (:class:`sb3_ddpg_ext.policies.LnMlpPolicy`) on a Gymnasium task.

Writes one JSON file with the settings, the evaluation curve (deterministic policy, i.e. never perturbed),
the final evaluation and the final parameter-noise sigma.

Example::

    python benchmarks/param_noise_check.py --env Pendulum-v1 --n-timesteps 10000 --seed 0 --out /tmp/pn/pendulum_0.json
    python benchmarks/param_noise_check.py --env MountainCarContinuous-v0 --n-timesteps 30000 --seed 0 \\
        --normalize-obs --n-evals 6 --n-eval-episodes 3 --out /tmp/pn/mcc_0.json
    python benchmarks/param_noise_check.py --summarize /tmp/pn/*.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import DDPG
from stable_baselines3.common.callbacks import CallbackList, EvalCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from sb3_ddpg_ext.callbacks import ParameterNoiseCallback

#: zoo-like DDPG settings per task (rl-zoo3 ``hyperparams/ddpg.yml``), except the smaller default network and
#: shorter learning_starts for Pendulum (the zoo uses 10k of its 20k steps as warm-up).
TASK_SETTINGS: dict[str, dict[str, Any]] = {
    "Pendulum-v1": {"gamma": 0.98, "buffer_size": 200_000, "learning_starts": 1000, "learning_rate": 1e-3, "batch_size": 256},
    "MountainCarContinuous-v0": {
        "gamma": 0.99,
        "buffer_size": 1_000_000,
        "learning_starts": 100,
        "learning_rate": 1e-3,
        "batch_size": 256,
    },
}


def run_check(
    env_id: str,
    n_timesteps: int,
    seed: int,
    net_arch: list[int],
    initial_stddev: float = 0.2,
    desired_action_stddev: float = 0.2,
    sampling: str = "per_element",
    action_noise_std: float = 0.0,
    n_evals: int = 10,
    n_eval_episodes: int = 5,
    final_eval_episodes: int = 10,
    log_dir: Optional[str] = None,
    eval_log_path: Optional[str] = None,
    normalize_obs: bool = False,
    use_param_noise: bool = True,
) -> dict[str, Any]:
    """
    Train DDPG + parameter noise + LayerNorm policy, evaluate, and return a summary dict.

    :param env_id: Gymnasium id, one of :data:`TASK_SETTINGS`.
    :param n_timesteps: Training budget in env steps.
    :param seed: Seed of the model, the callback (derived) and the evaluation env.
    :param net_arch: Hidden layer sizes of actor and critic.
    :param initial_stddev: Initial parameter noise sigma.
    :param desired_action_stddev: Target action distance delta.
    :param sampling: ``per_element`` / ``per_tensor`` / ``single``.
    :param action_noise_std: If > 0, Gaussian action noise added on top of the parameter noise.
    :param n_evals: Number of evaluations during training.
    :param n_eval_episodes: Episodes per evaluation during training.
    :param final_eval_episodes: Episodes of the final evaluation.
    :param log_dir: Optional tensorboard log folder.
    :param eval_log_path: Folder for EvalCallback's ``evaluations.npz`` (a temporary folder if None).
    :param normalize_obs: Normalise observations with running statistics (``VecNormalize(norm_reward=False)``),
        as OpenAI baselines' DDPG does by default (``normalize_observations=True``). Without it a perturbed actor
        on MountainCar barely depends on the velocity (scale ~0.07 vs ~1 for the position), and a force that
        depends on the position only cannot pump energy into the car.
    :param use_param_noise: False runs the control: the same DDPG without the callback (and with no exploration
        noise unless ``action_noise_std > 0``).
    :return: Summary (JSON-serialisable).
    """
    if env_id not in TASK_SETTINGS:
        raise ValueError(f"env_id must be one of {sorted(TASK_SETTINGS)}, got {env_id!r}")
    from sb3_ddpg_ext.policies import LnMlpPolicy

    th.set_num_threads(1)
    monitor = Monitor(gym.make(env_id))
    env: Any = monitor
    eval_monitor = Monitor(gym.make(env_id))
    eval_monitor.reset(seed=seed + 10_000)
    eval_env: Any = eval_monitor
    if normalize_obs:
        gamma = TASK_SETTINGS[env_id]["gamma"]
        env = VecNormalize(DummyVecEnv([lambda: monitor]), norm_obs=True, norm_reward=False, gamma=gamma)
        eval_env = VecNormalize(
            DummyVecEnv([lambda: eval_monitor]), training=False, norm_obs=True, norm_reward=False, gamma=gamma
        )
        eval_env.seed(seed + 10_000)
    n_actions = int(np.prod(env.action_space.shape))  # type: ignore[arg-type]
    action_noise = (
        NormalActionNoise(np.zeros(n_actions), action_noise_std * np.ones(n_actions)) if action_noise_std > 0 else None
    )
    model = DDPG(
        LnMlpPolicy,
        env,
        action_noise=action_noise,
        policy_kwargs={"net_arch": net_arch, "layer_norm_actor": True, "layer_norm_critic": True},
        seed=seed,
        tensorboard_log=log_dir,
        verbose=0,
        **TASK_SETTINGS[env_id],
    )
    param_noise = ParameterNoiseCallback(
        initial_stddev=initial_stddev,
        desired_action_stddev=desired_action_stddev,
        sampling=sampling,  # type: ignore[arg-type]
    )
    if eval_log_path is None:
        eval_log_path = tempfile.mkdtemp(prefix="param_noise_check_")
    # EvalCallback records the curve (evaluations_timesteps/results) only when log_path is set.
    eval_callback = EvalCallback(
        eval_env,
        n_eval_episodes=n_eval_episodes,
        eval_freq=max(n_timesteps // n_evals, 1),
        deterministic=True,
        log_path=eval_log_path,
        verbose=0,
    )
    start = time.perf_counter()
    model.learn(n_timesteps, callback=CallbackList([param_noise, eval_callback]) if use_param_noise else eval_callback)
    wall = time.perf_counter() - start
    returns, _lengths = evaluate_policy(
        model, eval_env, n_eval_episodes=final_eval_episodes, deterministic=True, return_episode_rewards=True
    )
    train_returns = [float(r) for r in monitor.get_episode_rewards()]
    return {
        "env_id": env_id,
        "n_timesteps": n_timesteps,
        "seed": seed,
        "net_arch": net_arch,
        "settings": TASK_SETTINGS[env_id],
        "policy": "sb3_ddpg_ext.policies.LnMlpPolicy(layer_norm_actor=True, layer_norm_critic=True)",
        "param_noise": None
        if not use_param_noise
        else {
            "initial_stddev": initial_stddev,
            "desired_action_stddev": desired_action_stddev,
            "sampling": sampling,
            "final_stddev": param_noise.current_stddev,
            "n_adaptations": param_noise.n_adaptations,
            "last_distance": param_noise.last_distance,
        },
        "action_noise_std": action_noise_std,
        "normalize_obs": normalize_obs,
        "eval_timesteps": [int(t) for t in eval_callback.evaluations_timesteps],
        "eval_mean_returns": [float(np.mean(r)) for r in eval_callback.evaluations_results],
        "final_eval_returns": [float(r) for r in returns],  # type: ignore[union-attr]
        "final_eval_mean": float(np.mean(returns)),
        "final_eval_std": float(np.std(returns)),
        "train_episode_returns": train_returns,
        "wall_time_s": wall,
        "env_steps_per_s": n_timesteps / wall,
        "command": " ".join([sys.executable.split("/")[-1], *sys.argv]),
        "host": platform.node(),
    }


#: A MountainCarContinuous-v0 episode that reaches the goal returns 100 minus the action cost (~90-95 when solved);
#: one that does not returns <= 0.
SOLVED_RETURN = {"MountainCarContinuous-v0": 50.0}


def summarize(summaries: list[dict[str, Any]]) -> str:
    """
    A plain-text table of result files: one row per run (setting, seed, final evaluation, evaluation curve, first
    training episode above the solved threshold, final sigma), then per setting the number of solved seeds.

    :param summaries: Dicts as written by :func:`main` (``--out``).
    :return: The table.
    """
    rows: list[str] = []
    groups: dict[str, list[bool]] = {}
    for d in sorted(summaries, key=lambda d: (d["env_id"], d["n_timesteps"], d.get("param_noise") is None, d["seed"])):
        pn = d.get("param_noise")
        setting = (
            f"{d['env_id']} {d['n_timesteps'] // 1000}k "
            + ("no-param-noise" if pn is None else f"sigma0={pn['initial_stddev']} delta={pn['desired_action_stddev']}")
            + (" normalize-obs" if d.get("normalize_obs") else "")
            + (f" action-noise={d['action_noise_std']}" if d.get("action_noise_std") else "")
        )
        threshold = SOLVED_RETURN.get(d["env_id"])
        first = next((i for i, r in enumerate(d["train_episode_returns"]) if threshold is not None and r > threshold), None)
        solved = threshold is not None and d["final_eval_mean"] > threshold
        groups.setdefault(setting, []).append(solved)
        curve = " ".join(f"{r:.0f}" for r in d["eval_mean_returns"])
        sigma = "-" if pn is None else f"{pn['final_stddev']:.3f}"
        rows.append(
            f"{setting:60s} seed {d['seed']:2d}: final {d['final_eval_mean']:7.1f} +/- {d['final_eval_std']:5.1f}"
            f"  evals [{curve}]  first episode > threshold: {first}  sigma {sigma}"
        )
    if any(env in SOLVED_RETURN for env in {d["env_id"] for d in summaries}):
        rows.append("")
        for setting, solved in groups.items():
            rows.append(f"{setting}: {sum(solved)} of {len(solved)} seeds solved (final evaluation mean > threshold)")
    return "\n".join(rows)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--summarize", type=Path, nargs="+", help="print the table of these result files and exit")
    parser.add_argument("--env", choices=sorted(TASK_SETTINGS))
    parser.add_argument("--n-timesteps", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--net-arch", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--initial-stddev", type=float, default=0.2)
    parser.add_argument("--desired-action-stddev", type=float, default=0.2)
    parser.add_argument("--sampling", default="per_element", choices=["per_element", "per_tensor", "single"])
    parser.add_argument("--action-noise-std", type=float, default=0.0)
    parser.add_argument("--normalize-obs", action="store_true", help="running observation normalisation (baselines' default)")
    parser.add_argument("--no-param-noise", action="store_true", help="control run: no ParameterNoiseCallback")
    parser.add_argument("--n-evals", type=int, default=10)
    parser.add_argument("--n-eval-episodes", type=int, default=5, help="episodes per evaluation during training")
    parser.add_argument("--final-eval-episodes", type=int, default=10)
    parser.add_argument("--out", type=Path, help="JSON output file")
    parser.add_argument("--tensorboard-log", default=None)
    args = parser.parse_args(argv)
    if args.summarize:
        print(summarize([json.loads(path.read_text()) for path in args.summarize]))
        return
    for name in ("env", "n_timesteps", "out"):
        if getattr(args, name) is None:
            parser.error(f"--{name.replace('_', '-')} is required (unless --summarize)")
    summary = run_check(
        args.env,
        args.n_timesteps,
        args.seed,
        args.net_arch,
        initial_stddev=args.initial_stddev,
        desired_action_stddev=args.desired_action_stddev,
        sampling=args.sampling,
        action_noise_std=args.action_noise_std,
        n_evals=args.n_evals,
        n_eval_episodes=args.n_eval_episodes,
        final_eval_episodes=args.final_eval_episodes,
        log_dir=args.tensorboard_log,
        eval_log_path=str(args.out.with_suffix("")) + "_eval",
        normalize_obs=args.normalize_obs,
        use_param_noise=not args.no_param_noise,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1))
    print(
        f"{summary['env_id']} seed={summary['seed']} steps={summary['n_timesteps']}: final eval "
        f"{summary['final_eval_mean']:.1f} +/- {summary['final_eval_std']:.1f} ({len(summary['final_eval_returns'])} ep), "
        + (f"sigma={summary['param_noise']['final_stddev']:.4f}, " if summary["param_noise"] else "no parameter noise, ")
        + f"{summary['env_steps_per_s']:.0f} steps/s"
    )


if __name__ == "__main__":
    main()
