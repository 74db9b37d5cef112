"""The run folder: the contract between the benchmark runner, which writes it, and the analysis, which reads it.

Layout (``<out>`` is the runner's ``--out``)::

    <out>/<suite>/<task>/<variant>/seed_<s>/
        run.json          suite, task, variant, factor, seed, algo, status, started / finished (Unix time, float),
                          wall_time_s, env_steps_per_s, n_timesteps, versions, git_commit, host, error_tail, attempt
        hyperparams.yml   the merged zoo YAML {task: hyperparams}
        command.txt       the command line that re-runs the run from the working folder of the runner
        stdout.txt, stderr.txt
        diverged.json     written by the divergence guard when the run diverged
        logs/<algo>/<task>_<N>/evaluations.npz ...   the zoo's log folder
        attempts/<n>/     the files of earlier attempts of a redone run
        .lock             the lock of the process executing the run

The runner (``sb3_ddpg_ext.benchmarks``) and the analysis (``sb3_ddpg_ext.analysis``) both use this module and
nothing of each other. It imports neither torch nor Stable-Baselines3.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import zipfile
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

__all__ = [
    "ATTEMPTS_DIR",
    "ATTEMPT_FILES",
    "COMMAND_FILE",
    "DIVERGED_FILE",
    "EVALUATIONS_FILE",
    "FAILED_STATUSES",
    "FINISHED_STATUSES",
    "HYPERPARAMS_FILE",
    "LOCK_FILE",
    "LOGS_DIR",
    "RUN_JSON",
    "STATUSES",
    "STDERR_FILE",
    "STDOUT_FILE",
    "find_evaluations",
    "last_evaluation_step",
    "load_run_json",
    "parse_run_dir",
    "read_evaluations",
    "read_run_json",
    "run_dir",
    "run_dir_parts",
    "seed_dir_name",
    "write_json_atomic",
    "write_text_atomic",
]

PathLike = Union[str, "os.PathLike[str]"]

RUN_JSON = "run.json"
HYPERPARAMS_FILE = "hyperparams.yml"
COMMAND_FILE = "command.txt"
STDOUT_FILE = "stdout.txt"
STDERR_FILE = "stderr.txt"
DIVERGED_FILE = "diverged.json"
LOGS_DIR = "logs"
EVALUATIONS_FILE = "evaluations.npz"
LOCK_FILE = ".lock"
ATTEMPTS_DIR = "attempts"
#: Files of one attempt (moved to ``attempts/<n>/`` when the run is redone).
ATTEMPT_FILES = (RUN_JSON, HYPERPARAMS_FILE, COMMAND_FILE, STDOUT_FILE, STDERR_FILE, DIVERGED_FILE, LOGS_DIR)

#: Every status a run can have (``pending``: no run.json yet, ``stale``: ``running`` but its process is gone,
#: ``corrupt``: run.json exists but cannot be read).
STATUSES = ("pending", "running", "stale", "done", "diverged", "failed", "corrupt")
#: Statuses of a run that ran to its end: a resumed grid does not redo them.
FINISHED_STATUSES = ("done", "diverged")
#: Statuses counted as failures.
FAILED_STATUSES = ("failed", "diverged", "corrupt")

_SEED_DIR = re.compile(r"^seed_(-?\d+)$")


# ------------------------------------------------------------------------------------------------------- layout
def seed_dir_name(seed: int) -> str:
    """``seed_<seed>``, the last component of a run folder."""
    return f"seed_{int(seed)}"


def run_dir_parts(suite: str, task: str, variant: str, seed: int) -> tuple[str, str, str, str]:
    """The components of a run folder below the output folder: ``(suite, task, variant, "seed_<seed>")``."""
    return suite, task, variant, seed_dir_name(seed)


def run_dir(out: PathLike, suite: str, task: str, variant: str, seed: int) -> Path:
    """The run folder ``<out>/<suite>/<task>/<variant>/seed_<seed>`` (as ``out`` is given: not made absolute)."""
    return Path(out).joinpath(*run_dir_parts(suite, task, variant, seed))


def parse_run_dir(path: PathLike) -> Optional[tuple[str, str, int]]:
    """
    ``(task, variant, seed)`` of a path ``.../<task>/<variant>/seed_<seed>``, or ``None`` if its last component is
    not ``seed_<int>`` (or it has no task and variant components above it).
    """
    path = Path(path)
    m = _SEED_DIR.match(path.name)
    if m is None or not path.parent.name or not path.parent.parent.name:
        return None
    return path.parent.parent.name, path.parent.name, int(m.group(1))


# ---------------------------------------------------------------------------------------------------- run.json
def write_text_atomic(path: PathLike, text: str) -> None:
    """
    Write ``text`` to ``path`` atomically (a temporary file in the same folder, fsync, ``os.replace``).

    On failure the temporary file is removed and the error re-raised (``path`` is unchanged).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_json_atomic(path: PathLike, payload: dict[str, Any]) -> None:
    """Write ``payload`` as JSON (indented, sorted keys) to ``path`` atomically (see :func:`write_text_atomic`)."""
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, default=str))


def load_run_json(folder: PathLike) -> dict[str, Any]:
    """
    The ``run.json`` of a run folder.

    :raises OSError: if it cannot be read
    :raises ValueError: if it is not JSON or its top level is not an object (the message says which)
    """
    text = (Path(folder) / RUN_JSON).read_text(encoding="utf-8")
    data = json.loads(text)  # json.JSONDecodeError is a ValueError
    if not isinstance(data, dict):
        raise ValueError(f"top level is {type(data).__name__}, not an object")
    return data


def read_run_json(folder: PathLike) -> Optional[dict[str, Any]]:
    """
    The ``run.json`` of a run folder, or ``None`` if missing or unreadable (the runner writes it atomically, so an
    unreadable one was damaged afterwards: the runner reports it ``corrupt``).
    """
    try:
        return load_run_json(folder)
    except (OSError, ValueError, UnicodeDecodeError):
        return None


# ------------------------------------------------------------------------------------------------ evaluations
def find_evaluations(folder: PathLike, algo: str, task: str) -> Optional[Path]:
    """``<folder>/logs/<algo>/<task>_<N>/evaluations.npz`` with the largest ``N``, or ``None`` if there is none."""

    def index(path: Path) -> int:
        suffix = path.parent.name.rsplit("_", 1)[1]
        return int(suffix) if suffix.isdigit() else -1

    candidates = sorted((Path(folder) / LOGS_DIR / algo).glob(f"{_glob_escape(task)}_*/{EVALUATIONS_FILE}"), key=index)
    return candidates[-1] if candidates else None


def _glob_escape(text: str) -> str:
    """``text`` with the glob metacharacters ``*?[`` escaped."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def read_evaluations(path: PathLike) -> dict[str, np.ndarray]:
    """
    Read an EvalCallback ``evaluations.npz`` (``allow_pickle=False``) and check it.

    :param path: the file
    :return: its arrays; ``results`` as float, 2-D ``(n_evals, n_episodes)``; ``ep_lengths`` of the same shape (NaN
        when absent)
    :raises ValueError: on any defect (unreadable, missing key, shapes that do not match, no evaluation, non-numeric)
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: np.asarray(data[k]) for k in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise ValueError(f"corrupt or truncated evaluations.npz ({type(exc).__name__}: {exc})") from exc
    for key in ("timesteps", "results"):
        if key not in arrays:
            raise ValueError(f"evaluations.npz lacks key {key!r} (has {sorted(arrays)})")
    timesteps, results = arrays["timesteps"], arrays["results"]
    if timesteps.ndim != 1:
        raise ValueError(f"evaluations.npz 'timesteps' must be 1-D, got shape {timesteps.shape}")
    if results.ndim == 1:
        results = results[:, None]
    if results.ndim != 2 or results.shape[0] != timesteps.shape[0]:
        raise ValueError(f"evaluations.npz 'results' shape {results.shape} does not match 'timesteps' {timesteps.shape}")
    if timesteps.shape[0] == 0:
        raise ValueError("evaluations.npz holds no evaluation")
    if not np.issubdtype(results.dtype, np.number) or not np.issubdtype(timesteps.dtype, np.number):
        raise ValueError(f"evaluations.npz has non-numeric arrays ({timesteps.dtype}, {results.dtype})")
    arrays["results"] = results.astype(float)
    lengths = arrays.get("ep_lengths")
    if lengths is not None and (lengths.ndim == 1 or lengths.shape != results.shape):
        lengths = lengths.reshape(results.shape) if lengths.size == results.size else None
    arrays["ep_lengths"] = lengths if lengths is not None else np.full(results.shape, np.nan)
    return arrays


def last_evaluation_step(path: Optional[PathLike]) -> Optional[int]:
    """
    The largest ``timesteps`` entry of an ``evaluations.npz``, or ``None`` if missing, unreadable or empty.

    Reads ``timesteps`` only (how far training got), unlike :func:`read_evaluations`, which checks the whole file.
    """
    if path is None:
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            timesteps = np.asarray(data["timesteps"]).reshape(-1)
        return int(timesteps.max()) if timesteps.size else None
    except Exception:  # missing key, truncated or corrupt zip, not an npz, non-numeric ...
        return None
