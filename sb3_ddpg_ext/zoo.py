"""
RL Baselines3 Zoo (rl-zoo3) integration.

- :func:`resolve_variant` (from :mod:`sb3_ddpg_ext.variants`, re-exported here): baseline hyperparameters of one env
  (``hyperparams/ddpg.yml``) merged with one named ablation variant (``hyperparams/variants.yml``), ready to be
  written as a zoo YAML;
- :class:`ExplorationCallback` / :class:`ActionNoiseCallback` (from :mod:`sb3_ddpg_ext.callbacks`, re-exported
  here for the ``sb3_ddpg_ext.zoo.ExplorationCallback`` entries of zoo YAMLs) and the exploration spec
  (:mod:`sb3_ddpg_ext.exploration`);
- :func:`register_zoo`: adds ``ddpg_ext`` (:class:`sb3_ddpg_ext.ddpg.DDPG`) to rl-zoo3's algorithm table and its
  Optuna sampler to the zoo's sampler table (what ``python -m sb3_ddpg_ext.train`` / ``enjoy`` do first);
- :func:`algo_class`, :func:`check_zoo_keys`, :func:`setup_zoo_experiment`, the experiment manager of ``-optimize``
  and the ``train`` / ``enjoy`` / ``resolve`` command lines.

Importing this module does not import rl-zoo3; what needs it raises a ``ModuleNotFoundError`` naming the extra
(``pip install "sb3_ddpg_ext[zoo]"``) when it is not installed.

rl-zoo3: https://github.com/DLR-RM/rl-baselines3-zoo
"""

from __future__ import annotations

import argparse
import copy
import functools
import sys
from pathlib import Path
from typing import Any, Optional

import yaml
from stable_baselines3.common.callbacks import BaseCallback

from sb3_ddpg_ext.callbacks import EXPLORATION_SPEC_ATTR, ActionNoiseCallback, ExplorationCallback
from sb3_ddpg_ext.exploration import PARAM_NOISE_PREFIXES, SPEC_PLACEHOLDERS, ExplorationSpec, parse_exploration_spec
from sb3_ddpg_ext.extras import import_optional, optional_dependency

# Re-exported: YAMLs, scripts and docs name them as sb3_ddpg_ext.zoo.<name>.
from sb3_ddpg_ext.variants import (
    BASELINE,
    DEFAULT_HYPERPARAMS_FILE,
    DEFAULT_VARIANTS_FILE,
    FACTORS,
    HYPERPARAMS_DIR,
    VARIANT_ALGOS,
    PathLike,
    load_variants,
    load_yaml_mapping,
    merge_hyperparams,
    resolve_variant,
)

__all__ = [
    "BASELINE",
    "DEFAULT_HYPERPARAMS_FILE",
    "DEFAULT_VARIANTS_FILE",
    "EXPLORATION_SPEC_ATTR",
    "FACTORS",
    "HYPERPARAMS_DIR",
    "PARAM_NOISE_PREFIXES",
    "SPEC_PLACEHOLDERS",
    "VARIANT_ALGOS",
    "ZOO_ALGO_NAME",
    "ZOO_ONLY_KEYS",
    "ActionNoiseCallback",
    "ExplorationCallback",
    "ExplorationSpec",
    "PathLike",
    "algo_class",
    "check_zoo_keys",
    "enjoy",
    "load_variants",
    "load_yaml_mapping",
    "main",
    "merge_hyperparams",
    "parse_exploration_spec",
    "register_zoo",
    "resolve_main",
    "resolve_variant",
    "setup_zoo_experiment",
    "train",
]

#: Name of our algorithm in rl-zoo3's ``ALGOS`` table.
ZOO_ALGO_NAME = "ddpg_ext"


# ------------------------------------------------------------------------------------------------ rl-zoo3 registration
_ZOO_PURPOSE = "the rl-zoo3 integration of sb3_ddpg_ext"


def _import_zoo(module: str) -> Any:
    """Import a module of rl-zoo3; a missing rl-zoo3 (or optuna, sb3-contrib) names ``sb3_ddpg_ext[zoo]``."""
    return import_optional(module, _ZOO_PURPOSE)


def register_zoo() -> None:
    """
    Register ``ddpg_ext`` (:class:`sb3_ddpg_ext.ddpg.DDPG`) in rl-zoo3's ``ALGOS`` table and its Optuna sampler /
    converter in ``HYPERPARAMS_SAMPLER`` / ``HYPERPARAMS_CONVERTER`` (idempotent). The zoo's train, enjoy and record
    scripts all read these tables, so call this before running them in-process.
    """
    hyperparams_opt = _import_zoo("rl_zoo3.hyperparams_opt")
    utils = _import_zoo("rl_zoo3.utils")

    from sb3_ddpg_ext.ddpg import DDPG
    from sb3_ddpg_ext.sampler import convert_ddpg_ext_params, sample_ddpg_ext_params

    utils.ALGOS[ZOO_ALGO_NAME] = DDPG
    hyperparams_opt.HYPERPARAMS_SAMPLER[ZOO_ALGO_NAME] = sample_ddpg_ext_params
    hyperparams_opt.HYPERPARAMS_CONVERTER[ZOO_ALGO_NAME] = convert_ddpg_ext_params


#: Keys of a zoo YAML entry that the zoo consumes itself (everything else goes to the algorithm's constructor).
ZOO_ONLY_KEYS = frozenset(
    {
        "n_timesteps",
        "n_envs",
        "normalize",
        "env_wrapper",
        "vec_env_wrapper",
        "callback",
        "frame_stack",
        "noise_type",
        "noise_std",
        "env_kwargs",
        "monitor_kwargs",
    }
)


def algo_class(algo: str) -> type:
    """
    The class rl-zoo3 uses for ``--algo algo`` (``ddpg_ext`` included, after :func:`register_zoo`).

    :param algo: Zoo algorithm name.
    :return: The algorithm class.
    :raises ValueError: for an unknown name.
    """
    register_zoo()
    ALGOS = _import_zoo("rl_zoo3.utils").ALGOS
    if algo not in ALGOS:
        raise ValueError(f"unknown zoo algo {algo!r}; known: {sorted(ALGOS)}")
    return ALGOS[algo]


def check_zoo_keys(hyperparams: dict[str, Any], algo: str, where: str = "hyperparameters") -> None:
    """
    Check that every key of a zoo entry is either consumed by the zoo or an argument of the algorithm's constructor
    (the zoo itself only fails later, with a ``TypeError`` from the constructor).

    :param hyperparams: One env's zoo entry.
    :param algo: Zoo algorithm name (``ddpg``, ``ddpg_ext``, ...).
    :param where: Text naming the entry in the error message (e.g. the file and env id).
    :raises ValueError: naming the unknown key(s).
    """
    import inspect

    params = inspect.signature(algo_class(algo)).parameters
    allowed = (set(params) - {"self", "env", "_init_setup_model"}) | ZOO_ONLY_KEYS
    unknown = sorted(set(hyperparams) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown} for zoo algo {algo!r}")
    if "n_timesteps" not in hyperparams:
        raise ValueError(f"{where}: missing key 'n_timesteps' (the zoo requires it)")


def setup_zoo_experiment(
    algo: str,
    env_id: str,
    hyperparams: dict[str, Any],
    log_folder: PathLike,
    seed: int = 0,
    n_timesteps: int = -1,
    custom_hyperparams: Optional[dict[str, Any]] = None,
    eval_freq: int = -1,
    verbose: int = 0,
) -> tuple[Any, Any]:
    """
    In-process rl-zoo3 setup of one run, as ``python -m sb3_ddpg_ext.train`` does it before training: the zoo's
    ``ExperimentManager`` reads ``{env_id: hyperparams}`` from a YAML file written in ``log_folder``, preprocesses it
    (schedules, ``policy`` dotted paths, ``callback`` entries, action noise) and builds the env and the model.

    :param algo: Zoo algorithm name (``ddpg``, ``ddpg_ext``, ...).
    :param env_id: Gymnasium env id (import its package first, e.g. ``pybullet_envs_gymnasium``).
    :param hyperparams: The env's zoo entry (e.g. from :func:`resolve_variant`).
    :param log_folder: Where the zoo writes its logs (and where the YAML is written).
    :param seed: The run seed (``--seed``).
    :param n_timesteps: Budget override (``-n``); -1 keeps the entry's ``n_timesteps``.
    :param custom_hyperparams: Overrides as with ``-params`` (e.g. a smaller ``policy_kwargs`` in tests).
    :param eval_freq: ``--eval-freq`` (-1: no evaluation callback).
    :param verbose: ``--verbose``.
    :return: ``(experiment_manager, model)``; call ``experiment_manager.learn(model)`` to train with the zoo's
        callbacks, then ``experiment_manager.save_trained_model(model)``.
    """
    from stable_baselines3.common.utils import set_random_seed

    register_zoo()
    log_folder = Path(log_folder)
    log_folder.mkdir(parents=True, exist_ok=True)
    conf = log_folder / f"{env_id}_{algo}_hyperparams.yml"
    conf.write_text(yaml.safe_dump({env_id: hyperparams}, sort_keys=False))
    set_random_seed(seed)
    args = argparse.Namespace(algo=algo, env=env_id, seed=seed, n_timesteps=n_timesteps, conf_file=str(conf))
    manager = _experiment_manager_class()(
        args,
        algo,
        env_id,
        str(log_folder),
        n_timesteps=n_timesteps,
        eval_freq=eval_freq,
        n_eval_episodes=1,
        hyperparams=copy.deepcopy(custom_hyperparams),
        seed=seed,
        # as train.py's default (-1: the algorithm's own log interval); the manager's default 0 would divide by 0
        log_interval=-1,
        verbose=verbose,
        config=str(conf),
        device="cpu",
    )
    result = manager.setup_experiment()
    assert result is not None
    return manager, result[0]


def _is_exploration_entry(entry: Any) -> bool:
    """Whether a zoo ``callback:`` entry is an :class:`ExplorationCallback` (instance, class name or dict)."""
    if isinstance(entry, BaseCallback):
        return isinstance(entry, ExplorationCallback)
    name = next(iter(entry)) if isinstance(entry, dict) and len(entry) == 1 else entry
    return isinstance(name, str) and name.rsplit(".", 1)[-1] in ("ExplorationCallback", "ActionNoiseCallback")


@functools.lru_cache(maxsize=1)
def _experiment_manager_class() -> Any:
    """:class:`DDPGExtExperimentManager`, built lazily so that importing this module does not import rl-zoo3."""
    import threading

    with optional_dependency(_ZOO_PURPOSE):
        from rl_zoo3.exp_manager import ExperimentManager

    class DDPGExtExperimentManager(ExperimentManager):
        """
        rl-zoo3's ``ExperimentManager`` with one addition for ``-optimize``: a trial whose sampler stored an
        ``exploration_spec`` user attribute (:func:`sb3_ddpg_ext.sampler.sample_ddpg_ext_params`) trains with the
        matching :class:`ExplorationCallback` (replacing any exploration callback of the YAML). Thread-safe for
        ``--n-jobs > 1``. Everything else is the zoo's.
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._trial_local = threading.local()
            self._base_specified_callbacks: list = []
            super().__init__(*args, **kwargs)

        @property  # type: ignore[override]
        def specified_callbacks(self) -> list:
            extra = getattr(self._trial_local, "callbacks", None)
            if extra is None:
                return self._base_specified_callbacks
            return [entry for entry in self._base_specified_callbacks if not _is_exploration_entry(entry)] + extra

        @specified_callbacks.setter
        def specified_callbacks(self, value: list) -> None:
            self._base_specified_callbacks = value

        def objective(self, trial: Any) -> float:
            from rl_zoo3.hyperparams_opt import HYPERPARAMS_SAMPLER

            if HYPERPARAMS_SAMPLER.get(self.algo) is not None and self.algo == ZOO_ALGO_NAME:
                # Ask the sampler first (Optuna returns the same values when the zoo asks again in objective()).
                n_envs = 1 if self.algo == "ars" else self.n_envs
                HYPERPARAMS_SAMPLER[self.algo](trial, self.n_actions, n_envs, {"using_her_replay_buffer": False})
            spec = trial.user_attrs.get("exploration_spec")
            self._trial_local.callbacks = None if spec is None else [ExplorationCallback(spec=spec, override=True)]
            try:
                return super().objective(trial)
            finally:
                self._trial_local.callbacks = None

    return DDPGExtExperimentManager


def _prepare_zoo() -> None:
    """Register ``ddpg_ext`` and install the experiment manager used by ``rl_zoo3.train.train()``."""
    register_zoo()
    _import_zoo("rl_zoo3.train").ExperimentManager = _experiment_manager_class()


def _with_default_conf(argv: list[str]) -> list[str]:
    """Add ``-conf hyperparams/ddpg.yml`` for ``--algo ddpg_ext`` when no config is given (the zoo has none)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--algo", default="ppo")
    pre.add_argument("-conf", "--conf-file", default=None)
    known, _ = pre.parse_known_args(argv)
    if known.algo == ZOO_ALGO_NAME and known.conf_file is None:
        if not DEFAULT_HYPERPARAMS_FILE.is_file():
            raise ValueError(
                f"--algo {ZOO_ALGO_NAME} needs -conf <file>: rl-zoo3 has no {ZOO_ALGO_NAME}.yml and the default "
                f"{str(DEFAULT_HYPERPARAMS_FILE)!r} does not exist"
            )
        return [*argv, "--conf-file", str(DEFAULT_HYPERPARAMS_FILE)]
    return argv


def _run_with_argv(prog: str, argv: Optional[list[str]], func: Any) -> None:
    old_argv = sys.argv
    sys.argv = [prog, *(sys.argv[1:] if argv is None else argv)]
    try:
        func()
    finally:
        sys.argv = old_argv


def train(argv: Optional[list[str]] = None) -> None:
    """
    ``python -m sb3_ddpg_ext.train``: rl-zoo3's train with every flag unchanged, after :func:`register_zoo`
    (``--algo ddpg_ext`` available; without ``-conf`` it uses ``hyperparams/ddpg.yml``).

    :param argv: Arguments (without the program name); ``None`` for ``sys.argv[1:]``.
    """
    _prepare_zoo()
    args = _with_default_conf(list(sys.argv[1:] if argv is None else argv))
    _run_with_argv("sb3_ddpg_ext.train", args, _import_zoo("rl_zoo3.train").train)


def enjoy(argv: Optional[list[str]] = None) -> None:
    """
    ``python -m sb3_ddpg_ext.enjoy``: rl-zoo3's enjoy with every flag unchanged, after :func:`register_zoo`.

    :param argv: Arguments (without the program name); ``None`` for ``sys.argv[1:]``.
    """
    register_zoo()
    _run_with_argv("sb3_ddpg_ext.enjoy", argv, _import_zoo("rl_zoo3.enjoy").enjoy)


def _run_zoo_script(module: str, argv: Optional[list[str]]) -> None:
    import runpy

    register_zoo()

    def run() -> None:
        with optional_dependency(f"python -m {module}"):
            runpy.run_module(module, run_name="__main__", alter_sys=False)

    _run_with_argv(module, argv, run)


def resolve_main(argv: Optional[list[str]] = None) -> None:
    """
    ``python -m sb3_ddpg_ext.zoo resolve --env ENV --variant NAME [-o FILE]``: print (or write) the zoo YAML of one
    "baseline + variant" run, ``{env: merged}``, preceded by a comment with the zoo algo to use.

    :param argv: Arguments (without the program name); ``None`` for ``sys.argv[1:]``.
    """
    parser = argparse.ArgumentParser(prog="python -m sb3_ddpg_ext.zoo resolve", description=resolve_main.__doc__)
    parser.add_argument("--env", required=True, help="gymnasium env id (a key of the hyperparameter file)")
    parser.add_argument("--variant", default=BASELINE, help="variant name of the variants file, or 'baseline'")
    parser.add_argument("--hyperparams-file", default=str(DEFAULT_HYPERPARAMS_FILE), help="baseline zoo YAML")
    parser.add_argument("--variants-file", default=None, help="variants YAML (default: variants.yml beside it)")
    parser.add_argument("-o", "--output", default=None, help="write the YAML here instead of printing it")
    args = parser.parse_args(argv)
    algo, merged = resolve_variant(args.hyperparams_file, args.env, args.variant, args.variants_file)
    text = f"# algo: {algo}\n" + yaml.safe_dump({args.env: merged}, sort_keys=False)
    if args.output is None:
        print(text, end="")
    else:
        Path(args.output).write_text(text)
        print(f"algo={algo} written to {args.output}")


def main(argv: Optional[list[str]] = None) -> None:
    """
    ``python -m sb3_ddpg_ext.zoo <script> [args]`` with ``<script>`` one of ``train``, ``enjoy``, ``record_video``,
    ``record_training`` (rl-zoo3's scripts with ``ddpg_ext`` registered) or ``resolve`` (see :func:`resolve_main`).

    :param argv: Arguments (without the program name); ``None`` for ``sys.argv[1:]``.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    scripts = ("train", "enjoy", "record_video", "record_training", "resolve")
    if not args or args[0] not in scripts:
        raise SystemExit(f"usage: python -m sb3_ddpg_ext.zoo {{{','.join(scripts)}}} [args...]")
    script, rest = args[0], args[1:]
    if script == "train":
        train(rest)
    elif script == "enjoy":
        enjoy(rest)
    elif script == "resolve":
        resolve_main(rest)
    else:
        _run_zoo_script(f"rl_zoo3.{script}", rest)


if __name__ == "__main__":
    main()
