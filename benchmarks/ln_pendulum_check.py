"""Short real check of :class:`sb3_ddpg_ext.policies.LnMlpPolicy` (issue 3).

SB3's DDPG on Pendulum-v1, with rl-zoo3's Pendulum-v1 DDPG hyperparameters (``rl_zoo3/hyperparams/ddpg.yml``:
gamma 0.98, buffer 200k, Gaussian action noise sigma 0.1, lr 1e-3, train_freq 1, gradient_steps 1,
net_arch [400, 300]) except the budget: ``--n-timesteps`` (default 10k) and ``--learning-starts`` (default 1000;
the zoo's 10000 would leave no gradient step in a 10k-step run). Variants: ``mlp`` (SB3 ``MlpPolicy``) and
``ln`` (``LnMlpPolicy``, LayerNorm in actor and critic). After training, the deterministic policy is evaluated on
``--eval-episodes`` episodes (default 10) of a separately seeded Pendulum-v1; a uniform random policy is
evaluated the same way, on the same evaluation seeds.

Each result is appended as one JSON line to ``--out`` as soon as it is measured, so a partial run is usable;
``--summarize`` prints the table of a results file.

Example (single thread, one process per variant)::

    OMP_NUM_THREADS=1 python benchmarks/ln_pendulum_check.py --variants ln --seeds 0 1 2 --out ln_check.jsonl
    python benchmarks/ln_pendulum_check.py --summarize ln_check.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

# Zoo's Pendulum-v1 entry of rl_zoo3/hyperparams/ddpg.yml (n_timesteps / learning_starts are set by the CLI)
ZOO_PENDULUM_DDPG: dict[str, Any] = {
    "gamma": 0.98,
    "buffer_size": 200_000,
    "noise_std": 0.1,
    "gradient_steps": 1,
    "train_freq": 1,
    "learning_rate": 1e-3,
    "net_arch": [400, 300],
}
VARIANTS = ("mlp", "ln")
ENV_ID = "Pendulum-v1"
EVAL_SEED_OFFSET = 10_000


class UniformRandomPolicy:
    """
    A policy acting uniformly at random in a Box action space, with the ``predict`` signature of SB3 models
    (so :func:`~stable_baselines3.common.evaluation.evaluate_policy` can run it).

    :param action_space: The (Box) action space
    :param seed: Seed of its ``numpy.random.Generator``
    """

    def __init__(self, action_space: Any, seed: int):
        self.low = np.asarray(action_space.low, dtype=np.float32)
        self.high = np.asarray(action_space.high, dtype=np.float32)
        self.rng = np.random.default_rng(seed)

    def predict(
        self,
        observation: np.ndarray,
        state: Optional[tuple[np.ndarray, ...]] = None,
        episode_start: Optional[np.ndarray] = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, None]:
        n = observation.shape[0]
        actions = self.rng.uniform(self.low, self.high, size=(n, *self.low.shape)).astype(np.float32)
        return actions, None


def evaluate(model: Any, seed: int, n_episodes: int) -> list[float]:
    """
    Episode returns of ``model`` acting deterministically on a fresh Pendulum-v1 seeded with ``seed``.

    :param model: An SB3 model or any object with SB3's ``predict`` signature
    :param seed: Seed of the evaluation env
    :param n_episodes: Number of episodes
    :return: The ``n_episodes`` episode returns
    """
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    env = make_vec_env(ENV_ID, n_envs=1, seed=seed)
    returns, _ = evaluate_policy(model, env, n_eval_episodes=n_episodes, deterministic=True, return_episode_rewards=True)
    env.close()
    assert isinstance(returns, list)
    return [float(r) for r in returns]


def random_policy_returns(seed: int, n_episodes: int) -> list[float]:
    """
    Returns of a uniform random policy, measured like the trained agents (same evaluation env seed).

    :param seed: Run seed (the evaluation env uses ``seed + EVAL_SEED_OFFSET``, the policy's generator ``seed``)
    :param n_episodes: Number of episodes
    :return: The episode returns
    """
    import gymnasium as gym

    action_space = gym.make(ENV_ID).action_space
    return evaluate(UniformRandomPolicy(action_space, seed), seed + EVAL_SEED_OFFSET, n_episodes)


def train_and_evaluate(variant: str, seed: int, n_timesteps: int, learning_starts: int, n_eval_episodes: int) -> dict:
    """
    Train SB3's DDPG with ``MlpPolicy`` (``variant="mlp"``) or ``LnMlpPolicy`` (``variant="ln"``) and evaluate it.

    :param variant: ``"mlp"`` or ``"ln"``
    :param seed: Seed of the model (torch, numpy, training env)
    :param n_timesteps: Training environment steps
    :param learning_starts: Random-action steps before learning
    :param n_eval_episodes: Evaluation episodes
    :return: A JSON-serialisable result record
    """
    import torch as th
    from stable_baselines3 import DDPG
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.noise import NormalActionNoise

    from sb3_ddpg_ext.policies import LnMlpPolicy

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if n_timesteps < 1 or learning_starts < 0:
        raise ValueError(f"need n_timesteps >= 1 and learning_starts >= 0, got {n_timesteps}, {learning_starts}")
    th.set_num_threads(1)
    hp = ZOO_PENDULUM_DDPG
    env = make_vec_env(ENV_ID, n_envs=1, seed=seed)
    action_shape = env.action_space.shape
    assert action_shape is not None
    action_dim = action_shape[0]
    noise = NormalActionNoise(mean=np.zeros(action_dim), sigma=hp["noise_std"] * np.ones(action_dim))
    policy: Any = LnMlpPolicy if variant == "ln" else "MlpPolicy"
    policy_kwargs: dict[str, Any] = {"net_arch": list(hp["net_arch"])}
    if variant == "ln":
        policy_kwargs.update(layer_norm_actor=True, layer_norm_critic=True)
    model = DDPG(
        policy,
        env,
        learning_rate=hp["learning_rate"],
        buffer_size=hp["buffer_size"],
        learning_starts=learning_starts,
        gamma=hp["gamma"],
        train_freq=hp["train_freq"],
        gradient_steps=hp["gradient_steps"],
        action_noise=noise,
        policy_kwargs=policy_kwargs,
        seed=seed,
        verbose=0,
    )
    start = time.time()
    model.learn(total_timesteps=n_timesteps)
    wall = time.time() - start
    returns = evaluate(model, seed + EVAL_SEED_OFFSET, n_eval_episodes)
    env.close()
    return {
        "variant": variant,
        "seed": seed,
        "n_timesteps": n_timesteps,
        "learning_starts": learning_starts,
        "eval_returns": returns,
        "mean_return": float(np.mean(returns)),
        "train_wall_time_s": wall,
        "hyperparams": hp,
        "python": platform.python_version(),
        "torch": th.__version__,
    }


def summarize(records: Sequence[dict]) -> str:
    """
    A plain-text table: per variant, the per-seed mean evaluation return and the mean +/- standard error over seeds.

    :param records: Result records as written by :func:`main`
    :return: The table
    """
    lines = []
    for variant in ("random", *VARIANTS):
        recs = sorted((r for r in records if r["variant"] == variant), key=lambda r: r["seed"])
        if not recs:
            continue
        means = np.array([r["mean_return"] for r in recs])
        se = float(means.std(ddof=1) / math.sqrt(len(means))) if len(means) > 1 else float("nan")
        per_seed = ", ".join(f"seed {r['seed']}: {r['mean_return']:.1f}" for r in recs)
        lines.append(f"{variant:7s} mean over {len(recs)} seeds {means.mean():8.1f} +/- {se:.1f} (s.e.)   [{per_seed}]")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--n-timesteps", type=int, default=10_000)
    parser.add_argument("--learning-starts", type=int, default=1_000)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--no-random", action="store_true", help="skip the random-policy baseline")
    parser.add_argument("--out", type=Path, default=Path("ln_pendulum_check.jsonl"))
    parser.add_argument("--summarize", type=Path, default=None, help="only print the table of this results file")
    args = parser.parse_args(argv)

    if args.summarize is not None:
        if not args.summarize.is_file():
            raise ValueError(f"--summarize: results file {args.summarize} does not exist")
        records = [json.loads(line) for line in args.summarize.read_text().splitlines() if line.strip()]
        print(summarize(records))
        return 0

    args.out.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        if not args.no_random:
            returns = random_policy_returns(seed, args.eval_episodes)
            rec = {"variant": "random", "seed": seed, "eval_returns": returns, "mean_return": float(np.mean(returns))}
            with args.out.open("a") as f:
                f.write(json.dumps(rec) + "\n")
            print(json.dumps(rec), flush=True)
        for variant in args.variants:
            rec = train_and_evaluate(variant, seed, args.n_timesteps, args.learning_starts, args.eval_episodes)
            with args.out.open("a") as f:
                f.write(json.dumps(rec) + "\n")
            print(json.dumps(rec), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
