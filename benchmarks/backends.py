"""Execution backends of the benchmark runner: ``local`` (process pool), ``ray``, ``slurm`` (submitit).

Every backend executes :func:`benchmarks.runner.execute_run` once per run that is not finished yet and calls
``on_result(run_json)`` as runs end. The same suite file works on all three.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Optional

from sb3_ddpg_ext.run_folder import RUN_JSON, write_json_atomic

from .runner import execute_run, kill_live_children, release_lock, try_lock
from .suite import SOURCE_ROOT, RunSpec

__all__ = ["BACKENDS", "available_cores", "default_jobs", "run_local", "run_ray", "run_slurm"]

BACKENDS = ("local", "ray", "slurm")

ResultCallback = Callable[[dict[str, Any]], None]


def available_cores() -> int:
    """CPU cores this process may use (affinity mask if available)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_jobs(threads: int) -> int:
    """Parallel runs that use the cores without oversubscription: ``cores // threads`` (at least 1)."""
    return max(1, available_cores() // max(1, threads))


def _crash_info(spec: RunSpec, out: Path, error: str) -> dict[str, Any]:
    """
    Mark a run failed when the backend itself failed (worker crash, job killed ...).

    Never raises: if ``run.json`` cannot be written (or another process holds the run's lock), the reason is added to
    the returned ``error_tail`` and the grid goes on.
    """
    info: dict[str, Any] = {
        **spec.identity(),
        "status": "failed",
        "finished": time.time(),
        "host": socket.gethostname(),
        "error_tail": error[-4000:],
    }
    run_dir = spec.run_dir(out)
    try:
        if run_dir.is_dir():
            lock = try_lock(run_dir)
            if lock is None:
                info["error_tail"] += "\n(run.json not written: the run's lock is held by another process)"
                return info
            try:
                write_json_atomic(run_dir / RUN_JSON, info)
            finally:
                release_lock(lock)
    except OSError as e:
        info["error_tail"] += f"\n(could not record the failure in {run_dir / RUN_JSON}: {e})"
    return info


def _ensure_importable() -> None:
    """Let worker processes (Ray workers, submitit jobs) import ``benchmarks`` from the repository root (a source
    checkout; an installed wheel's ``sb3_ddpg_ext.benchmarks`` is importable anywhere)."""
    if SOURCE_ROOT is None:
        return
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if str(SOURCE_ROOT) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(SOURCE_ROOT), *paths) if p)


# ---------------------------------------------------------------------------------------------- local
def run_local(
    specs: list[RunSpec], out: Path, jobs: int, on_result: ResultCallback, redo_diverged: bool = False
) -> list[dict[str, Any]]:
    """
    Run with at most ``jobs`` train subprocesses at once (threads of this process wait on them).

    On ``KeyboardInterrupt`` / ``SystemExit`` the train subprocesses are killed (their runs end ``failed``) and the
    exception is re-raised. A ``kill -9`` of this process kills them too (Linux ``PR_SET_PDEATHSIG``).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    results = []
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="bench-run")
    futures: dict[Future, RunSpec] = {pool.submit(execute_run, spec, out, redo_diverged): spec for spec in specs}
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for future in done:
                spec = futures[future]
                try:
                    info = future.result()
                except Exception:
                    info = _crash_info(spec, out, traceback.format_exc())
                results.append(info)
                on_result(info)
    except BaseException:
        for future in futures:
            future.cancel()
        kill_live_children()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results


# ------------------------------------------------------------------------------------------------ ray
def run_ray(
    specs: list[RunSpec],
    out: Path,
    jobs: Optional[int],
    on_result: ResultCallback,
    redo_diverged: bool = False,
    address: Optional[str] = None,
) -> list[dict[str, Any]]:
    """
    One Ray task per run with ``num_cpus = threads``; Ray's scheduler packs them on the cluster's CPUs.

    Joins ``address`` (e.g. ``"auto"`` or ``"ray://host:10001"``) if given, else starts a local Ray; a Ray already
    initialised by the caller is reused. ``jobs`` (optional) caps the number of runs in flight.
    """
    import ray

    _ensure_importable()
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}})
    results = []
    remote = ray.remote(max_retries=0)(execute_run)
    queue = list(specs)
    in_flight: dict[Any, RunSpec] = {}
    limit = jobs if jobs else len(queue)
    try:
        while queue or in_flight:
            while queue and len(in_flight) < limit:
                spec = queue.pop(0)
                ref = remote.options(num_cpus=spec.threads).remote(spec, str(out), redo_diverged)
                in_flight[ref] = spec
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
            for ref in ready:
                spec = in_flight.pop(ref)
                try:
                    info = ray.get(ref)
                except Exception:
                    info = _crash_info(spec, out, traceback.format_exc())
                results.append(info)
                on_result(info)
    except BaseException:
        for ref in in_flight:
            ray.cancel(ref, force=True)
        raise
    return results


# ---------------------------------------------------------------------------------------------- slurm
def run_slurm(
    specs: list[RunSpec],
    out: Path,
    jobs: Optional[int],
    on_result: ResultCallback,
    redo_diverged: bool = False,
    partition: Optional[str] = None,
    time_min: int = 24 * 60,
    cpus: Optional[int] = None,
    cluster: Optional[str] = None,
    wait_for_results: bool = True,
    poll_s: float = 5.0,
) -> list[dict[str, Any]]:
    """
    Submit the runs as one submitit job array (SLURM), one array task per run.

    :param partition: SLURM partition
    :param time_min: time limit of each run, minutes
    :param cpus: CPUs per run (default: the suite's threads)
    :param jobs: maximum array tasks running at once (``--array=...%jobs``); ``None``: no limit
    :param cluster: submitit cluster (``None``: auto-detect, ``"local"``/``"debug"`` for tests)
    :param wait_for_results: wait for the jobs (with progress), else return after submitting
    :param poll_s: polling interval while waiting
    """
    import submitit

    if not specs:
        return []
    _ensure_importable()
    folder = out / specs[0].suite / ".submitit"
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    params: dict[str, Any] = {
        "timeout_min": int(time_min),
        "cpus_per_task": int(cpus or max(s.threads for s in specs)),
        "name": f"bench-{specs[0].suite}",
    }
    if partition:
        params["slurm_partition"] = partition
    if jobs:
        params["slurm_array_parallelism"] = int(jobs)
    executor.update_parameters(**params)
    n = len(specs)
    submitted = executor.map_array(execute_run, specs, [str(out)] * n, [redo_diverged] * n)
    print(f"submitted {n} runs as job array {submitted[0].job_id.split('_')[0]} (submitit folder {folder})", file=sys.stderr)
    if not wait_for_results:
        return []
    results = []
    pending = dict(zip(submitted, specs))
    while pending:
        for job in [j for j in pending if j.done()]:
            spec = pending.pop(job)
            try:
                info = job.result()
            except Exception:
                info = _crash_info(spec, out, traceback.format_exc())
            results.append(info)
            on_result(info)
        if pending:
            time.sleep(poll_s)
    return results


def run_backend(
    backend: str,
    specs: list[RunSpec],
    out: Path,
    jobs: Optional[int],
    on_result: ResultCallback,
    redo_diverged: bool = False,
    **options: Any,
) -> list[dict[str, Any]]:
    """Dispatch to :func:`run_local`, :func:`run_ray` or :func:`run_slurm` (``options``: backend-specific)."""
    out = Path(os.path.abspath(out))  # not resolve(): see benchmarks.runner.command_path
    if backend == "local":
        local_jobs = jobs or default_jobs(max((s.threads for s in specs), default=1))
        return run_local(specs, out, local_jobs, on_result, redo_diverged)
    if backend == "ray":
        return run_ray(specs, out, jobs, on_result, redo_diverged, address=options.get("ray_address"))
    if backend == "slurm":
        return run_slurm(
            specs,
            out,
            jobs,
            on_result,
            redo_diverged,
            partition=options.get("partition"),
            time_min=options.get("time_min") or 24 * 60,
            cpus=options.get("cpus"),
            cluster=options.get("slurm_cluster"),
            wait_for_results=options.get("wait", True),
        )
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
