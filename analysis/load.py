"""Loaders: zoo log folders, benchmark-runner run folders and per-seed curve arrays -> tidy tables.

Three layouts are understood (and may be mixed under one root):

* rl-zoo3 log folder ``<algo>/<env_id>_<N>/`` with ``evaluations.npz`` (EvalCallback), ``*.monitor.csv``
  (SB3 ``Monitor``), ``<env_id>/config.yml`` and ``<env_id>/args.yml``;
* a benchmark-runner run folder ``<out>/<suite>/<task>/<variant>/seed_<s>/`` holding ``run.json`` and the
  zoo log folder under ``logs/``;
* per-seed curve arrays ``[<algo>_]<task>_<seed>.npy`` (1-D, one evaluation every ``step`` steps from
  ``start``) or ``.csv`` (one column of returns, or two columns ``timesteps, return``), e.g. the TD3 paper's
  ``TD3_HalfCheetah-v1_3.npy``.

Nothing is dropped silently: every run that is found ends up either in the tables or in the
:class:`Inventory` with the reason why it was excluded, and every oddity that was handled (empty monitor
file, missing config, unsorted timesteps...) is recorded there as a warning.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import pandas as pd
import yaml

from sb3_ddpg_ext.run_folder import (
    COMMAND_FILE,
    EVALUATIONS_FILE,
    FINISHED_STATUSES,
    HYPERPARAMS_FILE,
    LOGS_DIR,
    RUN_JSON,
    load_run_json,
    parse_run_dir,
    read_evaluations,
)

PathLike = Union[str, "os.PathLike[str]"]

EVAL_COLUMNS = [
    "task",
    "variant",
    "seed",
    "run",
    "source",
    "algo",
    "env_id",
    "timesteps",
    "eval_return_mean",
    "eval_return_std",
    "eval_n_episodes",
    "eval_ep_length_mean",
    "eval_returns",
]
EPISODE_COLUMNS = ["task", "variant", "seed", "run", "episode", "timesteps", "episode_return", "episode_length", "time"]
RUN_COLUMNS = [
    "run",
    "task",
    "variant",
    "factor",
    "seed",
    "algo",
    "env_id",
    "source",
    "status",
    "included",
    "reason",
    "n_evals",
    "last_timestep",
    "n_timesteps",
    "n_episodes",
    "wall_time_s",
    "env_steps_per_s",
    "path",
    "config",
    "versions",
    "git_commit",
    "command",
]

INVENTORY_LEVELS = ("excluded", "warning", "skipped", "info")

_ZOO_DIR_RE = re.compile(r"^(?P<env>.+)_(?P<n>\d+)$")
# A task of a curve file must look like a Gymnasium id with a version: [namespace/]Name-v<N>
_ENV_ID_RE = re.compile(r"^(?:[A-Za-z0-9_.-]+/)?[A-Za-z][A-Za-z0-9_.:-]*-v\d+$")
_CURVE_RE = re.compile(r"^(?:(?P<algo>[^_]+)_)?(?P<task>.+)_(?P<seed>\d+)$")


# --------------------------------------------------------------------------------------------------------------
# YAML with python tags
# --------------------------------------------------------------------------------------------------------------
_SafeBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when available (faster)


class _ZooYamlLoader(_SafeBase):  # type: ignore[misc,valid-type]
    """Safe YAML loader that understands the python tags rl-zoo3 writes (no code is executed)."""


def _construct_ordered_dict(loader: yaml.SafeLoader, node: yaml.Node) -> dict:
    # ``!!python/object/apply:collections.OrderedDict`` holds the constructor's argument list: [[[key, value], ...]]
    args = loader.construct_sequence(node, deep=True) if isinstance(node, yaml.SequenceNode) else []
    if not args:
        return {}
    pairs = args[0]
    return {pair[0]: pair[1] for pair in pairs}


def _construct_tuple(loader: yaml.SafeLoader, node: yaml.Node) -> tuple:
    return tuple(loader.construct_sequence(node, deep=True)) if isinstance(node, yaml.SequenceNode) else ()


def _construct_unknown_python(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> str:
    # Any other python tag (e.g. a class or function reference) is kept as an inert string.
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return f"!!python/{tag_suffix} {value!r}" if value not in ("", None, []) else f"!!python/{tag_suffix}"


_ZooYamlLoader.add_constructor("tag:yaml.org,2002:python/object/apply:collections.OrderedDict", _construct_ordered_dict)
_ZooYamlLoader.add_constructor("tag:yaml.org,2002:python/tuple", _construct_tuple)
_ZooYamlLoader.add_multi_constructor("tag:yaml.org,2002:python/", _construct_unknown_python)


def load_yaml(path: PathLike) -> Any:
    """Load a YAML file written by rl-zoo3 (``config.yml``, ``args.yml``) without executing code.

    ``!!python/object/apply:collections.OrderedDict`` becomes a ``dict``, ``!!python/tuple`` a ``tuple`` and
    any other ``!!python/...`` tag an inert descriptive string.

    :param path: YAML file.
    :return: the parsed document.
    :raises ValueError: if the file is not valid YAML (the message names the file).
    """
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.load(f, Loader=_ZooYamlLoader)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: invalid YAML ({exc})") from exc


# --------------------------------------------------------------------------------------------------------------
# Inventory
# --------------------------------------------------------------------------------------------------------------
@dataclass
class Inventory:
    """What was found and what happened to it.

    Each entry is a dict ``{"run", "path", "level", "reason"}`` with ``level`` one of ``"excluded"`` (the run is
    not in the metrics), ``"warning"`` (handled; the run is used), ``"skipped"`` (a file that is not a run, e.g.
    ``progress_1.csv``: not counted) or ``"info"`` (e.g. a run given twice, loaded once).
    """

    entries: list[dict[str, str]] = field(default_factory=list)

    def add(self, run: str, path: PathLike, level: str, reason: str) -> None:
        if level not in INVENTORY_LEVELS:
            raise ValueError(f"Inventory.add: level must be one of {'|'.join(INVENTORY_LEVELS)}, got {level!r}")
        self.entries.append({"run": str(run), "path": str(path), "level": level, "reason": reason})

    def extend(self, other: Inventory) -> None:
        self.entries.extend(other.entries)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.entries, columns=["run", "path", "level", "reason"])

    def excluded_runs(self) -> set[str]:
        return {e["run"] for e in self.entries if e["level"] == "excluded"}


@dataclass
class LoadResult:
    """Tidy tables of everything that was loaded.

    :param evals: one row per (run, evaluation): columns :data:`EVAL_COLUMNS`; ``eval_returns`` holds the
        per-episode returns of that evaluation as a 1-D float array.
    :param episodes: one row per training episode from the monitor files: :data:`EPISODE_COLUMNS`.
    :param runs: one row per run found (included or not): :data:`RUN_COLUMNS`.
    :param inventory: exclusions and handled problems.
    """

    evals: pd.DataFrame
    episodes: pd.DataFrame
    runs: pd.DataFrame
    inventory: Inventory


_Cols = dict[str, Any]  # per-row columns of one run (numpy arrays / lists of equal length)
#: The per-evaluation columns of :data:`EVAL_COLUMNS` (the ones before ``timesteps`` are per run, from ``meta``).
_EVAL_ROW_COLUMNS = EVAL_COLUMNS[EVAL_COLUMNS.index("timesteps") :]
_EPISODE_ROW_COLUMNS = EPISODE_COLUMNS[EPISODE_COLUMNS.index("episode") :]
_EVAL_META = {
    "task": "task",
    "variant": "variant",
    "seed": "seed",
    "run": "run",
    "source": "source",
    "algo": "algo",
    "env_id": "env_id",
}
_EPISODE_META = {"task": "task", "variant": "variant", "seed": "seed", "run": "run"}


@dataclass
class _Run:
    meta: dict[str, Any]
    evals: Optional[_Cols] = None
    episodes: Optional[_Cols] = None


def _frame(runs: list[_Run], kind: str) -> pd.DataFrame:
    """Concatenate the per-run columns into one DataFrame; per-run values (task, variant...) come from ``meta``."""
    row_cols, meta_cols, columns = (
        (_EVAL_ROW_COLUMNS, _EVAL_META, EVAL_COLUMNS)
        if kind == "evals"
        else (_EPISODE_ROW_COLUMNS, _EPISODE_META, EPISODE_COLUMNS)
    )
    parts = [(r.meta, getattr(r, kind)) for r in runs if getattr(r, kind) is not None and len(getattr(r, kind)["timesteps"])]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    counts = np.array([len(cols["timesteps"]) for _, cols in parts])
    data: dict[str, Any] = {}
    for col, key in meta_cols.items():
        values = [m[key] for m, _ in parts]
        if col == "seed":
            data[col] = np.repeat(np.array(values, dtype=np.int64), counts)
        else:
            data[col] = np.repeat(np.array(values, dtype=object), counts)
    for col in row_cols:
        if col == "eval_returns":
            data[col] = [row for _, cols in parts for row in cols[col]]
        else:
            data[col] = np.concatenate([np.asarray(cols[col]) for _, cols in parts])
    return pd.DataFrame(data)[columns]


def _base_meta(run_id: str, path: Path, source: str) -> dict[str, Any]:
    meta: dict[str, Any] = dict.fromkeys(RUN_COLUMNS)
    meta.update(run=run_id, path=str(path), source=source, status="done", included=True, reason="", config={}, versions={})
    meta.setdefault("command", None)
    return meta


# --------------------------------------------------------------------------------------------------------------
# Zoo log folders
# --------------------------------------------------------------------------------------------------------------
def _read_monitor(path: Path) -> dict[str, np.ndarray]:
    """Read an SB3 Monitor file (a ``#{json}`` line, then a ``r,l,t`` header and one row per episode).

    :return: ``{"r", "l", "t"}`` float arrays (possibly empty; ``t`` NaN if absent).
    :raises ValueError: if the header or a row is malformed.
    """
    with open(path, encoding="utf-8") as f:
        lines = [ln.strip() for ln in f.read().splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines:
        return {"r": np.empty(0), "l": np.empty(0), "t": np.empty(0)}
    header = lines[0].split(",")
    missing = {"r", "l"} - set(header)
    if missing:
        raise ValueError(f"monitor file lacks columns {sorted(missing)} (header {lines[0]!r})")
    rows = [ln.split(",") for ln in lines[1:]]
    bad = [i for i, r in enumerate(rows) if len(r) != len(header)]
    if bad:
        raise ValueError(f"monitor row {bad[0] + 2} has {len(rows[bad[0]])} fields, header has {len(header)}")
    try:
        table = np.array(rows, dtype=float).reshape(len(rows), len(header))
    except ValueError as exc:
        raise ValueError(f"non-numeric monitor value ({exc})") from exc
    out = {h: table[:, i] for i, h in enumerate(header) if h in ("r", "l", "t")}
    out.setdefault("t", np.full(len(rows), np.nan))
    return out


def _find_config_dir(run_dir: Path, env_hint: Optional[str]) -> Optional[Path]:
    if env_hint and (run_dir / env_hint).is_dir():
        return run_dir / env_hint
    for sub in sorted(p for p in run_dir.iterdir() if p.is_dir()):
        if (sub / "config.yml").exists() or (sub / "args.yml").exists():
            return sub
    return None


def load_zoo_run(
    run_dir: PathLike,
    task: Optional[str] = None,
    variant: Optional[str] = None,
    seed: Optional[int] = None,
    run_id: Optional[str] = None,
    inventory: Optional[Inventory] = None,
) -> tuple[Optional[pd.DataFrame], pd.DataFrame, dict[str, Any]]:
    """Load one rl-zoo3 log folder ``<algo>/<env_id>_<N>/``.

    :param run_dir: the ``<env_id>_<N>`` folder.
    :param task: task name (default: ``env`` from ``args.yml``, else the folder name without ``_<N>``).
    :param variant: variant name (default: the algorithm, i.e. ``algo`` from ``args.yml`` or the parent folder).
    :param seed: seed (default: ``seed`` from ``args.yml``, else ``<N>``).
    :param run_id: identifier of the run in the tables (default: the folder path).
    :param inventory: where problems are recorded (a new one if None).
    :return: ``(evals or None if unusable, episodes, meta)``; ``meta`` has the keys of :data:`RUN_COLUMNS`.
    """
    run = _load_zoo_dir(Path(run_dir), task, variant, seed, run_id, inventory if inventory is not None else Inventory())
    evals = _frame([run], "evals") if run.evals is not None else None
    return evals, _frame([run], "episodes"), run.meta


def _load_zoo_dir(
    run_dir: Path,
    task: Optional[str],
    variant: Optional[str],
    seed: Optional[int],
    run_id: Optional[str],
    inventory: Inventory,
) -> _Run:
    rid = run_id or str(run_dir)
    meta = _base_meta(rid, run_dir, "zoo")
    match = _ZOO_DIR_RE.match(run_dir.name)
    env_from_dir = match.group("env") if match else run_dir.name

    config_dir = _find_config_dir(run_dir, env_from_dir)
    args: dict[str, Any] = {}
    config: dict[str, Any] = {}
    if config_dir is None:
        inventory.add(rid, run_dir, "warning", "missing config folder (<env>/config.yml, args.yml): settings unknown")
    else:
        for name in ("args.yml", "config.yml"):
            p = config_dir / name
            if not p.exists():
                inventory.add(rid, p, "warning", f"missing {name}: settings unknown")
                continue
            try:
                doc = load_yaml(p)
            except ValueError as exc:
                inventory.add(rid, p, "warning", f"unreadable {name}: {exc}")
                continue
            if not isinstance(doc, dict):
                inventory.add(rid, p, "warning", f"{name} is not a mapping (got {type(doc).__name__})")
                continue
            if name == "args.yml":
                args = doc
            else:
                config = doc
    env_id = str(args.get("env") or env_from_dir)
    algo = str(args.get("algo") or run_dir.parent.name)
    meta["env_id"] = env_id
    meta["algo"] = algo
    meta["task"] = task or env_id
    meta["variant"] = variant or algo
    if seed is None:
        seed_val = args.get("seed")
        try:
            seed = _as_int(seed_val, "seed") if seed_val is not None else None
        except ValueError as exc:
            inventory.add(rid, config_dir / "args.yml" if config_dir else run_dir, "warning", f"args.yml: {exc}; seed unknown")
            seed = None
        if seed is None:
            seed = int(match.group("n")) if match else -1
    meta["seed"] = int(seed)
    meta["config"] = config
    if "n_timesteps" in config:
        try:
            meta["n_timesteps"] = int(float(config["n_timesteps"]))
        except (TypeError, ValueError):
            inventory.add(rid, run_dir, "warning", f"config.yml n_timesteps is not a number: {config['n_timesteps']!r}")

    # Training episodes (one or several monitor files, one per env copy)
    monitor_files = sorted(p for p in run_dir.iterdir() if p.name.endswith("monitor.csv"))
    mons = []
    for mf in monitor_files:
        try:
            mon = _read_monitor(mf)
        except (ValueError, UnicodeDecodeError) as exc:
            inventory.add(rid, mf, "warning", f"unreadable monitor file, training episodes skipped: {exc}")
            continue
        if len(mon["r"]) == 0:
            inventory.add(rid, mf, "warning", "empty monitor file (0 training episodes)")
            continue
        mons.append(mon)
    episodes: Optional[_Cols] = None
    if mons:
        rets = np.concatenate([m["r"] for m in mons])
        lengths = np.concatenate([m["l"] for m in mons])
        times = np.concatenate([m["t"] for m in mons])
        if len(mons) > 1:  # several env copies: order episodes by wall-clock end time
            order = np.argsort(times, kind="stable")
            rets, lengths, times = rets[order], lengths[order], times[order]
        episodes = {
            "episode": np.arange(len(rets)),
            "timesteps": np.nancumsum(lengths).astype(np.int64),
            "episode_return": rets,
            "episode_length": lengths,
            "time": times,
        }
    elif not monitor_files:
        inventory.add(rid, run_dir, "warning", "no monitor file (training episodes unknown)")
    meta["n_episodes"] = len(episodes["timesteps"]) if episodes is not None else 0

    npz_path = run_dir / EVALUATIONS_FILE
    if not npz_path.exists():
        meta.update(included=False, reason="no evaluations.npz")
        inventory.add(rid, npz_path, "excluded", "no evaluations.npz")
        return _Run(meta, None, episodes)
    try:
        arrays = read_evaluations(npz_path)
    except ValueError as exc:
        meta.update(included=False, reason=str(exc))
        inventory.add(rid, npz_path, "excluded", str(exc))
        return _Run(meta, None, episodes)
    evals = _eval_cols(arrays["timesteps"], arrays["results"], arrays["ep_lengths"])
    return _Run(meta, _check_evals(evals, meta, inventory, npz_path), episodes)


def _eval_cols(timesteps: np.ndarray, results: np.ndarray, lengths: np.ndarray) -> _Cols:
    results = np.asarray(results, dtype=float)
    if results.ndim == 1:
        results = results[:, None]
    with np.errstate(all="ignore"):
        mean = results.mean(axis=1)
        std = results.std(axis=1)
        len_mean = np.asarray(lengths, dtype=float).mean(axis=1) if lengths.size else np.full(len(mean), np.nan)
    n = len(timesteps)
    return {
        "timesteps": np.asarray(timesteps).astype(np.int64),
        "eval_return_mean": mean,
        "eval_return_std": std,
        "eval_n_episodes": np.full(n, results.shape[1], dtype=np.int64),
        "eval_ep_length_mean": len_mean,
        "eval_returns": list(results),
    }


def _select(cols: _Cols, idx: np.ndarray) -> _Cols:
    return {k: ([v[i] for i in idx] if isinstance(v, list) else np.asarray(v)[idx]) for k, v in cols.items()}


def _check_evals(evals: _Cols, meta: dict[str, Any], inventory: Inventory, path: Path) -> Optional[_Cols]:
    rid = meta["run"]
    ts = np.asarray(evals["timesteps"])
    if np.any(np.diff(ts) < 0):
        inventory.add(rid, path, "warning", "evaluation timesteps not increasing: sorted")
        evals = _select(evals, np.argsort(ts, kind="stable"))
        ts = np.asarray(evals["timesteps"])
    last_of_each = np.r_[ts[1:] != ts[:-1], True]
    if not last_of_each.all():
        n_dup = int((~last_of_each).sum())
        inventory.add(rid, path, "warning", f"{n_dup} duplicated evaluation timesteps: kept the last of each")
        evals = _select(evals, np.flatnonzero(last_of_each))
    finite = np.isfinite(np.asarray(evals["eval_return_mean"], dtype=float))
    if not finite.all():
        reason = f"non-finite evaluation return at {int((~finite).sum())} of {len(finite)} evaluations"
        meta.update(included=False, reason=reason)
        inventory.add(rid, path, "excluded", reason)
        return None
    meta["n_evals"] = len(evals["timesteps"])
    meta["last_timestep"] = int(evals["timesteps"][-1])
    return evals


# --------------------------------------------------------------------------------------------------------------
# Runner folders
# --------------------------------------------------------------------------------------------------------------
def _load_runner_run(run_dir: Path, inventory: Inventory) -> _Run:
    rid = str(run_dir)
    meta = _base_meta(rid, run_dir, "runner")
    try:
        info = load_run_json(run_dir)
    except (OSError, ValueError) as exc:
        reason = f"unreadable run.json: {exc}"
        meta.update(included=False, reason=reason, status="unknown")
        inventory.add(rid, run_dir / RUN_JSON, "excluded", reason)
        _fill_from_path(meta, run_dir)
        return _Run(meta)
    _fill_from_path(meta, run_dir)
    try:
        _run_json_fields(info, meta)
    except ValueError as exc:
        reason = f"malformed run.json: {exc}"
        meta.update(included=False, reason=reason, status="unknown")
        inventory.add(rid, run_dir / RUN_JSON, "excluded", reason)
        return _Run(meta)
    meta["command"] = _read_command(run_dir)
    status = str(meta.get("status") or "unknown")
    meta["status"] = status

    zoo_dirs = []
    for dp, dns, fns in os.walk(run_dir / LOGS_DIR):
        dns.sort()
        if _is_zoo_dir(Path(dp), dns, fns):
            zoo_dirs.append(Path(dp))
            dns[:] = []
    if not zoo_dirs:
        tail = str(info.get("error_tail") or "").strip().splitlines()
        why = f"run status {status!r}, no zoo log folder under logs/"
        if tail:
            why += f"; error tail: {tail[-1][:200]}"
        meta.update(included=False, reason=why)
        inventory.add(rid, run_dir, "excluded", why)
        return _Run(meta)
    if len(zoo_dirs) > 1:
        inventory.add(rid, run_dir, "warning", f"{len(zoo_dirs)} zoo log folders under logs/: used {zoo_dirs[-1].name}")
    zrun = _load_zoo_dir(zoo_dirs[-1], meta.get("task"), meta.get("variant"), meta.get("seed"), rid, inventory)
    evals, episodes, zmeta = zrun.evals, zrun.episodes, zrun.meta
    for key in ("env_id", "n_evals", "last_timestep", "n_episodes", "config"):
        meta[key] = zmeta.get(key)
    if meta.get("algo") is None:
        meta["algo"] = zmeta.get("algo")
    if meta.get("n_timesteps") is None:
        meta["n_timesteps"] = zmeta.get("n_timesteps")
    hp = run_dir / HYPERPARAMS_FILE
    if not meta["config"] and hp.exists():
        try:
            doc = load_yaml(hp)
            if isinstance(doc, dict) and isinstance(doc.get(meta["task"]), dict):
                doc = doc[meta["task"]]  # the runner's merged zoo YAML: {task: hyperparameters}
            meta["config"] = doc if isinstance(doc, dict) else {}
        except ValueError as exc:
            inventory.add(rid, hp, "warning", str(exc))
    if not zmeta["included"]:
        meta.update(included=False, reason=zmeta["reason"])
    elif status not in FINISHED_STATUSES:
        reason = f"run status {status!r}" + (": incomplete" if status == "running" else "")
        meta.update(included=False, reason=reason)
        inventory.add(rid, run_dir / RUN_JSON, "excluded", reason)
        evals = None
    elif status == "diverged":
        reason = "diverged (losses/Q-values became NaN/inf): stopped early, excluded from metrics, counted in n_diverged"
        meta.update(included=False, reason=reason)
        inventory.add(rid, run_dir / RUN_JSON, "excluded", reason)
        evals = None
    meta["env_id"] = meta["env_id"] or meta["task"]
    return _Run(meta, evals, episodes)


def _as_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"field {key!r} = {value!r} is not an integer")
    try:
        f = float(value)
    except ValueError:
        raise ValueError(f"field {key!r} = {value!r} is not an integer") from None
    if not np.isfinite(f) or f != int(f):
        raise ValueError(f"field {key!r} = {value!r} is not an integer")
    return int(f)


def _as_float(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"field {key!r} = {value!r} is not a number")
    return float(value)


def _run_json_fields(info: dict[str, Any], meta: dict[str, Any]) -> None:
    """Copy the fields of a runner ``run.json`` into ``meta``, checking their types.

    :raises ValueError: naming the first malformed field.
    """
    for key in ("task", "variant", "factor", "algo", "status", "suite", "git_commit"):
        value = info.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"field {key!r} = {value!r} is not a string")
    for key in ("task", "variant", "factor", "algo", "status"):
        if info.get(key) is not None:
            meta[key] = info[key]
    for key in ("wall_time_s", "env_steps_per_s"):
        if info.get(key) is not None:
            meta[key] = _as_float(info[key], key)
    if info.get("n_timesteps") is not None:
        meta["n_timesteps"] = _as_int(info["n_timesteps"], "n_timesteps")
    if info.get("seed") is not None:
        meta["seed"] = _as_int(info["seed"], "seed")
    versions = info.get("versions") or {}
    if not isinstance(versions, dict):
        raise ValueError(f"field 'versions' = {versions!r} is not an object")
    meta["versions"] = versions
    meta["suite"] = info.get("suite")
    meta["git_commit"] = info.get("git_commit")


def _read_command(run_dir: Path) -> Optional[str]:
    """The runner's ``command.txt`` (one command line), or None."""
    p = run_dir / COMMAND_FILE
    try:
        text = p.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


def _fill_from_path(meta: dict[str, Any], run_dir: Path) -> None:
    """Default task / variant / seed from ``<task>/<variant>/seed_<s>``."""
    parts = parse_run_dir(run_dir)
    if parts is not None:
        meta["task"], meta["variant"], meta["seed"] = parts


# --------------------------------------------------------------------------------------------------------------
# Per-seed curve arrays
# --------------------------------------------------------------------------------------------------------------
def _read_curve_file(path: Path, step: int, start: int) -> tuple[np.ndarray, np.ndarray]:
    if path.suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ValueError(f"unreadable curve array ({type(exc).__name__}: {exc})") from exc
    else:
        try:
            df = pd.read_csv(path, header=None)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise ValueError(f"unreadable curve csv ({type(exc).__name__}: {exc})") from exc
        if len(df) and not _is_number(df.iloc[0, 0]):
            df = df.iloc[1:]  # header row
        arr = df.apply(pd.to_numeric, errors="coerce").to_numpy(float)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"curve array is not numeric (dtype {arr.dtype})")
    arr = arr.astype(float)
    if arr.ndim == 1:
        values = arr
        steps = start + step * np.arange(len(arr), dtype=np.int64)
    elif arr.ndim == 2 and arr.shape[1] == 2:
        steps, values = arr[:, 0].astype(np.int64), arr[:, 1]
    else:
        raise ValueError(f"curve array must be 1-D (returns) or (n, 2) (timesteps, return); got shape {arr.shape}")
    if len(values) == 0:
        raise ValueError("empty curve")
    return steps, values


def _is_number(x: Any) -> bool:
    try:
        float(x)
        return True
    except (TypeError, ValueError):
        return False


def load_curve_arrays(
    root: PathLike,
    step: int = 5000,
    start: int = 0,
    variant: Optional[str] = None,
    inventory: Optional[Inventory] = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Load per-seed curve files ``[<algo>_]<task>_<seed>.npy|.csv`` found (recursively) under ``root``.

    :param root: a folder (searched recursively) or one file.
    :param step: number of environment steps between two points of a 1-D curve.
    :param start: step of the first point of a 1-D curve.
    :param variant: variant name (default: the ``<algo>`` prefix of the file name, else ``"curves"``).
    :param inventory: where problems are recorded (a new one if None).
    :return: ``(evals, runs)`` tables (``eval_returns`` holds the single value of each point, the per-episode
        returns being unknown; ``eval_n_episodes`` is 0 for "unknown").
    """
    if step <= 0:
        raise ValueError(f"load_curve_arrays: step must be > 0, got {step}")
    root = Path(root)
    inventory = inventory if inventory is not None else Inventory()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix in (".npy", ".csv"))
    loaded = [r for r in (_load_curve_file(p, step, start, variant, inventory) for p in files) if r is not None]
    return _frame([r for r in loaded if r.meta["included"]], "evals"), pd.DataFrame(
        [r.meta for r in loaded], columns=RUN_COLUMNS
    )


def _load_curve_file(path: Path, step: int, start: int, variant: Optional[str], inventory: Inventory) -> Optional[_Run]:
    if path.name.endswith("monitor.csv"):
        return None
    m = _CURVE_RE.match(path.stem)
    if m is None or not _ENV_ID_RE.match(m.group("task")):
        # not a run: summaries, progress logs, `<word>_<digits>.csv` files... listed, never counted
        inventory.add(
            str(path),
            path,
            "skipped",
            "not a run: curve files are named [<algo>_]<Env>-v<N>_<seed>.npy|.csv (e.g. TD3_HalfCheetah-v1_3.npy)",
        )
        return None
    rid = str(path)
    meta = _base_meta(rid, path, "curves")
    meta.update(task=m.group("task"), variant=variant or m.group("algo") or "curves", seed=int(m.group("seed")))
    meta.update(algo=m.group("algo") or "unknown", env_id=m.group("task"))
    try:
        steps, values = _read_curve_file(path, step, start)
    except ValueError as exc:
        meta.update(included=False, reason=str(exc))
        inventory.add(rid, path, "excluded", str(exc))
        return _Run(meta)
    evals = _eval_cols(steps, values[:, None], np.full((len(values), 1), np.nan))
    evals["eval_n_episodes"] = np.zeros(len(values), dtype=np.int64)
    evals["eval_return_std"] = np.full(len(values), np.nan)
    return _Run(meta, _check_evals(evals, meta, inventory, path))


# --------------------------------------------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------------------------------------------
def _is_zoo_dir(dirpath: Path, dirnames: list[str], filenames: list[str]) -> bool:
    if EVALUATIONS_FILE in filenames or any(f.endswith("monitor.csv") for f in filenames):
        return True
    if _ZOO_DIR_RE.match(dirpath.name):
        return any((dirpath / d / "config.yml").exists() or (dirpath / d / "args.yml").exists() for d in dirnames)
    return False


def load_runs(
    paths: Union[PathLike, list[PathLike]],
    curve_step: int = 5000,
    curve_start: int = 0,
) -> LoadResult:
    """Find and load every run under ``paths`` (zoo log folders, runner run folders, curve arrays).

    :param paths: one or several folders (searched recursively) or files.
    :param curve_step: step spacing of 1-D curve arrays (see :func:`load_curve_arrays`).
    :param curve_start: step of the first point of 1-D curve arrays.
    :return: a :class:`LoadResult`; runs that cannot be used are in ``runs`` with ``included=False`` and in the
        inventory with the reason.
    :raises ValueError: if a path does not exist.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    inventory = Inventory()
    candidates: list[tuple[str, Path]] = []
    for p in paths:
        root = Path(p)
        if not root.exists():
            raise ValueError(f"load_runs: path does not exist: {root}")
        candidates.extend(_discover(root))
    loaded: list[_Run] = []
    for kind, path in _unique_candidates(candidates, inventory):
        if kind == "runner":
            loaded.append(_load_runner_run(path, inventory))
        elif kind == "zoo":
            loaded.append(_load_zoo_dir(path, None, None, None, None, inventory))
        else:
            run = _load_curve_file(path, curve_step, curve_start, None, inventory)
            if run is not None:
                loaded.append(run)
    if not loaded:
        inventory.add("-", ", ".join(str(p) for p in paths), "info", "no run found")
    evals = _frame([r for r in loaded if r.meta["included"]], "evals")
    episodes = _frame(loaded, "episodes")
    runs = pd.DataFrame([r.meta for r in loaded], columns=RUN_COLUMNS)
    _check_duplicate_runs(runs, inventory)
    return LoadResult(evals=evals, episodes=episodes, runs=runs, inventory=inventory)


#: Files that mark a folder as the output of ``python -m analysis report`` (skipped when searching for runs).
REPORT_MARKERS = ("report.md", "summary.csv", "inventory.csv")


def is_report_dir(filenames: list[str]) -> bool:
    """
    :param filenames: The file names in a folder.
    :return: Whether the folder is a report's output folder (its ``zoo/`` export copies the runs' evaluations).
    """
    return all(name in filenames for name in REPORT_MARKERS)


def _discover(root: Path) -> list[tuple[str, Path]]:
    """Candidate runs under ``root``: ``("runner" | "zoo" | "curve", path)`` in a stable (sorted) order."""
    if root.is_file():
        if root.name == RUN_JSON:
            return [("runner", root.parent)]
        if root.name == EVALUATIONS_FILE:
            return [("zoo", root.parent)]
        return [("curve", root)]
    out: list[tuple[str, Path]] = []
    for dirpath_s, dirnames, filenames in os.walk(root):
        dirnames.sort()
        dirpath = Path(dirpath_s)
        if dirpath != root and is_report_dir(filenames):
            dirnames[:] = []  # a report written inside its inputs (results/<suite>/report): its zoo/ export is no run
            continue
        if RUN_JSON in filenames:
            out.append(("runner", dirpath))
            dirnames[:] = []
        elif _is_zoo_dir(dirpath, dirnames, filenames):
            out.append(("zoo", dirpath))
            dirnames[:] = []
        else:
            out.extend(("curve", dirpath / fn) for fn in sorted(filenames) if fn.endswith((".npy", ".csv")))
    return out


def _unique_candidates(candidates: list[tuple[str, Path]], inventory: Inventory) -> list[tuple[str, Path]]:
    """Drop candidates given more than once: the same folder or file twice, or one inside another candidate (a
    file inside a folder that was given too, the zoo log folder inside a runner folder): the outer one is kept."""
    resolved = [p.resolve() for _, p in candidates]
    all_paths = set(resolved)
    seen: dict[Path, Path] = {}
    out = []
    for (kind, path), r in zip(candidates, resolved):
        outer = next((q for q in r.parents if q in all_paths), None)
        if outer is not None:
            inventory.add(str(path), path, "info", f"given more than once (inside {outer}): loaded once")
            continue
        if r in seen:
            inventory.add(str(path), path, "info", f"given more than once (as {seen[r]}): loaded once")
            continue
        seen[r] = path
        out.append((kind, path))
    return out


def _check_duplicate_runs(runs: pd.DataFrame, inventory: Inventory) -> None:
    inc = runs[runs["included"].astype(bool)]
    dup = inc.duplicated(["task", "variant", "seed"], keep=False)
    for (task, variant, seed), grp in inc[dup].groupby(["task", "variant", "seed"]):
        inventory.add(
            ", ".join(grp["run"]),
            "",
            "warning",
            f"{len(grp)} runs share task={task} variant={variant} seed={seed}: all kept as separate runs",
        )
