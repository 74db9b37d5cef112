"""Run a whole suite (resumable) and summarise a grid's state: progress bar, summary table, ETA."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, TextIO, Union

from sb3_ddpg_ext.run_folder import FAILED_STATUSES, read_run_json

from .backends import default_jobs, run_backend
from .runner import is_finished, prepare_run, run_status
from .suite import RunSpec, Suite, expand_grid, load_suite

__all__ = ["MAX_EXIT_STATUS", "GridSummary", "check_out_dir", "format_summary", "run_suite", "summarize"]

#: Exit status cap (the exit status of ``run`` / ``status`` is the number of failed runs, capped).
MAX_EXIT_STATUS = 100


@dataclass
class GridSummary:
    """
    State of a grid on disk.

    :param counts: number of runs per status, per (task, variant) and in total (key ``None``)
    :param wall_times: wall times of the done runs (s)
    :param failures: ``(run key, status, last error line)`` of failed, diverged and corrupt runs
    """

    counts: dict[Optional[tuple[str, str]], Counter] = field(default_factory=dict)
    wall_times: list[float] = field(default_factory=list)
    failures: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def total(self) -> Counter:
        return self.counts.get(None, Counter())

    @property
    def n_failed(self) -> int:
        """Number of failed, diverged or corrupt runs."""
        return sum(self.total[s] for s in FAILED_STATUSES)

    @property
    def n_remaining(self) -> int:
        return sum(self.total[s] for s in ("pending", "running", "stale"))

    def eta_s(self, parallel: int, mean_wall_s: Optional[float] = None) -> Optional[float]:
        """Remaining time estimate: remaining runs x mean wall time of a run / parallel runs."""
        mean = mean_wall_s
        if mean is None and self.wall_times:
            mean = sum(self.wall_times) / len(self.wall_times)
        if mean is None:
            return None if self.n_remaining else 0.0
        waves = self.n_remaining / max(1, parallel)
        return waves * mean


def summarize(specs: list[RunSpec], out: Union[str, os.PathLike]) -> GridSummary:
    """Read the run folders of ``specs`` under ``out`` and count statuses."""
    summary = GridSummary()
    summary.counts[None] = Counter()
    for spec in specs:
        run_dir = spec.run_dir(out)
        status = run_status(run_dir)
        summary.counts.setdefault((spec.task, spec.variant), Counter())[status] += 1
        summary.counts[None][status] += 1
        info = read_run_json(run_dir) or {}
        if status == "done" and isinstance(info.get("wall_time_s"), (int, float)):
            summary.wall_times.append(float(info["wall_time_s"]))
        if status == "corrupt":
            summary.failures.append((spec.key, status, "run.json exists but cannot be read; `run` redoes the run"))
        elif status in FAILED_STATUSES:
            tail = str(info.get("error_tail") or "").strip().splitlines()
            summary.failures.append((spec.key, status, tail[-1] if tail else ""))
    return summary


def _fmt_duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def format_summary(summary: GridSummary, parallel: int = 1, title: str = "") -> str:
    """A plain-text table: one row per (task, variant), a total row, the ETA and the failures."""
    columns = ("done", "diverged", "failed", "corrupt", "running", "stale", "pending")
    rows = [(task, variant, counts) for key, counts in summary.counts.items() if key is not None for task, variant in [key]]
    task_w = max([len("task"), *(len(r[0]) for r in rows)])
    variant_w = max([len("variant"), *(len(r[1]) for r in rows)])
    header = f"{'task':<{task_w}}  {'variant':<{variant_w}}  " + "  ".join(f"{c:>8}" for c in columns)
    lines = [title] if title else []
    lines += [header, "-" * len(header)]
    for task, variant, counts in rows:
        lines.append(f"{task:<{task_w}}  {variant:<{variant_w}}  " + "  ".join(f"{counts[c]:>8}" for c in columns))
    lines.append("-" * len(header))
    total = summary.total
    lines.append(f"{'total':<{task_w}}  {'':<{variant_w}}  " + "  ".join(f"{total[c]:>8}" for c in columns))
    mean = sum(summary.wall_times) / len(summary.wall_times) if summary.wall_times else None
    lines.append(
        f"done {total['done']}, failed {summary.n_failed} (diverged {total['diverged']}, corrupt {total['corrupt']}), "
        f"remaining {summary.n_remaining}; "
        f"mean run {_fmt_duration(mean)}; ETA {_fmt_duration(summary.eta_s(parallel))} at {parallel} parallel runs"
    )
    for key, status, last in summary.failures:
        lines.append(f"  {status}: {key}: {last}")
    return "\n".join(lines)


class Progress:
    """A tqdm progress bar if tqdm is installed, else one plain line per finished run."""

    def __init__(self, total: int, initial: int, parallel: int, stream: TextIO, use_tqdm: bool = True) -> None:
        self.total = total
        self.count = initial
        self.parallel = parallel
        self.stream = stream
        self.walls: list[float] = []
        self.start = time.monotonic()
        self.bar: Any = None
        if use_tqdm:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, initial=initial, unit="run", file=stream, dynamic_ncols=True)
            except ImportError:
                self.bar = None

    def update(self, info: dict[str, Any]) -> None:
        self.count += 1
        wall = info.get("wall_time_s")
        if isinstance(wall, (int, float)) and not info.get("skipped"):
            self.walls.append(float(wall))
        remaining = self.total - self.count
        eta = remaining * (sum(self.walls) / len(self.walls)) / self.parallel if self.walls else None
        wall_txt = f"{wall:.1f}s" if isinstance(wall, (int, float)) else "-"
        status = "running elsewhere" if info.get("running_elsewhere") else info.get("status")
        line = (
            f"[{self.count}/{self.total}] {info.get('task')} {info.get('variant')} seed {info.get('seed')}: "
            f"{status} ({wall_txt}; ETA {_fmt_duration(eta)})"
        )
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
            self.bar.set_postfix_str(f"ETA {_fmt_duration(eta)}", refresh=False)
            self.bar.update(1)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def check_out_dir(out: Union[str, os.PathLike], suite_name: str) -> Path:
    """
    Create ``<out>/<suite_name>`` and check that files can be written there (before any run starts).

    :param out: output root
    :param suite_name: the suite's folder under it
    :return: ``<out>/<suite_name>``
    :raises ValueError: naming the path, if ``out`` is not a folder or the folder cannot be created or written
    """
    out = Path(out)
    if os.path.lexists(out) and not out.is_dir():
        raise ValueError(f"output folder {str(out)!r} exists and is not a folder")
    target = out / suite_name
    try:
        target.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write_check.", dir=target)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ValueError(f"output folder {str(target)!r} cannot be written: {e.strerror or e}") from e
    return target


def run_suite(
    suite: Union[str, os.PathLike, Suite],
    out: Union[str, os.PathLike] = "runs",
    backend: str = "local",
    jobs: Optional[int] = None,
    dry_run: bool = False,
    redo_diverged: bool = False,
    stream: Optional[TextIO] = None,
    use_tqdm: bool = True,
    **backend_options: Any,
) -> GridSummary:
    """
    Run every unfinished run of a suite and return the grid's summary (resumable: ``done`` runs are skipped).

    :param suite: a loaded :class:`Suite`, a shipped suite name or a suite file
    :param out: output root; runs go to ``<out>/<suite>/<task>/<variant>/seed_<s>/``
    :param backend: ``local``, ``ray`` or ``slurm``
    :param jobs: parallel runs (local: default ``cores // threads``; ray: cap on runs in flight; slurm: array
        parallelism)
    :param dry_run: write the ``hyperparams.yml`` and ``command.txt`` of the runs to do (no ``run.json``) and print
        their commands, which then run as printed from the repository root; start nothing
    :param redo_diverged: also redo runs that diverged
    :param stream: where progress and summary go (default: ``sys.stderr``)
    :param use_tqdm: use a tqdm bar when available
    :param backend_options: ``ray_address`` (ray); ``partition``, ``time_min``, ``cpus``, ``slurm_cluster``,
        ``wait`` (slurm)
    :return: the summary after the runs
    :raises ValueError: if the output folder cannot be written (before any run starts)
    """
    stream = sys.stderr if stream is None else stream
    suite = suite if isinstance(suite, Suite) else load_suite(suite)
    out = Path(os.path.abspath(out))  # not resolve(): a symlink inside the repository keeps repo-relative paths
    specs = expand_grid(suite)
    check_out_dir(out, suite.name)
    todo = [spec for spec in specs if not is_finished(spec.run_dir(out), redo_diverged)]
    parallel = jobs or default_jobs(suite.threads)
    print(
        f"suite {suite.name}: {len(specs)} runs, {len(specs) - len(todo)} finished, {len(todo)} to run "
        f"(backend {backend}, {parallel} parallel, {suite.threads} threads each) -> {out / suite.name}",
        file=stream,
    )
    if dry_run:
        for spec in todo:
            command = prepare_run(spec, out)
            print(command if command is not None else f"# {spec.key}: running elsewhere (locked)", file=stream)
        return summarize(specs, out)
    progress = Progress(len(specs), len(specs) - len(todo), parallel, stream=stream, use_tqdm=use_tqdm)
    try:
        run_backend(backend, todo, out, jobs, progress.update, redo_diverged, **backend_options)
    finally:
        progress.close()
    summary = summarize(specs, out)
    print(format_summary(summary, parallel, title=f"suite {suite.name} ({out / suite.name})"), file=stream)
    return summary


def exit_status(summary: GridSummary) -> int:
    """Number of failed (or diverged) runs, capped at :data:`MAX_EXIT_STATUS`."""
    return min(summary.n_failed, MAX_EXIT_STATUS)
