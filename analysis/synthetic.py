"""Synthetic run folders in the benchmark runner's exact layout, for tests and the report benchmark.

The files are written the way the real tools write them (``numpy.savez`` like SB3's ``EvalCallback``, a
``Monitor`` CSV with its JSON header line, zoo ``config.yml`` / ``args.yml`` with the OrderedDict python tag,
``run.json`` with the runner's keys and types, the layout of :mod:`sb3_ddpg_ext.run_folder`), only the numbers are
drawn from a seeded generator: saturating learning curves ``level * (1 - exp(-t / tau)) + noise`` whose level
depends on the variant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from sb3_ddpg_ext import run_folder

from .load import PathLike

#: ``started`` of every synthetic run: 2026-01-01T00:00:00Z as Unix time (the runner writes ``time.time()``).
SYNTHETIC_START = 1767225600.0

_ORDERED = "!!python/object/apply:collections.OrderedDict\n"


def _ordered_yaml(d: dict) -> str:
    lines = [_ORDERED.rstrip("\n")]
    for k, v in d.items():
        lines.append(f"- - - {k}" if len(lines) == 1 else f"  - - {k}")
        lines.append(f"    - {json.dumps(v)}")
    return "\n".join(lines) + "\n"


def write_zoo_log(
    log_dir: PathLike,
    algo: str,
    env_id: str,
    timesteps: np.ndarray,
    results: np.ndarray,
    episode_returns: Optional[np.ndarray] = None,
    episode_length: int = 1000,
    seed: int = 0,
    config: Optional[dict] = None,
) -> Path:
    """Write ``<log_dir>/<algo>/<env_id>_1/`` (evaluations.npz, 0.monitor.csv, <env_id>/config.yml, args.yml).

    :param timesteps: ``(n_evals,)`` evaluation steps.
    :param results: ``(n_evals, n_episodes)`` evaluation returns.
    :param episode_returns: training-episode returns for the monitor file (default: none, header only).
    :return: the run folder.
    """
    run_dir = Path(log_dir) / algo / f"{env_id}_1"
    (run_dir / env_id).mkdir(parents=True, exist_ok=True)
    np.savez(
        run_dir / run_folder.EVALUATIONS_FILE,
        timesteps=np.asarray(timesteps, dtype=np.int64),
        results=np.asarray(results, dtype=float),
        ep_lengths=np.full(np.shape(results), episode_length, dtype=np.int64),
    )
    rets = np.asarray(episode_returns if episode_returns is not None else [], dtype=float)
    with open(run_dir / "0.monitor.csv", "w", encoding="utf-8") as f:
        f.write("#" + json.dumps({"t_start": 0.0, "env_id": env_id}) + "\nr,l,t\n")
        for i, r in enumerate(rets):
            f.write(f"{r:.6f},{episode_length},{0.1 * (i + 1):.6f}\n")
    cfg = (
        config if config is not None else {"learning_rate": 0.001, "n_timesteps": float(timesteps[-1]), "policy": "MlpPolicy"}
    )
    (run_dir / env_id / "config.yml").write_text(_ordered_yaml(cfg), encoding="utf-8")
    (run_dir / env_id / "args.yml").write_text(_ordered_yaml({"algo": algo, "env": env_id, "seed": seed}), encoding="utf-8")
    return run_dir


def write_runner_run(
    out: PathLike,
    suite: str,
    task: str,
    variant: str,
    seed: int,
    timesteps: np.ndarray,
    results: np.ndarray,
    factor: Optional[str] = None,
    status: str = "done",
    algo: str = "ddpg",
    episode_returns: Optional[np.ndarray] = None,
) -> Path:
    """Write one runner folder ``<out>/<suite>/<task>/<variant>/seed_<seed>/`` (run.json, command.txt,
    hyperparams.yml, stdout/stderr, and the zoo log under ``logs/``).

    :return: the run folder.
    """
    run_dir = run_folder.run_dir(out, suite, task, variant, seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_zoo_log(run_dir / run_folder.LOGS_DIR, algo, task, timesteps, results, episode_returns, seed=seed)
    info = {
        "suite": suite,
        "task": task,
        "variant": variant,
        "factor": factor,
        "seed": seed,
        "algo": algo,
        "status": status,
        "started": SYNTHETIC_START,
        "finished": SYNTHETIC_START + 600.0,
        "wall_time_s": 600.0,
        "env_steps_per_s": float(timesteps[-1]) / 600.0,
        "n_timesteps": int(timesteps[-1]),
        "versions": {"python": "3.11", "stable_baselines3": "2.9.0", "torch": "2.13.0"},
        "git_commit": "0" * 40,
        "host": "synthetic",
        "error_tail": None if status == "done" else "RuntimeError: synthetic failure",
    }
    run_folder.write_json_atomic(run_dir / run_folder.RUN_JSON, info)
    command = f"python -m sb3_ddpg_ext.train --algo {algo} --env {task} --seed {seed}\n"
    (run_dir / run_folder.COMMAND_FILE).write_text(command, encoding="utf-8")
    hyperparams = f"{task}:\n  n_timesteps: {int(timesteps[-1])}\n"
    (run_dir / run_folder.HYPERPARAMS_FILE).write_text(hyperparams, encoding="utf-8")
    (run_dir / run_folder.STDOUT_FILE).write_text("")
    (run_dir / run_folder.STDERR_FILE).write_text("")
    return run_dir


def synthetic_suite(
    out: PathLike,
    tasks: Sequence[str],
    variants: dict[str, tuple[Optional[str], float]],
    n_seeds: int,
    n_points: int = 100,
    budget: int = 100_000,
    n_eval_episodes: int = 5,
    seed: int = 0,
    suite: str = "synthetic",
    n_train_episodes: int = 20,
    levels: Optional[dict[str, tuple[float, float]]] = None,
) -> list[Path]:
    """Write a grid of runner folders ``tasks x variants x seeds``.

    :param variants: ``{name: (factor or None, level multiplier)}``.
    :param levels: ``{task: (random-like start, final level)}`` (default: 0 -> 1000).
    :param seed: seed of the generator drawing every number.
    :return: the run folders.
    """
    rng = np.random.default_rng(seed)
    steps = np.linspace(budget / n_points, budget, n_points).astype(np.int64)
    paths = []
    for task in tasks:
        start, level = (levels or {}).get(task, (0.0, 1000.0))
        for variant, (factor, mult) in variants.items():
            for s in range(n_seeds):
                tau = budget * rng.uniform(0.1, 0.4)
                curve = start + (level * mult - start) * (1 - np.exp(-steps / tau))
                noise = rng.normal(0.0, 0.05 * abs(level), size=(n_points, n_eval_episodes))
                results = curve[:, None] + noise
                ep = curve[np.linspace(0, n_points - 1, n_train_episodes).astype(int)] + rng.normal(0, 10, n_train_episodes)
                paths.append(write_runner_run(out, suite, task, variant, s, steps, results, factor=factor, episode_returns=ep))
    return paths
