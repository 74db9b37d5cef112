"""Command line of the benchmark runner.

    python -m benchmarks run SUITE [--jobs N] [--backend local|ray|slurm] [--out DIR] [--dry-run]
    python -m benchmarks status SUITE [--out DIR]
    python -m benchmarks list

SUITE is a shipped suite name (``benchmarks/suites/<name>.yml``) or a path. The exit status of ``run`` and
``status`` is the number of failed (or diverged or corrupt) runs, capped at 100; 101 with a message on an invalid
suite or option value, e.g. an output folder that cannot be written (checked before any run starts); argparse usage
errors: 2.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Optional

from .backends import BACKENDS, default_jobs
from .grid import exit_status, format_summary, run_suite, summarize
from .suite import describe_suite, expand_grid, list_suites, load_suite

#: Exit status for an invalid suite or option value (an unwritable ``--out`` included).
USAGE_ERROR = 101


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {__package__ or 'benchmarks'}", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run (or resume) a suite")
    run.add_argument("suite", help="shipped suite name or suite file")
    run.add_argument("--out", default="runs", help="output root folder (default: runs)")
    run.add_argument("--jobs", "-j", type=int, default=None, help="parallel runs (default: cores // threads)")
    run.add_argument("--backend", choices=BACKENDS, default="local")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="write the hyperparams.yml and command.txt of each run to do (no run.json) and print the commands, which "
        "then run as printed from the repository root; start nothing",
    )
    run.add_argument("--redo-diverged", action="store_true", help="also redo runs that diverged")
    run.add_argument("--no-progress", action="store_true", help="plain lines instead of a tqdm bar")
    ray = run.add_argument_group("ray backend")
    ray.add_argument("--ray-address", default=None, help="Ray cluster address (e.g. auto); default: a local Ray")
    slurm = run.add_argument_group("slurm backend (submitit job array)")
    slurm.add_argument("--partition", default=None, help="SLURM partition")
    slurm.add_argument("--time", type=int, default=24 * 60, dest="time_min", help="time limit per run, minutes")
    slurm.add_argument("--cpus", type=int, default=None, help="CPUs per run (default: the suite's threads)")
    slurm.add_argument("--slurm-cluster", default=None, help="submitit cluster: auto-detect (default), slurm, local, debug")
    slurm.add_argument("--no-wait", action="store_true", help="submit and exit; check later with `status`")

    status = sub.add_parser("status", help="summary table of a suite's runs on disk")
    status.add_argument("suite")
    status.add_argument("--out", default="runs")
    status.add_argument("--jobs", "-j", type=int, default=None, help="parallel runs assumed for the ETA")

    sub.add_parser("list", help="list the shipped suites")
    return parser


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM behaves like Ctrl-C: the runner kills its train subprocesses before exiting.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        if args.command == "list":
            for path in list_suites():
                try:
                    print(describe_suite(load_suite(path, check_envs=False)))
                except ValueError as e:
                    print(f"{path.stem}: INVALID: {e}")
            return 0
        suite = load_suite(args.suite)
        if args.command == "status":
            if os.path.lexists(args.out) and not os.path.isdir(args.out):
                raise ValueError(f"output folder {args.out!r} exists and is not a folder")
            summary = summarize(expand_grid(suite), args.out)
            print(format_summary(summary, args.jobs or default_jobs(suite.threads), title=f"suite {suite.name}"))
            return exit_status(summary)
        if args.jobs is not None and args.jobs < 1:
            raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
        summary = run_suite(
            suite,
            out=args.out,
            backend=args.backend,
            jobs=args.jobs,
            dry_run=args.dry_run,
            redo_diverged=args.redo_diverged,
            use_tqdm=not args.no_progress,
            ray_address=args.ray_address,
            partition=args.partition,
            time_min=args.time_min,
            cpus=args.cpus,
            slurm_cluster=args.slurm_cluster,
            wait=not args.no_wait,
        )
        return 0 if args.dry_run else exit_status(summary)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("interrupted: unfinished runs are redone on the next `run`", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of stdout went away (e.g. `| head`, `| grep -q`): nothing more to say; stdout to /dev/null so
        # that the interpreter's last flush does not fail again (the Python docs' recipe, exit status 1)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
