"""Command line: ``python -m analysis report RUNS_DIR... --out DIR`` and ``python -m analysis random-scores ENV...``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable, Optional


def _int_at_least(minimum: int) -> Callable[[str], int]:
    """argparse type: an integer >= ``minimum`` (a usage error naming the value otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _open_unit(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1) (e.g. 0.95), got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m {__package__ or 'analysis'}", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report", help="build report.md / report.html / summary.csv / figures from run folders")
    r.add_argument("runs", nargs="+", help="runner output, zoo log folders or per-seed curve arrays (searched recursively)")
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--reps", type=_positive_int, default=2000, help="bootstrap replicates (default 2000)")
    r.add_argument("--confidence", type=_open_unit, default=0.95, help="CI coverage, in (0, 1) (default 0.95)")
    r.add_argument("--seed", type=int, default=0, help="seed of the bootstrap Generator (default 0)")
    r.add_argument(
        "--final-k", type=_positive_int, default=5, help="final return = mean of the last K evaluations (default 5)"
    )
    r.add_argument("--baseline", default=None, help="variant the others are compared with (default: 'baseline' or the first)")
    r.add_argument(
        "--min-fraction",
        type=_fraction,
        default=0.95,
        help="exclude runs whose last evaluation is below this fraction of their task's longest run (default 0.95)",
    )
    r.add_argument(
        "--curve-step", type=_positive_int, default=5000, help="steps between points of 1-D curve arrays (default 5000)"
    )
    r.add_argument(
        "--smooth",
        type=_positive_int,
        default=1,
        help="draw learning curves as a centred moving average over this many evaluations (default 1: raw; "
        "metrics always use the raw returns)",
    )
    r.add_argument(
        "--run-seeds",
        type=_non_negative_int,
        nargs="+",
        default=None,
        metavar="SEED",
        help="use only the runs of these seeds (default: all), e.g. a study in progress at a balanced point",
    )
    r.add_argument("--no-figures", action="store_true", help="tables only")
    r.add_argument(
        "--no-zoo-export",
        action="store_true",
        help="do not write zoo/<variant>/<algo>/<task>_<seed>/evaluations.npz (for rl_zoo3.plots.all_plots)",
    )
    m = sub.add_parser("random-scores", help="measure the return of a uniformly random policy")
    m.add_argument("envs", nargs="+")
    m.add_argument("--episodes", type=int, default=10)
    m.add_argument("--seed", type=int, default=0)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "report":
        from .report import ReportSettings, build_report

        if os.path.exists(args.out) and not os.path.isdir(args.out):
            parser.error(f"argument --out: {args.out} exists and is not a folder")
        settings = ReportSettings(
            reps=args.reps,
            confidence=args.confidence,
            seed=args.seed,
            final_k=args.final_k,
            baseline=args.baseline,
            min_fraction=args.min_fraction,
            curve_step=args.curve_step,
            figures=not args.no_figures,
            smooth=args.smooth,
            zoo_export=not args.no_zoo_export,
            run_seeds=tuple(args.run_seeds) if args.run_seeds is not None else None,
        )
        try:
            a = build_report(args.runs, args.out, settings)
        except (ValueError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        runs = a.loaded.runs
        print(f"{len(runs)} runs found, {int(runs['included'].astype(bool).sum())} used; report: {args.out}/report.html")
        from .report import timing_table

        print(timing_table(a.timings).to_string(index=False, float_format=lambda x: f"{x:.2f}"))
        return 0
    from .random_scores import measure_random_score

    for env_id in args.envs:
        print(json.dumps(measure_random_score(env_id, args.episodes, args.seed)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
