"""
RL Baselines3 Zoo (rl-zoo3) integration.

- :func:`resolve_variant` (from :mod:`sb3_ddpg_ext.variants`, re-exported here): baseline hyperparameters of one env
  (``hyperparams/ddpg.yml``) merged with one named ablation variant (``hyperparams/variants.yml``), ready to be
  written as a zoo YAML;
- :class:`ExplorationCallback`: exploration (any action noise of :func:`sb3_ddpg_ext.noise.make_action_noise`
  and/or adaptive parameter noise) from one baselines-style spec string such as ``"adaptive-param_0.2,normal_0.1"``,
  set from a plain zoo ``callback:`` entry, so it works with ``python -m rl_zoo3.train --algo ddpg`` too;
- :func:`register_zoo`: adds ``ddpg_ext`` (:class:`sb3_ddpg_ext.ddpg.DDPG`) to rl-zoo3's algorithm table and its
  Optuna sampler to the zoo's sampler table (what ``python -m sb3_ddpg_ext.train`` / ``enjoy`` do first).

rl-zoo3: https://github.com/DLR-RM/rl-baselines3-zoo
"""

from __future__ import annotations

import argparse
import copy
import functools
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import yaml
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from sb3_ddpg_ext.noise import make_action_noise
from sb3_ddpg_ext.seeding import derive_seed

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

if TYPE_CHECKING:
    from sb3_ddpg_ext.callbacks import ParameterNoiseCallback

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
#: Model attribute recording the spec of the ExplorationCallback that set ``model.action_noise`` (saved with it).
EXPLORATION_SPEC_ATTR = "exploration_spec"

# ------------------------------------------------------------------------------------------------ exploration spec
#: Parameter-noise spec prefixes -> ``ParameterNoiseCallback`` sampling mode.
PARAM_NOISE_PREFIXES: dict[str, str] = {
    "adaptive-param": "per_element",
    "adaptive-param-naive": "per_tensor",
    "adaptive-param-single": "single",
}
#: Placeholders an action-noise spec may hold, replaced when training starts (see :class:`ExplorationCallback`).
SPEC_PLACEHOLDERS: tuple[str, ...] = ("{total_timesteps}", "{noise_steps}")


@dataclass(frozen=True)
class ExplorationSpec:
    """
    A parsed exploration spec string.

    :param action_noise: The action-noise part, a :func:`sb3_ddpg_ext.noise.make_action_noise` spec
        (``None`` when the spec has no action noise).
    :param param_noise_stddev: Initial parameter-noise std and target action distance (``None``: no parameter noise).
    :param param_noise_sampling: ``ParameterNoiseCallback`` sampling mode (``None``: no parameter noise).
    """

    action_noise: Optional[str]
    param_noise_stddev: Optional[float] = None
    param_noise_sampling: Optional[str] = None


def _check_action_noise_spec(part: str, spec: str) -> None:
    probe = part
    for placeholder in SPEC_PLACEHOLDERS:
        probe = probe.replace(placeholder, "1")
    try:
        make_action_noise(probe, action_dim=1, n_envs=1, seed=0)
    except ValueError as e:
        raise ValueError(f"exploration spec {spec!r}: invalid action-noise part {part!r}: {e}") from e


def parse_exploration_spec(spec: str) -> ExplorationSpec:
    """
    Parse a baselines-style exploration spec: comma-separated parts, at most one action noise and at most one
    parameter noise, e.g. ``"adaptive-param_0.2,normal_0.1"``, ``"pink_0.3"``, ``"adaptive-param-naive_0.2"``,
    ``"none"``.

    Action-noise parts are :func:`sb3_ddpg_ext.noise.make_action_noise` specs (``none``, ``normal_<s>``,
    ``normal_<s>_<final_s>_<decay_steps>``, ``ou_<s>``, ``ou-stationary_<s>``, ``pink_<s>``, ``colored_<beta>_<s>``);
    ``<decay_steps>`` may be the placeholder ``{total_timesteps}`` or ``{noise_steps}``. Parameter-noise parts are
    ``adaptive-param_<s>`` (per-element sampling, the paper's), ``adaptive-param-naive_<s>`` (one sample per
    parameter tensor) and ``adaptive-param-single_<s>`` (one sample for the whole actor); ``<s>`` is both the initial
    parameter std and the target action distance, as in baselines.

    :param spec: The spec string.
    :return: The parsed spec.
    :raises ValueError: naming the spec and the offending part.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"exploration spec must be a non-empty string, got spec={spec!r}")
    action_part: Optional[str] = None
    param: Optional[tuple[float, str]] = None
    for raw in spec.split(","):
        part = raw.strip().lower()
        if not part:
            raise ValueError(f"exploration spec {spec!r} has an empty part")
        kind, _, arg = part.rpartition("_")
        if kind in PARAM_NOISE_PREFIXES:
            if param is not None:
                raise ValueError(f"exploration spec {spec!r} has more than one parameter-noise part")
            try:
                stddev = float(arg)
            except ValueError:
                raise ValueError(f"exploration spec {spec!r}: parameter-noise std in {part!r} must be a number") from None
            if not (math.isfinite(stddev) and stddev > 0):
                raise ValueError(f"exploration spec {spec!r}: parameter-noise std in {part!r} must be > 0")
            param = (stddev, PARAM_NOISE_PREFIXES[kind])
        elif part.startswith("adaptive-param"):
            raise ValueError(
                f"exploration spec {spec!r}: unknown parameter-noise part {part!r}; "
                f"expected one of {[p + '_<stddev>' for p in PARAM_NOISE_PREFIXES]}"
            )
        else:
            if action_part is not None:
                raise ValueError(f"exploration spec {spec!r} has more than one action-noise part")
            _check_action_noise_spec(part, spec)
            action_part = part
    if param is None:
        return ExplorationSpec(action_noise=action_part)
    return ExplorationSpec(action_noise=action_part, param_noise_stddev=param[0], param_noise_sampling=param[1])


class ExplorationCallback(BaseCallback):
    """
    Exploration of a DDPG / TD3 model from one baselines-style spec string, usable as an rl-zoo3 ``callback:`` entry
    (so it works with plain ``python -m rl_zoo3.train --algo ddpg`` and with ``--algo ddpg_ext``)::

        callback:
          - sb3_ddpg_ext.zoo.ExplorationCallback:
              spec: "adaptive-param_0.2,normal_0.1"

    At the start of training it sets ``model.action_noise`` to ``make_action_noise(<action part>, action_dim,
    n_envs, seed)`` (one independent stream per env when ``n_envs > 1``), and when the spec has a parameter-noise part
    it runs a :class:`sb3_ddpg_ext.callbacks.ParameterNoiseCallback` (forwarding every callback event to it).
    The spec fully defines exploration: if the model already has an action noise that this callback did not set
    (e.g. from the zoo's ``noise_type``), a ``ValueError`` is raised unless ``override=True``, in which case it is
    replaced (by ``None`` for a spec without action noise). On a later ``learn()`` the noise this callback set is
    kept as it is (its decay schedule goes on). The spec is recorded as ``model.exploration_spec`` (saved with the
    model), so after ``save()`` / ``load()`` a callback with the same spec adopts the loaded noise, state included
    (continuing training, e.g. the zoo's ``-i``, needs no ``override``); ``override=True`` rebuilds it instead.

    Placeholders in the action-noise part, replaced when training starts: ``{total_timesteps}`` (the ``learn()``
    budget, ``-n`` included) and ``{noise_steps}`` (the number of noise draws per env in that ``learn()`` call:
    ``ceil((total_timesteps - num_timesteps) / n_envs)``; SB3 draws the noise at every step, the uniform-random
    warm-up steps before ``learning_starts`` included), e.g. ``normal_0.2_0.0_{noise_steps}`` decays sigma
    linearly to 0 over the run.

    :param spec: The exploration spec, see :func:`parse_exploration_spec`.
    :param seq_len: Sequence length of coloured / pink noise; ``None`` for the training env's time limit
        (``max_episode_steps``), or 1000 when it has none.
    :param seed: Seed of the noise; ``None`` derives one from the model's seed (the zoo's ``--seed``), so the run
        is reproducible. Action noise and parameter noise get independent streams.
    :param override: Replace an action noise the model already has instead of raising.
    :param param_noise_kwargs: Extra keyword arguments of ``ParameterNoiseCallback`` (``adoption_coefficient``,
        ``adaptation_interval``, ``desired_action_stddev`` to differ from the initial std, ...).
    :param verbose: Verbosity (1: print what was set up).
    """

    def __init__(
        self,
        spec: str,
        seq_len: Optional[int] = None,
        seed: Optional[int] = None,
        override: bool = False,
        param_noise_kwargs: Optional[dict[str, Any]] = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose=verbose)
        self.spec = spec
        self.parsed = parse_exploration_spec(spec)
        if seq_len is not None and (not isinstance(seq_len, (int, np.integer)) or isinstance(seq_len, bool) or seq_len < 2):
            raise ValueError(f"seq_len must be an integer >= 2 or None, got seq_len={seq_len!r}")
        if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)):
            raise ValueError(f"seed must be an integer or None, got seed={seed!r}")
        self.seq_len = seq_len
        self.seed = seed
        self.override = bool(override)
        self.param_noise_kwargs = dict(param_noise_kwargs or {})
        if self.param_noise_kwargs and self.parsed.param_noise_stddev is None:
            raise ValueError(f"param_noise_kwargs given but exploration spec {spec!r} has no parameter-noise part")
        #: The action noise this callback set (``None`` before training starts or for a spec without one).
        self.action_noise: Optional[ActionNoise] = None
        #: The resolved action-noise spec string (placeholders replaced), set at training start.
        self.action_noise_spec: Optional[str] = None
        self.param_noise_callback: Optional[ParameterNoiseCallback] = None
        if self.parsed.param_noise_stddev is not None:
            from sb3_ddpg_ext.callbacks import ParameterNoiseCallback

            kwargs: dict[str, Any] = {
                "initial_stddev": self.parsed.param_noise_stddev,
                "desired_action_stddev": self.parsed.param_noise_stddev,
                "sampling": self.parsed.param_noise_sampling,
                "verbose": verbose,
            }
            kwargs.update(self.param_noise_kwargs)
            # seed None: ParameterNoiseCallback derives its own stream from model.seed.
            kwargs.setdefault("seed", derive_seed(seed, 1))
            self.param_noise_callback = ParameterNoiseCallback(**kwargs)

    # -------------------------------------------------------------- helpers
    def _run_seed(self) -> Optional[int]:
        seed = self.seed if self.seed is not None else getattr(self.model, "seed", None)
        return None if seed is None else int(seed)

    def _episode_length(self) -> int:
        if self.seq_len is not None:
            return int(self.seq_len)
        env = self.model.get_env()
        if env is not None:
            try:
                env_spec = env.get_attr("spec", indices=[0])[0]
            except AttributeError:
                env_spec = None
            max_steps = getattr(env_spec, "max_episode_steps", None)
            if max_steps is not None and int(max_steps) >= 2:
                return int(max_steps)
        return 1000

    def _resolve_placeholders(self, part: str) -> str:
        model = self.model
        total = int(self.locals.get("total_timesteps", 0)) if self.locals else 0
        # SB3 2.9 draws the noise at every step, warm-up (learning_starts) included (OffPolicyAlgorithm._sample_action).
        noise_steps = max(1, math.ceil((total - int(model.num_timesteps)) / max(1, model.n_envs)))
        return part.replace("{total_timesteps}", str(max(1, total))).replace("{noise_steps}", str(noise_steps))

    # -------------------------------------------------------------- callback events
    def _init_callback(self) -> None:
        if not isinstance(self.model, OffPolicyAlgorithm):
            raise ValueError(f"ExplorationCallback needs an off-policy model (DDPG/TD3), got {type(self.model).__name__}")
        if not isinstance(self.model.action_space, spaces.Box):
            raise ValueError(f"ExplorationCallback needs a Box action space, got {self.model.action_space}")
        if self.param_noise_callback is not None:
            self.param_noise_callback.init_callback(self.model)

    def _on_training_start(self) -> None:
        model = self.model
        assert isinstance(model, OffPolicyAlgorithm)
        current = model.action_noise
        if current is not None and self.action_noise is not None and current is self.action_noise:
            pass  # a later learn(): keep our noise and its schedule position
        elif current is not None and getattr(model, EXPLORATION_SPEC_ATTR, None) == self.spec and not self.override:
            # Set by an ExplorationCallback with the same spec, then saved and loaded with the model (e.g. the
            # zoo's -i): adopt it, keeping its state (decay position, OU / pink state).
            self.action_noise = current
            if self.verbose >= 1:
                print(f"ExplorationCallback: keeping the model's action_noise={current!r}, spec={self.spec!r}")
        else:
            if current is not None and not self.override:
                raise ValueError(
                    f"ExplorationCallback(spec={self.spec!r}): the model already has action_noise={current!r} "
                    "(e.g. from the zoo's noise_type/noise_std); remove it (set noise_type and noise_std to null) "
                    "or pass override=True"
                )
            self.action_noise = None
            self.action_noise_spec = None
            if self.parsed.action_noise is not None:
                self.action_noise_spec = self._resolve_placeholders(self.parsed.action_noise)
                assert model.action_space.shape is not None
                action_dim = int(np.prod(model.action_space.shape))
                self.action_noise = make_action_noise(
                    self.action_noise_spec,
                    action_dim,
                    n_envs=model.n_envs,
                    seed=derive_seed(self._run_seed(), 0),
                    seq_len=self._episode_length(),
                )
            model.action_noise = self.action_noise
            # A plain attribute, saved with the model: a loaded model's noise is then known to be ours.
            setattr(model, EXPLORATION_SPEC_ATTR, self.spec)
            if self.verbose >= 1:
                print(f"ExplorationCallback: action_noise={self.action_noise!r}, spec={self.spec!r}")
        if self.param_noise_callback is not None:
            self.param_noise_callback.on_training_start(self.locals, self.globals)

    def _on_rollout_start(self) -> None:
        if self.param_noise_callback is not None:
            self.param_noise_callback.on_rollout_start()

    def _on_step(self) -> bool:
        if self.param_noise_callback is not None:
            return self.param_noise_callback.on_step()
        return True

    def _on_rollout_end(self) -> None:
        if self.param_noise_callback is not None:
            self.param_noise_callback.on_rollout_end()

    def _on_training_end(self) -> None:
        if self.param_noise_callback is not None:
            self.param_noise_callback.on_training_end()

    def update_child_locals(self, locals_: dict[str, Any]) -> None:
        if self.param_noise_callback is not None:
            self.param_noise_callback.update_locals(locals_)


class ActionNoiseCallback(ExplorationCallback):
    """
    :class:`ExplorationCallback` restricted to action noise (a :func:`sb3_ddpg_ext.noise.make_action_noise` spec)::

        callback:
          - sb3_ddpg_ext.zoo.ActionNoiseCallback: {spec: pink_0.3, seq_len: 1000}

    :param spec: The action-noise spec.
    :param seq_len: See :class:`ExplorationCallback`.
    :param seed: See :class:`ExplorationCallback`.
    :param override: See :class:`ExplorationCallback`.
    :param verbose: Verbosity.
    """

    def __init__(
        self, spec: str, seq_len: Optional[int] = None, seed: Optional[int] = None, override: bool = False, verbose: int = 0
    ) -> None:
        if parse_exploration_spec(spec).param_noise_stddev is not None:
            raise ValueError(
                f"ActionNoiseCallback takes an action-noise spec only, got spec={spec!r}; use ExplorationCallback"
            )
        super().__init__(spec, seq_len=seq_len, seed=seed, override=override, verbose=verbose)


# ------------------------------------------------------------------------------------------------ rl-zoo3 registration
def register_zoo() -> None:
    """
    Register ``ddpg_ext`` (:class:`sb3_ddpg_ext.ddpg.DDPG`) in rl-zoo3's ``ALGOS`` table and its Optuna sampler /
    converter in ``HYPERPARAMS_SAMPLER`` / ``HYPERPARAMS_CONVERTER`` (idempotent). The zoo's train, enjoy and record
    scripts all read these tables, so call this before running them in-process.
    """
    from rl_zoo3 import hyperparams_opt, utils

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
    from rl_zoo3.utils import ALGOS

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
    import rl_zoo3.train

    register_zoo()
    rl_zoo3.train.ExperimentManager = _experiment_manager_class()  # type: ignore[misc]


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
    import rl_zoo3.train

    _prepare_zoo()
    args = _with_default_conf(list(sys.argv[1:] if argv is None else argv))
    _run_with_argv("sb3_ddpg_ext.train", args, rl_zoo3.train.train)


def enjoy(argv: Optional[list[str]] = None) -> None:
    """
    ``python -m sb3_ddpg_ext.enjoy``: rl-zoo3's enjoy with every flag unchanged, after :func:`register_zoo`.

    :param argv: Arguments (without the program name); ``None`` for ``sys.argv[1:]``.
    """
    import rl_zoo3.enjoy

    register_zoo()
    _run_with_argv("sb3_ddpg_ext.enjoy", argv, rl_zoo3.enjoy.enjoy)


def _run_zoo_script(module: str, argv: Optional[list[str]]) -> None:
    import runpy

    register_zoo()
    _run_with_argv(module, argv, lambda: runpy.run_module(module, run_name="__main__", alter_sys=False))


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
