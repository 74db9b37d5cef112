"""Execute benchmark runs: one zoo subprocess per run, in its own folder, with an atomically written ``run.json``.

The run folder ``<out>/<suite>/<task>/<variant>/seed_<s>/`` (its files, statuses, the ``run.json`` and
``evaluations.npz`` readers) is defined in :mod:`sb3_ddpg_ext.run_folder`. Here: ``.lock`` (``fcntl.flock``) is held
by the process executing the run for the whole execution: a run whose lock is held elsewhere is skipped as "running
elsewhere" (the OS releases the lock of a dead process); ``attempts/<n>/`` receives the files of earlier attempts of
a redone run (never deleted).

Paths in the command, in ``hyperparams.yml`` (the divergence marker) and in ``run.json`` are relative to the
repository root when the run folder lies inside it (compared lexically, so a ``results`` symlink inside the
repository stays a repository path; the train subprocess runs with the repository root as working folder), so
committed run folders hold no machine paths; a run folder outside the repository gets absolute paths.

A run is ``done`` only if the subprocess exited with status 0 and ``evaluations.npz`` exists with a last evaluation
at the end of the budget (``>= n_timesteps - eval_freq``: the zoo exits 0 after a SIGINT too); ``diverged`` if the
divergence guard wrote its marker; ``failed`` otherwise. A run folder whose ``run.json`` exists but cannot be read is
``corrupt`` (counted as failed). Resuming skips ``done`` (and ``diverged``) runs and redoes everything else from
scratch, after moving the earlier attempt's files to ``attempts/<n>/``.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from sb3_ddpg_ext.run_folder import (
    ATTEMPT_FILES,
    ATTEMPTS_DIR,
    COMMAND_FILE,
    DIVERGED_FILE,
    HYPERPARAMS_FILE,
    LOCK_FILE,
    LOGS_DIR,
    RUN_JSON,
    STATUSES,
    STDERR_FILE,
    STDOUT_FILE,
    find_evaluations,
    last_evaluation_step,
    read_run_json,
    write_json_atomic,
    write_text_atomic,
)

from .suite import DIVERGENCE_CALLBACK, SOURCE_ROOT, RunSpec, work_root

__all__ = [
    "build_command",
    "command_path",
    "decide_status",
    "evaluation_complete",
    "execute_run",
    "is_finished",
    "prepare_run",
    "release_lock",
    "run_status",
    "set_aside_attempt",
    "try_lock",
    "write_run_files",
]

#: Number of stderr lines kept in ``run.json`` for a failed run.
ERROR_TAIL_LINES = 30
#: Packages whose versions are recorded in ``run.json``.
VERSION_PACKAGES = (
    "sb3_ddpg_ext",
    "stable_baselines3",
    "sb3_contrib",
    "rl_zoo3",
    "torch",
    "gymnasium",
    "numpy",
    "mujoco",
    "pybullet",
    "pybullet_envs_gymnasium",
)

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: Files that only an attempt that started writes (a dry run writes ``hyperparams.yml`` and ``command.txt`` only).
_STARTED_FILES = (RUN_JSON, STDOUT_FILE, STDERR_FILE, DIVERGED_FILE, LOGS_DIR)

# Live child processes of this process (so an interrupted runner can kill them).
_LIVE_CHILDREN: dict[int, subprocess.Popen] = {}
_LIVE_LOCK = threading.Lock()


# ------------------------------------------------------------------------------------------------- lock
def try_lock(run_dir: Path) -> Optional[int]:
    """
    Take the run folder's lock without waiting (``fcntl.flock`` on ``<run_dir>/.lock``).

    :param run_dir: an existing run folder
    :return: the lock's file descriptor (pass it to :func:`release_lock`), or ``None`` if another process (or another
        thread's open of the file) holds it
    """
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def release_lock(fd: int) -> None:
    """Release a lock taken with :func:`try_lock`."""
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _pid_alive(pid: Optional[int]) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive.
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as f:
        if f.read().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _pid_runs_in(pid: int, run_dir: Path) -> bool:
    """
    Whether process ``pid`` is our train subprocess of ``run_dir`` (guards against pid reuse).

    Its command line holds ``-f <run folder>/logs`` as written by :func:`build_command` (relative to the repository
    root when the run folder is inside it: then the process must also run in this repository root).
    """
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().decode(errors="replace").split("\0")
    except OSError:
        return False
    logs = command_path(run_dir) / LOGS_DIR
    if str(logs) not in args:
        return False
    if logs.is_absolute():
        return True
    try:
        return os.path.realpath(f"/proc/{pid}/cwd") == os.path.realpath(work_root())
    except OSError:
        return False


def run_status(run_dir: Union[str, os.PathLike]) -> str:
    """
    Status of a run folder: one of :data:`STATUSES`.

    ``running`` becomes ``stale`` when the run was started on this host and neither its runner worker nor its
    train subprocess is alive any more (e.g. the runner was killed with ``kill -9``).
    """
    info = read_run_json(run_dir)
    if info is None:
        return "corrupt" if os.path.lexists(Path(run_dir) / RUN_JSON) else "pending"
    status = str(info.get("status", "pending"))
    same_host = info.get("host") == socket.gethostname()
    if status == "running" and same_host and not (_pid_alive(info.get("worker_pid")) or _pid_alive(info.get("child_pid"))):
        return "stale"
    return status if status in STATUSES else "failed"


def is_finished(run_dir: Union[str, os.PathLike], redo_diverged: bool = False) -> bool:
    """Whether a resumed grid skips this run (``done``, or ``diverged`` unless ``redo_diverged``)."""
    status = run_status(run_dir)
    return status == "done" or (status == "diverged" and not redo_diverged)


# ------------------------------------------------------------------------------------------- provenance
@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, Optional[str]]:
    """Versions of python and of :data:`VERSION_PACKAGES` (``None`` when not installed)."""
    from importlib import metadata

    versions: dict[str, Optional[str]] = {"python": sys.version.split()[0]}
    for name in VERSION_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


@functools.lru_cache(maxsize=1)
def git_info() -> dict[str, Any]:
    """
    ``{"git_commit": sha or None, "git_dirty": bool or None}`` of the repository holding this package (both ``None``
    when it is installed from a wheel: then the recorded ``versions`` identify the code).
    """
    if SOURCE_ROOT is None:
        return {"git_commit": None, "git_dirty": None}
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=SOURCE_ROOT, capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=SOURCE_ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": sha or None, "git_dirty": bool(dirty)}


# ---------------------------------------------------------------------------------------------- command
def command_path(path: Union[str, os.PathLike]) -> Path:
    """
    ``path`` as written in commands and run files: relative to the working root (:func:`work_root`: the repository
    root in a source checkout) if it lies inside, else absolute.

    Compared lexically (:func:`os.path.abspath` and :func:`os.path.normpath`, no symlink resolution), so a path
    through a symlink inside the repository (e.g. ``results`` pointing into another checkout) stays relative.

    :param path: a path (relative paths are relative to the current folder)
    :return: the repository-relative or absolute path
    """
    absolute = os.path.normpath(os.path.abspath(path))
    root = os.path.normpath(os.path.abspath(work_root()))
    if absolute == root or absolute.startswith(root.rstrip(os.sep) + os.sep):
        return Path(os.path.relpath(absolute, root))
    return Path(absolute)


def _python_executable() -> str:
    """
    ``python`` (or ``python3``) if that name on ``PATH`` is the running interpreter, else the interpreter's path.

    The same file, or a symlink to the same binary outside a virtual environment (a venv's ``bin/python`` links to the
    base interpreter but is not the same environment).
    """
    executable = os.path.abspath(sys.executable)
    for name in ("python", "python3"):
        which = shutil.which(name)
        if which is None:
            continue
        if os.path.abspath(which) == executable or (
            os.path.realpath(which) == os.path.realpath(executable) and sys.prefix == sys.base_prefix
        ):
            return name
    return sys.executable


def run_hyperparams(spec: RunSpec, run_dir: Path) -> dict[str, Any]:
    """
    The run's zoo hyperparameters with the divergence guard appended to ``callback``.

    :param spec: the run
    :param run_dir: its folder; the guard's ``marker_path`` is ``<run_dir>/diverged.json`` as given by
        :func:`command_path` (relative to the repository root, the subprocess' working folder, when inside it)
    :return: the hyperparameters (a copy; ``spec`` is not modified)
    """
    hyperparams = json.loads(json.dumps(spec.hyperparams))  # deep copy, plain types only
    callbacks = hyperparams.get("callback")
    callbacks = [] if callbacks is None else list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]
    marker = command_path(run_dir) / DIVERGED_FILE
    callbacks.append({DIVERGENCE_CALLBACK: {"check_freq": spec.divergence_check_freq, "marker_path": str(marker)}})
    hyperparams["callback"] = callbacks
    return hyperparams


def build_command(spec: RunSpec, run_dir: Path) -> tuple[list[str], dict[str, str]]:
    """
    The train command of a run and the environment variables it sets; run it from the repository root.

    :param spec: the run
    :param run_dir: its folder; paths in the command are as given by :func:`command_path` (relative to the
        repository root when inside it)
    :return: ``(argv, env_vars)``
    """
    run_dir = command_path(run_dir)
    argv = [
        _python_executable(),
        "-m",
        spec.train_module,
        "--algo",
        spec.algo,
        "--env",
        spec.task,
        "-conf",
        str(run_dir / HYPERPARAMS_FILE),
        "-n",
        str(spec.n_timesteps),
        "--seed",
        str(spec.seed),
        "-f",
        str(run_dir / LOGS_DIR),
        "--eval-freq",
        str(spec.eval_freq),
        "--eval-episodes",
        str(spec.eval_episodes),
        "--n-eval-envs",
        "1",
        "--vec-env",
        "dummy",
        "--num-threads",
        str(spec.threads),
    ]
    if spec.gym_packages:
        argv += ["--gym-packages", *spec.gym_packages]
    argv += list(spec.extra_args)
    env_vars = dict.fromkeys(THREAD_ENV_VARS, str(spec.threads))
    return argv, env_vars


def command_line(argv: list[str], env_vars: dict[str, str]) -> str:
    """Shell command line: ``VAR=value ... argv`` (quoted)."""
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in env_vars.items())
    return f"{prefix} {shlex.join(argv)}".strip()


def _set_pdeathsig() -> None:  # pragma: no cover - runs in the forked child
    """In the child: get SIGKILL when the parent (thread) dies (Linux), so ``kill -9`` of the runner kills runs."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent already died between fork and prctl
        os._exit(1)


def kill_live_children() -> None:
    """Kill the process groups of all train subprocesses started by this process."""
    with _LIVE_LOCK:
        children = list(_LIVE_CHILDREN.values())
    for proc in children:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def _running_elsewhere(info: dict[str, Any]) -> bool:
    """Whether ``run.json`` says running and its worker, another live process on this host, still runs."""
    worker = info.get("worker_pid")
    return (
        info.get("status") == "running"
        and info.get("host") == socket.gethostname()
        and isinstance(worker, int)
        and worker != os.getpid()
        and _pid_alive(worker)
        and _pid_alive(info.get("child_pid"))
    )


def _kill_orphan(info: dict[str, Any], run_dir: Path) -> None:
    """Kill a train subprocess of a previous runner still working in ``run_dir`` (same host, pid matches)."""
    pid = info.get("child_pid")
    if info.get("host") != socket.gethostname() or not isinstance(pid, int) or not _pid_alive(pid):
        return
    if _pid_runs_in(pid, run_dir):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        for _ in range(50):
            if not _pid_alive(pid):
                break
            time.sleep(0.1)


def _tail(path: Path, n_lines: int = ERROR_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64_000))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-n_lines:])


def evaluation_complete(last_step: Optional[int], n_timesteps: int, eval_freq: int, n_envs: int = 1) -> bool:
    """
    Whether the last evaluation shows that training ran its whole budget.

    The zoo evaluates every ``max(eval_freq // n_envs, 1)`` vectorized steps, i.e. every
    ``period = max(eval_freq // n_envs, 1) * n_envs`` env steps, and training ends at ``>= n_timesteps`` env steps, so a
    complete run has an evaluation at ``>= n_timesteps - period`` (and ``period <= max(eval_freq, n_envs)``). A run
    interrupted by SIGINT (the zoo catches ``KeyboardInterrupt``, saves and exits 0) stops short of that.
    """
    if last_step is None:
        return False
    n_envs = max(int(n_envs), 1)
    period = max(eval_freq // n_envs, 1) * n_envs
    return last_step >= n_timesteps - period


def decide_status(
    returncode: Optional[int],
    evaluations: Optional[Path],
    last_step: Optional[int],
    n_timesteps: int,
    eval_freq: int,
    n_envs: int = 1,
) -> tuple[str, Optional[str]]:
    """
    ``(status, reason)`` of a finished, non-diverged subprocess: ``("done", None)`` or ``("failed", reason)``.

    ``done`` needs exit status 0 *and* an ``evaluations.npz`` whose last evaluation is at the end of the budget.
    """
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown"
        return "failed", f"killed by signal {-returncode} ({name})"
    if returncode != 0:
        return "failed", f"exit status {returncode}"
    if evaluations is None:
        return "failed", "exit status 0 but no evaluations.npz"
    if last_step is None:
        return "failed", "exit status 0 but evaluations.npz is unreadable or empty"
    if not evaluation_complete(last_step, n_timesteps, eval_freq, n_envs):
        return "failed", f"incomplete: last evaluation at step {last_step} of {n_timesteps} (interrupted?)"
    return "done", None


# ------------------------------------------------------------------------------------------------ execute
def _attempt_index(name: str) -> int:
    return int(name) if name.isdigit() else 0


def set_aside_attempt(run_dir: Path) -> Optional[Path]:
    """
    Move the files of the previous attempt of a run (:data:`ATTEMPT_FILES`) to ``<run_dir>/attempts/<n>/``.

    Nothing is moved if the folder holds no started attempt (at most the ``hyperparams.yml`` and ``command.txt`` of a
    dry run, which the next attempt overwrites).

    :param run_dir: the run folder (its lock held)
    :return: the folder the files were moved to, or ``None``
    """
    if not any(os.path.lexists(run_dir / name) for name in _STARTED_FILES):
        return None
    attempts = run_dir / ATTEMPTS_DIR
    attempts.mkdir(exist_ok=True)
    index = max((_attempt_index(p.name) for p in attempts.iterdir()), default=0) + 1
    target = attempts / str(index)
    target.mkdir()
    for name in ATTEMPT_FILES:
        if os.path.lexists(run_dir / name):
            os.replace(run_dir / name, target / name)
    return target


def _n_attempts(run_dir: Path) -> int:
    """Number of the last attempt set aside in ``attempts/`` (0 if none)."""
    attempts = run_dir / ATTEMPTS_DIR
    if not attempts.is_dir():
        return 0
    return max((_attempt_index(p.name) for p in attempts.iterdir()), default=0)


def write_run_files(spec: RunSpec, run_dir: Path) -> tuple[list[str], dict[str, str]]:
    """
    Write ``hyperparams.yml`` and ``command.txt`` of a run (atomically) and return its command.

    :param spec: the run
    :param run_dir: its existing folder
    :return: ``(argv, env_vars)`` as from :func:`build_command`
    """
    hyperparams = run_hyperparams(spec, run_dir)
    text = yaml.safe_dump({spec.task: hyperparams}, sort_keys=False, default_flow_style=None)
    write_text_atomic(run_dir / HYPERPARAMS_FILE, text)
    argv, env_vars = build_command(spec, run_dir)
    write_text_atomic(run_dir / COMMAND_FILE, command_line(argv, env_vars) + "\n")
    return argv, env_vars


def prepare_run(spec: RunSpec, out: Union[str, os.PathLike]) -> Optional[str]:
    """
    Dry run of one run: write its ``hyperparams.yml`` and ``command.txt`` (no ``run.json``, nothing started).

    The returned command then runs as printed from the repository root. Files of an earlier attempt other than those
    two are left in place (the real run moves them to ``attempts/<n>/``).

    :param spec: the run
    :param out: output root folder
    :return: the command line, or ``None`` if the run's lock is held elsewhere (it is running: nothing written)
    """
    run_dir = spec.run_dir(out)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = try_lock(run_dir)
    if lock is None:
        return None
    try:
        return command_line(*write_run_files(spec, run_dir))
    finally:
        release_lock(lock)


def _skipped(spec: RunSpec, run_dir: Path, redo_diverged: bool) -> Optional[dict[str, Any]]:
    """The result of a run that is not executed here (finished, or run by another live runner), else ``None``."""
    previous = read_run_json(run_dir)
    if previous is not None and is_finished(run_dir, redo_diverged):
        return {**previous, "skipped": True}
    if previous is not None and _running_elsewhere(previous):
        # Another live runner (worker) on this host executes this run right now (a runner without the lock file, or
        # one that holds the lock and has written its run.json before this process tried the lock).
        return {**previous, "skipped": True, "running_elsewhere": True}
    return None


def execute_run(spec: RunSpec, out: Union[str, os.PathLike], redo_diverged: bool = False) -> dict[str, Any]:
    """
    Execute one run (blocking) unless it is already finished or running elsewhere; return its ``run.json`` content.

    Safe to call from a thread, a Ray task or a submitit job, also by several runners on the same grid: the run
    folder's lock (:func:`try_lock`) is held for the whole execution, and a run whose lock is held elsewhere is
    skipped. A previous unfinished attempt in the same folder is moved to ``attempts/<n>/`` first (never deleted), so
    the zoo log folder is always ``<task>_1``.

    :param spec: the run
    :param out: output root folder
    :param redo_diverged: also redo a run whose status is ``diverged``
    :return: the run's ``run.json`` content; ``skipped: True`` added if it was not executed here (finished, or
        ``running_elsewhere: True`` with status ``running`` when another process holds its lock)
    """
    run_dir = spec.run_dir(out)
    run_dir.mkdir(parents=True, exist_ok=True)
    skipped = _skipped(spec, run_dir, redo_diverged)
    if skipped is not None:
        return skipped
    lock = try_lock(run_dir)
    if lock is None:
        skipped = _skipped(spec, run_dir, redo_diverged)  # it may have finished meanwhile
        if skipped is not None:
            return skipped
        previous = read_run_json(run_dir) or {}
        return {**spec.identity(), **previous, "status": "running", "skipped": True, "running_elsewhere": True}
    try:
        # Checked again under the lock: another runner may have finished the run since the first check.
        skipped = _skipped(spec, run_dir, redo_diverged)
        if skipped is not None:
            return skipped
        return _execute_locked(spec, run_dir)
    finally:
        release_lock(lock)


def _execute_locked(spec: RunSpec, run_dir: Path) -> dict[str, Any]:
    """:func:`execute_run` once the run folder's lock is held and the run is to be done."""
    previous = read_run_json(run_dir)
    if previous is not None:
        _kill_orphan(previous, run_dir)
    previous_attempt = previous.get("attempt") if previous is not None else None
    set_aside_attempt(run_dir)
    attempt = max(previous_attempt if isinstance(previous_attempt, int) else 0, _n_attempts(run_dir)) + 1
    argv, env_vars = write_run_files(spec, run_dir)

    info: dict[str, Any] = {
        **spec.identity(),
        "eval_freq": spec.eval_freq,
        "eval_episodes": spec.eval_episodes,
        "threads": spec.threads,
        "status": "running",
        "started": time.time(),
        "finished": None,
        "wall_time_s": None,
        "env_steps_per_s": None,
        "returncode": None,
        "error_tail": None,
        "host": socket.gethostname(),
        "worker_pid": os.getpid(),
        "child_pid": None,
        "attempt": attempt,
        "versions": package_versions(),
        "command": command_line(argv, env_vars),
        **git_info(),
    }
    write_json_atomic(run_dir / RUN_JSON, info)

    env = {**os.environ, **env_vars}
    if SOURCE_ROOT is not None:
        # The train module must be importable from the repository root even without `pip install -e`.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SOURCE_ROOT), env.get("PYTHONPATH", "")) if p)
    start = time.monotonic()
    returncode: Optional[int] = None
    error: Optional[str] = None
    with open(run_dir / STDOUT_FILE, "wb") as out_f, open(run_dir / STDERR_FILE, "wb") as err_f:
        try:
            proc = subprocess.Popen(
                argv,  # argv[0] as in command.txt (found on the same PATH): the zoo's own command.txt stays portable
                cwd=work_root(),
                env=env,
                stdout=out_f,
                stderr=err_f,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # own process group: killable as a whole
                preexec_fn=_set_pdeathsig if sys.platform.startswith("linux") else None,
            )
        except OSError as e:
            error = f"could not start the train subprocess: {e}"
        else:
            with _LIVE_LOCK:
                _LIVE_CHILDREN[proc.pid] = proc
            info["child_pid"] = proc.pid
            write_json_atomic(run_dir / RUN_JSON, info)
            try:
                returncode = proc.wait()
            finally:
                with _LIVE_LOCK:
                    _LIVE_CHILDREN.pop(proc.pid, None)
    wall = time.monotonic() - start

    from sb3_ddpg_ext.callbacks import read_divergence_marker

    marker = read_divergence_marker(run_dir / DIVERGED_FILE)
    evaluations = find_evaluations(run_dir, spec.algo, spec.task)
    last_step = last_evaluation_step(evaluations)
    try:
        n_envs = int(spec.hyperparams.get("n_envs", 1))
    except (TypeError, ValueError):
        n_envs = 1
    if marker is not None:
        status = "diverged"
        error = f"diverged at step {marker.get('num_timesteps')}: {marker.get('reason')}"
    else:
        status, reason = decide_status(returncode, evaluations, last_step, spec.n_timesteps, spec.eval_freq, n_envs)
        if status != "done" and error is None:
            error = f"{reason}\n{_tail(run_dir / 'stderr.txt')}"
    # Throughput only where the number of env steps is known: the full budget of a done run, the divergence step
    # of a diverged one, otherwise the last evaluation step (a lower bound) if any.
    if status == "done":
        steps: Optional[int] = spec.n_timesteps
    elif marker is not None:
        steps = int(marker.get("num_timesteps") or 0)
    else:
        steps = last_step
    info.update(
        status=status,
        finished=time.time(),
        wall_time_s=wall,
        env_steps_per_s=steps / wall if steps is not None and wall > 0 else None,
        returncode=returncode,
        error_tail=error,
        evaluations=str(evaluations.relative_to(run_dir)) if evaluations is not None else None,
    )
    write_json_atomic(run_dir / RUN_JSON, info)
    return info
