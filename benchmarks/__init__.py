"""Benchmark runner: suites of task x variant x seed, each run one reproducible rl-zoo3 command.

``python -m benchmarks run SUITE`` (see :mod:`benchmarks.__main__`). Public API:

- :func:`load_suite`, :func:`expand_grid`, :class:`Suite`, :class:`RunSpec` (:mod:`benchmarks.suite`);
- :func:`execute_run`, :func:`run_status` (:mod:`benchmarks.runner`);
- :func:`run_suite`, :func:`summarize`, :func:`format_summary` (:mod:`benchmarks.grid`);
- the backends ``local``, ``ray``, ``slurm`` (:mod:`benchmarks.backends`).
"""

from .grid import format_summary, run_suite, summarize
from .runner import execute_run, run_status
from .suite import RunSpec, Suite, expand_grid, list_suites, load_suite

__all__ = [
    "RunSpec",
    "Suite",
    "execute_run",
    "expand_grid",
    "format_summary",
    "list_suites",
    "load_suite",
    "run_status",
    "run_suite",
    "summarize",
]
