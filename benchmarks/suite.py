"""Benchmark suites: load and validate a suite YAML, expand it into a grid of runs.

A suite file (``benchmarks/suites/<name>.yml``) looks like::

    description: one line shown by `python -m benchmarks list`
    hyperparams_file: hyperparams/ddpg.yml      # baseline, env-keyed zoo YAML (required)
    variants_file: hyperparams/variants.yml     # named variants (default: this one)
    tasks:                                      # list of env ids, or env id -> per-task settings
      Pendulum-v1: {n_timesteps: 5000}
      HalfCheetah-v5:                           # null: suite-level settings
    variants: [baseline, noise_pink_0.3]        # "baseline" = the env's entry unchanged
    algo: ddpg_ext                              # optional: zoo algo of EVERY run (default: each variant's own)
    seeds: 3                                    # an int n (seeds 0..n-1) or an explicit list
    n_timesteps: 1000000                        # budget; default: the task's n_timesteps in hyperparams_file
    eval_freq: 5000                             # evaluation every eval_freq env steps (zoo --eval-freq)
    eval_episodes: 10                           # episodes per evaluation (zoo --eval-episodes)
    threads: 1                                  # torch / OpenMP / MKL threads per run
    overrides: {learning_starts: 1000}          # zoo keys applied to the baseline entry BEFORE the variant
    divergence_check_freq: 1000                 # DivergenceGuardCallback check interval (env steps)

Per-task settings may set ``n_timesteps``, ``eval_freq``, ``eval_episodes`` and ``overrides`` (merged after the
suite's). Overrides follow :func:`sb3_ddpg_ext.variants.merge_hyperparams` (null removes a key, ``policy_kwargs``
mappings merge key by key, ``callback`` lists append) and are applied to the baseline entry before the variant's
own overrides, so a variant that sets the same key (e.g. ``ls_0`` sets ``learning_starts``) keeps its value.

``algo`` (optional, one of :data:`sb3_ddpg_ext.variants.VARIANT_ALGOS`: ``ddpg`` or ``ddpg_ext``) runs every variant,
the baseline included, with that zoo algorithm instead of the variant's own ``algo`` (the baseline's is ``ddpg``), so
that all variants of a study use the same class; without it each variant keeps its own.

Runs are ordered seed-major (:func:`expand_grid`): every (task, variant) cell of one seed before any cell of the next
seed, so the finished runs of a partially executed grid are a balanced design.

Relative paths are resolved against the suite file's folder first, then the working root (:func:`work_root`), then the
folder holding the shipped ``hyperparams/`` (so the shipped suites' ``hyperparams/ddpg.yml`` works from a wheel too).

Checked when the suite loads (errors name the file and the key): a key given twice in one mapping (plain YAML keeps
the last value silently), unknown keys, types, an unknown ``algo``, task or variant, and zoo keys in ``overrides``
(suite-level and per task) and in every run's merged entry that the run's zoo algorithm does not take
(:func:`sb3_ddpg_ext.zoo.check_zoo_keys`; skipped where rl-zoo3 is not installed).
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import importlib.util
import os
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from sb3_ddpg_ext import run_folder

__all__ = [
    "BULLET_PACKAGE",
    "SOURCE_ROOT",
    "SUITES_DIR",
    "Cell",
    "DuplicateKeyError",
    "RunSpec",
    "Suite",
    "TaskSettings",
    "UniqueKeyLoader",
    "describe_suite",
    "expand_grid",
    "list_suites",
    "load_suite",
    "resolve_cell",
    "resolve_suite_path",
    "work_root",
]

_PACKAGE_DIR = Path(__file__).resolve().parent
#: Folder of the shipped suite files (``benchmarks/suites`` in the repository, package data in a wheel).
SUITES_DIR = _PACKAGE_DIR / "suites"
#: The repository root when this package runs from a source checkout (the folder holding ``setup.cfg``,
#: ``sb3_ddpg_ext/`` and ``benchmarks/``, also under ``pip install -e``); ``None`` when installed from a wheel.
SOURCE_ROOT: Optional[Path] = (
    _PACKAGE_DIR.parent
    if (_PACKAGE_DIR.parent / "setup.cfg").is_file() and (_PACKAGE_DIR.parent / "sb3_ddpg_ext").is_dir()
    else None
)


def work_root() -> Path:
    """
    The working root of runs: train subprocesses run in it and paths in ``command.txt``, ``hyperparams.yml`` and
    ``run.json`` are relative to it (when the run folder lies inside).

    :return: :data:`SOURCE_ROOT` in a source checkout (so ``command.txt`` re-runs from the repository root), else the
        current working folder (an installed wheel: commands re-run from the folder the runner was started in)
    """
    return SOURCE_ROOT if SOURCE_ROOT is not None else Path.cwd()
#: Gym package imported for PyBullet tasks (``--gym-packages``).
BULLET_PACKAGE = "pybullet_envs_gymnasium"
#: Divergence guard class path used in the zoo ``callback`` hyperparameter.
DIVERGENCE_CALLBACK = "sb3_ddpg_ext.divergence.DivergenceGuardCallback"

_SUITE_KEYS = {
    "description": str,
    "algo": str,
    "hyperparams_file": str,
    "variants_file": str,
    "tasks": (list, dict),
    "variants": list,
    "seeds": (int, list),
    "n_timesteps": (int, float),
    "eval_freq": int,
    "eval_episodes": int,
    "threads": int,
    "overrides": dict,
    "divergence_check_freq": int,
    "train_module": str,
    "gym_packages": list,
    "extra_args": list,
}
_REQUIRED_KEYS = ("hyperparams_file", "tasks", "variants", "seeds")
_TASK_KEYS = {"n_timesteps": (int, float), "eval_freq": int, "eval_episodes": int, "overrides": dict}


@dataclasses.dataclass(frozen=True)
class TaskSettings:
    """Per-task settings of a suite (after defaults are applied); ``overrides`` are the task's own (zoo keys)."""

    env_id: str
    n_timesteps: int
    eval_freq: int
    eval_episodes: int
    overrides: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Cell:
    """
    One (task, variant) of a suite, resolved once when the suite loads (every seed of the cell runs it).

    :param task: the task's settings
    :param variant: variant name (``"baseline"``: the baseline entry unchanged)
    :param factor: ablation factor of the variant (``"baseline"`` for the baseline)
    :param algo: zoo algorithm of the runs (the suite's ``algo`` if set, else the variant's own, ``ddpg`` for the
        baseline)
    :param hyperparams: the baseline entry + suite overrides + task overrides, then the variant's overrides, with
        the task's ``n_timesteps``
    """

    task: TaskSettings
    variant: str
    factor: str
    algo: str
    hyperparams: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Suite:
    """
    A validated suite: what to run.

    :param name: suite name (file stem), the first folder level under the output folder
    :param path: the suite file
    :param description: one line
    :param hyperparams_file: baseline zoo YAML (absolute)
    :param variants_file: variants YAML (absolute)
    :param tasks: per-task settings, in file order
    :param variants: variant names, in file order
    :param seeds: seeds, in file order
    :param threads: threads per run
    :param overrides: zoo keys applied to every baseline entry before the variant
    :param divergence_check_freq: check interval of the divergence guard
    :param train_module: module run with ``python -m`` (default ``sb3_ddpg_ext.train``)
    :param gym_packages: extra ``--gym-packages`` (Bullet tasks get ``pybullet_envs_gymnasium`` automatically)
    :param extra_args: extra arguments appended to every train command
    :param algo: zoo algorithm of every run (``None``: each variant's own ``algo``, ``ddpg`` for the baseline)
    :param cells: every (task, variant), task-major in file order (:func:`resolve_cells`)
    """

    name: str
    path: Path
    description: str
    hyperparams_file: Path
    variants_file: Path
    tasks: tuple[TaskSettings, ...]
    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    threads: int = 1
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    divergence_check_freq: int = 1000
    train_module: str = "sb3_ddpg_ext.train"
    gym_packages: tuple[str, ...] = ()
    extra_args: tuple[str, ...] = ()
    algo: Optional[str] = None
    cells: tuple[Cell, ...] = ()

    @property
    def n_runs(self) -> int:
        """Number of runs of the grid (tasks x variants x seeds)."""
        return len(self.tasks) * len(self.variants) * len(self.seeds)


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """
    One run of a grid: everything needed to execute it anywhere (picklable, for Ray and submitit).

    :param suite: suite name
    :param task: env id
    :param variant: variant name
    :param factor: ablation factor of the variant (``"baseline"`` for the baseline)
    :param seed: seed
    :param algo: zoo algorithm name (``ddpg`` or ``ddpg_ext``)
    :param hyperparams: merged zoo hyperparameters (written to ``hyperparams.yml`` as ``{task: hyperparams}``),
        without the divergence guard (added when the run folder is known)
    :param n_timesteps: budget
    :param eval_freq: evaluation interval (env steps)
    :param eval_episodes: episodes per evaluation
    :param threads: threads of the run
    :param divergence_check_freq: check interval of the divergence guard
    :param train_module: module run with ``python -m``
    :param gym_packages: ``--gym-packages`` of the command
    :param extra_args: extra command arguments
    """

    suite: str
    task: str
    variant: str
    factor: str
    seed: int
    algo: str
    hyperparams: dict[str, Any]
    n_timesteps: int
    eval_freq: int
    eval_episodes: int
    threads: int = 1
    divergence_check_freq: int = 1000
    train_module: str = "sb3_ddpg_ext.train"
    gym_packages: tuple[str, ...] = ()
    extra_args: tuple[str, ...] = ()

    @classmethod
    def from_cell(cls, suite: Suite, cell: Cell, seed: int) -> RunSpec:
        """
        The run of ``cell`` with ``seed``: the only place where suite and task settings become a run's.

        :param suite: the loaded suite holding ``cell``
        :param cell: one of ``suite.cells``
        :param seed: the run's seed
        :return: the run (its hyperparameters a copy of the cell's)
        """
        task = cell.task
        return cls(
            suite=suite.name,
            task=task.env_id,
            variant=cell.variant,
            factor=cell.factor,
            seed=seed,
            algo=cell.algo,
            hyperparams=copy.deepcopy(cell.hyperparams),
            n_timesteps=task.n_timesteps,
            eval_freq=task.eval_freq,
            eval_episodes=task.eval_episodes,
            threads=suite.threads,
            divergence_check_freq=suite.divergence_check_freq,
            train_module=suite.train_module,
            gym_packages=_task_gym_packages(task.env_id, suite.gym_packages),
            extra_args=suite.extra_args,
        )

    @property
    def key(self) -> str:
        """``<suite>/<task>/<variant>/seed_<seed>``, the run folder relative to the output folder."""
        return "/".join(run_folder.run_dir_parts(self.suite, self.task, self.variant, self.seed))

    def identity(self) -> dict[str, Any]:
        """The fields that identify the run in its ``run.json`` (written by the runner and by a failed backend)."""
        return {
            "suite": self.suite,
            "task": self.task,
            "variant": self.variant,
            "factor": self.factor,
            "seed": self.seed,
            "algo": self.algo,
            "n_timesteps": self.n_timesteps,
        }

    def run_dir(self, out: Union[str, os.PathLike]) -> Path:
        """
        The run folder ``<out>/<suite>/<task>/<variant>/seed_<seed>``, absolute.

        Made absolute with :func:`os.path.abspath`, not :meth:`pathlib.Path.resolve`: symbolic links are kept, so a
        ``results`` symlink inside the repository stays a path inside the repository (see
        :func:`benchmarks.runner.command_path`). The layout is :func:`sb3_ddpg_ext.run_folder.run_dir`'s.
        """
        return run_folder.run_dir(os.path.abspath(out), self.suite, self.task, self.variant, self.seed)


# ---------------------------------------------------------------------------------------------- helpers
class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A key given twice in one YAML mapping (raised by :class:`UniqueKeyLoader`)."""

    def __init__(self, key: Any, line: int, first_line: int, mark: Any) -> None:
        super().__init__(None, None, f"key {key!r} given twice in a mapping (lines {first_line} and {line})", mark)
        self.key = key
        self.line = line
        self.first_line = first_line


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects a key given twice in one mapping (merge keys ``<<:`` may still override)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # unhashable key: the base class reports it
                continue
            line = key_node.start_mark.line + 1
            if first is not None:
                raise DuplicateKeyError(key, line, first, key_node.start_mark)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def list_suites() -> list[Path]:
    """The shipped suite files, sorted by name."""
    return sorted(SUITES_DIR.glob("*.yml"))


def resolve_suite_path(suite: Union[str, os.PathLike]) -> Path:
    """
    Path of a suite given by name (``smoke``: ``benchmarks/suites/smoke.yml``) or by path.

    :raises ValueError: if neither exists
    """
    as_path = Path(suite)
    if as_path.is_file():
        return as_path.resolve()
    shipped = SUITES_DIR / f"{suite}.yml"
    if shipped.is_file():
        return shipped
    names = [p.stem for p in list_suites()]
    raise ValueError(f"suite {str(suite)!r} is neither a file nor a shipped suite; shipped suites: {names}")


def _resolve_file(value: str, suite_path: Path, key: str) -> Path:
    path = Path(value).expanduser()
    from sb3_ddpg_ext.variants import HYPERPARAMS_DIR

    roots = [suite_path.parent, work_root(), HYPERPARAMS_DIR.parent]
    candidates = [path] if path.is_absolute() else list(dict.fromkeys(root / path for root in roots))
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise ValueError(f"{suite_path}: key {key!r}: file {value!r} not found (looked at {[str(c) for c in candidates]})")


def _check_type(value: Any, expected: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, expected):
        names = expected.__name__ if isinstance(expected, type) else " or ".join(t.__name__ for t in expected)
        raise ValueError(f"{where} must be of type {names}, got {type(value).__name__}: {value!r}")


def _positive_int(value: Any, where: str, minimum: int = 1) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{where} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_env_registered(env_id: str, gym_packages: tuple[str, ...], where: str) -> None:
    """Raise if ``env_id`` is not registered in gymnasium (skipped when a gym package is not installed here)."""
    import gymnasium as gym

    for package in gym_packages:
        try:
            importlib.import_module(package)
        except ImportError:
            return  # cannot check here (e.g. a cluster-only package); the run will tell
    if env_id not in gym.envs.registry:
        raise ValueError(f"{where}: env {env_id!r} is not registered in gymnasium (gym packages: {list(gym_packages)})")


def _task_gym_packages(env_id: str, suite_packages: tuple[str, ...]) -> tuple[str, ...]:
    packages = list(suite_packages)
    if "Bullet" in env_id and BULLET_PACKAGE not in packages:
        packages.append(BULLET_PACKAGE)
    return tuple(packages)


# ----------------------------------------------------------------------------------------------- loading
def load_suite(suite: Union[str, os.PathLike], check_envs: bool = True) -> Suite:
    """
    Load and validate a suite file.

    Every (task, variant) pair is resolved once, here (:func:`resolve_cell`; the suite's ``cells``), so an unknown
    task (not in the baseline hyperparameter file) or variant is reported at load time and :func:`expand_grid`
    runs what was checked. The suite file is read with :class:`UniqueKeyLoader` (a key given twice is an error), the
    baseline and variants files with :func:`sb3_ddpg_ext.variants.load_yaml_mapping`.

    :param suite: shipped suite name or path of a suite YAML
    :param check_envs: also check that every task is a registered gymnasium env id
    :return: the suite
    :raises ValueError: naming the file and key on any problem
    """
    from sb3_ddpg_ext.variants import VARIANT_ALGOS, load_variants, load_yaml_mapping

    path = resolve_suite_path(suite)
    try:
        with open(path) as f:
            data = yaml.load(f, Loader=UniqueKeyLoader)
    except DuplicateKeyError as e:
        raise ValueError(
            f"{path}: key {e.key!r} is given twice in one mapping (lines {e.first_line} and {e.line}); "
            "YAML would keep the last value silently"
        ) from e
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a suite must be a mapping at top level, got {type(data).__name__}")
    for key, value in data.items():
        if key not in _SUITE_KEYS:
            raise ValueError(f"{path}: unknown key {key!r}; allowed keys: {sorted(_SUITE_KEYS)}")
        _check_type(value, _SUITE_KEYS[key], f"{path}: key {key!r}")
    for key in _REQUIRED_KEYS:
        if key not in data:
            raise ValueError(f"{path}: missing required key {key!r}")

    algo = data.get("algo")
    if algo is not None and algo not in VARIANT_ALGOS:
        raise ValueError(f"{path}: key 'algo': unknown zoo algorithm {algo!r}; allowed: {list(VARIANT_ALGOS)}")
    hyperparams_file = _resolve_file(data["hyperparams_file"], path, "hyperparams_file")
    variants_file = _resolve_file(data.get("variants_file", "hyperparams/variants.yml"), path, "variants_file")
    try:
        variants_meta = load_variants(variants_file)
        baselines = load_yaml_mapping(hyperparams_file)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from e

    # seeds
    seeds_value = data["seeds"]
    if isinstance(seeds_value, int):
        seeds = tuple(range(_positive_int(seeds_value, f"{path}: key 'seeds'")))
    else:
        seeds = tuple(_positive_int(s, f"{path}: key 'seeds' entry", minimum=0) for s in seeds_value)
        if not seeds:
            raise ValueError(f"{path}: key 'seeds' must not be empty")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{path}: key 'seeds' has duplicates: {list(seeds)}")

    # variants
    variants = tuple(data["variants"])
    if not variants:
        raise ValueError(f"{path}: key 'variants' must not be empty")
    for variant in variants:
        if not isinstance(variant, str):
            raise ValueError(f"{path}: key 'variants': entries must be variant names, got {variant!r}")
        if variant != "baseline" and variant not in variants_meta:
            raise ValueError(
                f"{path}: key 'variants': unknown variant {variant!r} (not in {variants_file}); "
                f"known: {['baseline', *sorted(variants_meta)]}"
            )
    if len(set(variants)) != len(variants):
        raise ValueError(f"{path}: key 'variants' has duplicates: {list(variants)}")

    threads = _positive_int(data.get("threads", 1), f"{path}: key 'threads'")
    divergence_check_freq = _positive_int(data.get("divergence_check_freq", 1000), f"{path}: key 'divergence_check_freq'")
    suite_packages = tuple(str(p) for p in data.get("gym_packages", []))
    suite_overrides = data.get("overrides", {}) or {}

    # tasks
    raw_tasks = data["tasks"]
    task_items: list[tuple[Any, Any]] = (
        [(t, None) for t in raw_tasks] if isinstance(raw_tasks, list) else list(raw_tasks.items())
    )
    if not task_items:
        raise ValueError(f"{path}: key 'tasks' must not be empty")
    tasks = []
    seen: set[str] = set()
    for env_id, settings in task_items:
        where = f"{path}: key 'tasks'"
        if not isinstance(env_id, str):
            raise ValueError(f"{where}: task names must be env ids (strings), got {env_id!r}")
        if env_id in seen:
            raise ValueError(f"{where}: duplicate task {env_id!r}")
        seen.add(env_id)
        where = f"{path}: key 'tasks.{env_id}'"
        settings = {} if settings is None else settings
        if not isinstance(settings, dict):
            raise ValueError(f"{where} must be a mapping of per-task settings or null, got {settings!r}")
        for key, value in settings.items():
            if key not in _TASK_KEYS:
                raise ValueError(f"{where}: unknown key {key!r}; allowed keys: {sorted(_TASK_KEYS)}")
            _check_type(value, _TASK_KEYS[key], f"{where}.{key}")
        if env_id not in baselines:
            raise ValueError(
                f"{where}: task {env_id!r} is not in the baseline hyperparameter file {hyperparams_file} "
                f"(known: {sorted(baselines)})"
            )
        if not isinstance(baselines[env_id], dict):
            raise ValueError(
                f"{where}: the entry of {env_id!r} in {hyperparams_file} must be a mapping, "
                f"got {type(baselines[env_id]).__name__}"
            )
        if check_envs:
            _check_env_registered(env_id, _task_gym_packages(env_id, suite_packages), where)
        budget = settings.get("n_timesteps", data.get("n_timesteps", baselines[env_id].get("n_timesteps")))
        if budget is None:
            raise ValueError(f"{where}: no n_timesteps (not in the task, the suite, nor {hyperparams_file})")
        budget = _positive_int(budget, f"{where}.n_timesteps")
        eval_freq = _positive_int(settings.get("eval_freq", data.get("eval_freq", 10000)), f"{where}.eval_freq")
        if eval_freq > budget:
            raise ValueError(f"{where}: eval_freq {eval_freq} > n_timesteps {budget}: the run would never be evaluated")
        eval_episodes = _positive_int(settings.get("eval_episodes", data.get("eval_episodes", 10)), f"{where}.eval_episodes")
        task_overrides = copy.deepcopy(settings.get("overrides", {}) or {})
        tasks.append(TaskSettings(env_id, budget, eval_freq, eval_episodes, task_overrides))

    cells = tuple(
        resolve_cell(baselines[task.env_id], suite_overrides, task, variant, variants_meta, algo)
        for task in tasks
        for variant in variants
    )
    suite_obj = Suite(
        name=path.stem,
        path=path,
        description=str(data.get("description", "")),
        hyperparams_file=hyperparams_file,
        variants_file=variants_file,
        tasks=tuple(tasks),
        variants=variants,
        seeds=seeds,
        threads=threads,
        overrides=copy.deepcopy(suite_overrides),
        divergence_check_freq=divergence_check_freq,
        train_module=str(data.get("train_module", "sb3_ddpg_ext.train")),
        gym_packages=suite_packages,
        extra_args=tuple(str(a) for a in data.get("extra_args", [])),
        algo=algo,
        cells=cells,
    )
    _check_zoo_keys(suite_obj)
    return suite_obj


def resolve_cell(
    base: dict[str, Any],
    suite_overrides: dict[str, Any],
    task: TaskSettings,
    variant: str,
    variants_meta: dict[str, dict[str, Any]],
    algo: Optional[str] = None,
) -> Cell:
    """
    One (task, variant) of a suite: baseline entry + suite overrides + task overrides, then the variant's overrides
    (all merged with :func:`sb3_ddpg_ext.variants.merge_hyperparams`), and the task's budget as ``n_timesteps``.

    :param base: the task's entry of the baseline hyperparameter file (not modified)
    :param suite_overrides: the suite's ``overrides``
    :param task: the task's settings (its ``overrides`` and ``n_timesteps`` are applied)
    :param variant: a variant of ``variants_meta`` or ``"baseline"``
    :param variants_meta: the variants file, as :func:`sb3_ddpg_ext.variants.load_variants` returns it
    :param algo: the suite's ``algo`` (``None``: the variant's own, ``ddpg`` for the baseline)
    :return: the cell
    """
    from sb3_ddpg_ext.variants import BASELINE, merge_hyperparams

    hyperparams = merge_hyperparams(merge_hyperparams(base, suite_overrides), task.overrides)
    own_algo, factor = "ddpg", BASELINE
    if variant != BASELINE:
        meta = variants_meta[variant]
        hyperparams = merge_hyperparams(hyperparams, meta["hyperparams"])
        own_algo, factor = str(meta["algo"]), str(meta["factor"])
    hyperparams["n_timesteps"] = task.n_timesteps
    return Cell(task=task, variant=variant, factor=factor, algo=algo or own_algo, hyperparams=hyperparams)


def _check_zoo_keys(suite: Suite) -> None:
    """
    Check the zoo keys of a suite's ``overrides`` (suite-level, per task) and of every cell's merged entry against the
    cell's zoo algorithm (:func:`sb3_ddpg_ext.zoo.check_zoo_keys`); skipped if rl-zoo3 is not installed here.

    :raises ValueError: naming the suite file and the key
    """
    from sb3_ddpg_ext.zoo import check_zoo_keys

    if importlib.util.find_spec("rl_zoo3") is None:
        return
    algos: dict[str, list[str]] = {}
    for cell in suite.cells[: len(suite.variants)]:  # the algo depends on the variant only
        algos.setdefault(cell.algo, []).append(cell.variant)

    def check(overrides: dict[str, Any], where: str) -> None:
        # Overrides are partial entries: a null removes a key (always allowed); n_timesteps comes from the suite.
        keys = {k: v for k, v in overrides.items() if v is not None}
        for algo, names in algos.items():
            check_zoo_keys({**keys, "n_timesteps": 1}, algo, f"{where} (variants {names})")

    check(suite.overrides, f"{suite.path}: key 'overrides'")
    for task in suite.tasks:
        check(task.overrides, f"{suite.path}: key 'tasks.{task.env_id}.overrides'")
    for cell in suite.cells:
        origin = f"key 'algo' {cell.algo!r}" if suite.algo else f"zoo algo {cell.algo!r}"
        where = f"{suite.path}: key 'tasks.{cell.task.env_id}': variant {cell.variant!r} ({origin}): merged entry"
        check_zoo_keys(cell.hyperparams, cell.algo, where)


def expand_grid(suite: Suite) -> list[RunSpec]:
    """
    All runs of a suite, seed-major (every task and variant of seed 0 first, so a partial grid is balanced).

    :param suite: a loaded suite
    :return: one :class:`RunSpec` per (seed, task, variant), built by :meth:`RunSpec.from_cell`
    """
    return [RunSpec.from_cell(suite, cell, seed) for seed in suite.seeds for cell in suite.cells]


def describe_suite(suite: Suite) -> str:
    """One line: ``name: n tasks x n variants x n seeds = N runs -- description``."""
    return (
        f"{suite.name}: {len(suite.tasks)} tasks x {len(suite.variants)} variants x {len(suite.seeds)} seeds "
        f"= {suite.n_runs} runs -- {suite.description}"
    )
