"""What a report hands on: its tables (CSV, LaTeX), how to reproduce it, and a folder the zoo's own plotting reads.

* :func:`write_tables`: every table of an :class:`~analysis.study.Analysis` as CSV, and ``tables.tex``
  (:func:`latex_tables`, from the display tables :func:`final_scores_table`, :func:`aggregates_table`,
  :func:`poi_table` the Markdown/HTML report shows too; the report also shows :func:`factor_table` and
  :func:`solved_table`);

* :func:`run_commands`: one command per variant (per task where the commands differ by more than the task) with
  ``{task}`` and ``{seed}`` as parameters, from the runner's ``command.txt``;
* :func:`code_commits` / :func:`analysis_commit`: the code commit(s) the runs and the analysis were made with;
* :func:`latex_table`: a booktabs ``tabular`` (no jinja2 needed);
* :func:`export_zoo_layout`: ``<out>/<variant>/<algo>/<task>_<seed>/evaluations.npz``, the layout
  ``python -m rl_zoo3.plots.all_plots -a <algo> -e <task> -f <out>/<variant> ... -l <variant> ...`` groups per variant
  (``all_plots`` takes ``<exp_folder>/<algo>/`` and every sub-folder whose name contains the env id as one trial
  of that folder: given the runner's ``<variant>/seed_<s>/logs`` folders it sees one method per seed).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from .load import PathLike
from .metrics import AGGREGATES
from .study import Analysis

REPO_ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------------------
# Reproduction
# ------------------------------------------------------------------------------------------------------------
def command_template(command: str, task: str, seed: int) -> str:
    """Replace the task and the seed of one run's command by ``{task}`` and ``{seed}``.

    The seed is replaced where it is one (``--seed 3``, ``seed_3`` path components), the task wherever it appears as
    a whole word (``--env Hopper-v5``, ``.../Hopper-v5/...``).

    :param command: the command line (``command.txt``).
    :param task: the run's task.
    :param seed: the run's seed.
    :return: the template.
    """
    out = re.sub(rf"(--seed[ =]){seed}(?![\w.-])", r"\g<1>{seed}", command)
    out = re.sub(rf"(?<![\w.-])seed_{seed}(?![\w.-])", "seed_{seed}", out)
    return re.sub(rf"(?<![\w.-]){re.escape(task)}(?![\w.-])", "{task}", out)


def _ranges(seeds: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    s = sorted({int(x) for x in seeds})
    parts, i = [], 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[j] + 1:
            j += 1
        parts.append(f"{s[i]}-{s[j]}" if j > i else f"{s[i]}")
        i = j + 1
    return ", ".join(parts)


def run_commands(runs: pd.DataFrame) -> pd.DataFrame:
    """The commands that reproduce the runs: one row per variant whose runs share one template (``{task}``,
    ``{seed}`` substituted), else one row per (variant, task) template.

    :param runs: run table (columns ``variant, task, seed, command``); runs without a command are counted as such.
    :return: columns ``variant, tasks, seeds, n_runs, command``.
    """
    cols = ["variant", "tasks", "seeds", "n_runs", "command"]
    if runs.empty or "command" not in runs.columns:
        return pd.DataFrame(columns=cols)
    rows = []
    for variant, vdf in runs.groupby("variant", sort=True, dropna=False):
        templates: dict[str, list[tuple[str, int]]] = {}
        for task, seed, cmd in zip(vdf["task"], vdf["seed"], vdf["command"]):
            if not isinstance(cmd, str) or not cmd:
                key = "(not recorded: zoo logs or curve files have no command.txt)"
            else:
                key = command_template(cmd, str(task), int(seed))
            templates.setdefault(key, []).append((str(task), int(seed)))
        for cmd, members in sorted(templates.items()):
            tasks = sorted({t for t, _ in members})
            rows.append(
                {
                    "variant": variant,
                    "tasks": ", ".join(tasks),
                    "seeds": _ranges([s for _, s in members]),
                    "n_runs": len(members),
                    "command": cmd,
                }
            )
    return pd.DataFrame(rows, columns=cols)


def code_commits(runs: pd.DataFrame) -> pd.DataFrame:
    """Code commits recorded by the runs (``run.json`` ``git_commit``) with their number of runs."""
    if runs.empty or "git_commit" not in runs.columns:
        return pd.DataFrame(columns=["git_commit", "n_runs"])
    commits = runs["git_commit"].map(lambda c: c if isinstance(c, str) and c else "not recorded (zoo logs / curves)")
    return commits.value_counts().rename_axis("git_commit").reset_index(name="n_runs").sort_values("git_commit")


#: What a report's numbers depend on, relative to the repository root: the analysis and the run-folder reading
#: it imports from the package. Changes elsewhere (e.g. the report's own files being rewritten under results/)
#: do not make the analysis code "dirty".
ANALYSIS_CODE_PATHS = ("analysis", "sb3_ddpg_ext")


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=False)


def analysis_commit(root: Optional[Path] = None) -> str:
    """The commit of the analysis code, with ``-dirty`` if :data:`ANALYSIS_CODE_PATHS` have uncommitted changes
    to tracked files, or a reason.

    :param root: the repository (default: the one holding this package).
    """
    root = REPO_ROOT if root is None else root
    try:
        head = _git(root, "rev-parse", "HEAD")
        status = _git(root, "status", "--porcelain", "--untracked-files=no", "--", *ANALYSIS_CODE_PATHS)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown ({type(exc).__name__})"
    if head.returncode != 0 or not head.stdout.strip() or status.returncode != 0:
        return "unknown (not a git checkout)"
    return head.stdout.strip() + ("-dirty" if status.stdout.strip() else "")


def report_command(inputs: Sequence[str], out: PathLike, options: dict[str, object]) -> str:
    """The ``python -m analysis report`` command line that rebuilds a report with these settings."""
    argv = ["python", "-m", __package__ or "analysis", "report", *inputs, "--out", str(out)]
    for flag, value in options.items():
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, str(value)]
    return shlex.join(argv)


# ------------------------------------------------------------------------------------------------------------
# LaTeX
# ------------------------------------------------------------------------------------------------------------
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters."""
    return "".join(_LATEX_SPECIAL.get(c, c) for c in str(text))


def fmt_ci(point: float, low: float, high: float, digits: int = 3) -> str:
    """``"point [low, high]"`` with ``digits`` significant digits; no interval when it is undefined (NaN)."""

    def f(x: float) -> str:
        return f"{x:.0f}" if abs(x) >= 10 ** (digits - 1) else f"{x:.{digits}g}"

    if pd.isna(point):
        return ""
    if pd.isna(low) or pd.isna(high):
        return f(point)
    return f"{f(point)} [{f(low)}, {f(high)}]"


def latex_table(df: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs table (``\\toprule``, ``\\midrule``, ``\\bottomrule``) of ``df``'s cells as strings.

    :param df: the table (values are written with ``str``; NaN as empty).
    :param caption: caption (escaped).
    :param label: ``\\label`` key.
    :return: a ``table`` environment (needs ``\\usepackage{booktabs}``).
    """
    align = "l" * min(2, len(df.columns)) + "r" * max(0, len(df.columns) - 2)
    lines = [
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{latex_escape(caption)}}}",
        f"\\label{{{label}}}",
        f"\\begin{{tabular}}{{{align}}}",
        "\\toprule",
        " & ".join(latex_escape(c) for c in df.columns) + " \\\\",
        "\\midrule",
    ]
    for row in df.itertuples(index=False):
        lines.append(" & ".join("" if pd.isna(v) else latex_escape(str(v)) for v in row) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------------
# rl-zoo3 plotting layout
# ------------------------------------------------------------------------------------------------------------
def _safe(name: str) -> str:
    return re.sub(r"[^\w.+-]", "_", name)


def export_zoo_layout(runs: pd.DataFrame, out: PathLike, link: bool = False) -> pd.DataFrame:
    """Write the included runs' ``evaluations.npz`` as ``<out>/<variant>/<algo>/<task>_<seed>/evaluations.npz``.

    ``python -m rl_zoo3.plots.all_plots -a <algo> -e <task>... -f <out>/<v1> <out>/<v2> ... -l <v1> <v2> ...`` then
    plots one curve per variant over its seeds (and its table gives one column per variant). Curve files and runs
    without an ``evaluations.npz`` are not exported (listed with ``exported = False``).

    :param runs: run table of :class:`~analysis.load.LoadResult` (``included, variant, algo, task, seed, source, path``).
    :param out: export folder (created).
    :param link: symlink the files instead of copying them.
    :return: one row per included run: ``variant, algo, task, seed, exported, target``.
    """
    out = Path(out)
    rows = []
    inc = runs[runs["included"].astype(bool)]
    for r in inc.itertuples(index=False):
        npz = _find_npz(Path(str(r.path)), str(r.source))
        algo = str(r.algo or "unknown").lower()
        target = out / _safe(str(r.variant)) / algo / f"{r.task}_{int(r.seed)}" / "evaluations.npz"
        if npz is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists() or target.is_symlink():
                target.unlink()
            if link:
                target.symlink_to(npz.resolve())
            else:
                shutil.copyfile(npz, target)
        rows.append(
            {
                "variant": r.variant,
                "algo": algo,
                "task": r.task,
                "seed": r.seed,
                "exported": npz is not None,
                "target": str(target) if npz is not None else "",
            }
        )
    return pd.DataFrame(rows, columns=["variant", "algo", "task", "seed", "exported", "target"])


def _find_npz(path: Path, source: str) -> Optional[Path]:
    if source == "zoo":
        p = path / "evaluations.npz"
        return p if p.exists() else None
    if source == "runner":
        found = sorted((path / "logs").rglob("evaluations.npz"))
        return found[-1] if found else None
    return None


def zoo_plot_command(export: pd.DataFrame, out: PathLike) -> str:
    """The ``rl_zoo3.plots.all_plots`` command for an export (all algos, tasks and variants)."""
    done = export[export["exported"]]
    if done.empty:
        return ""
    variants = sorted(done["variant"].map(str).unique())
    argv = ["python", "-m", "rl_zoo3.plots.all_plots", "-a", *sorted(done["algo"].unique())]
    argv += ["-e", *sorted(done["task"].map(str).unique())]
    argv += ["-f", *[str(Path(out) / _safe(v)) for v in variants], "-l", *variants]
    argv += ["-max", str(10**12), "--no-display", "-o", str(Path(out) / "zoo_results")]
    return shlex.join(argv)


def final_scores_table(a: Analysis) -> pd.DataFrame:
    """Per task and variant: final return and normalised final score with their CIs (``point [low, high]``)."""
    sm = a.summary[a.summary["n_runs"] > 0]
    return pd.DataFrame(
        {
            "task": sm["task"],
            "variant": sm["variant"],
            "n_runs": sm["n_runs"].astype(int),
            "final return": [fmt_ci(*r) for r in zip(sm["final_mean"], sm["final_ci_low"], sm["final_ci_high"])],
            "normalised": [fmt_ci(*r) for r in zip(sm["final_norm_mean"], sm["final_norm_ci_low"], sm["final_norm_ci_high"])],
            "few runs": sm["few_runs"].map(lambda f: "yes" if f else ""),
        }
    ).reset_index(drop=True)


def aggregates_table(a: Analysis) -> pd.DataFrame:
    """One row per variant, one column per aggregate metric (``point [low, high]``)."""
    rows = []
    for v, vdf in a.aggregates.groupby("variant", sort=False):
        m = vdf.set_index("metric")
        row: dict[str, Any] = {
            "variant": v,
            "n_tasks": int(m["n_tasks"].iloc[0]),
            "min runs/task": int(m["min_runs_per_task"].iloc[0]),
        }
        for name in AGGREGATES:
            row[name] = fmt_ci(m.loc[name, "point"], m.loc[name, "low"], m.loc[name, "high"])
        row["few runs"] = "yes" if bool(m["few_runs"].iloc[0]) else ""
        rows.append(row)
    return pd.DataFrame(rows, columns=["variant", "n_tasks", "min runs/task", *AGGREGATES, "few runs"])


def poi_table(a: Analysis) -> pd.DataFrame:
    """Probability of improvement over the baseline (``point [low, high]``)."""
    return pd.DataFrame(
        {
            "variant": a.poi["variant"],
            "P(variant > baseline)": [fmt_ci(*r) for r in zip(a.poi["point"], a.poi["low"], a.poi["high"])],
            "baseline": a.poi["baseline"],
            "n_tasks": a.poi["n_tasks"],
            "min runs/task": a.poi["min_runs_per_task"],
            "few runs": a.poi["few_runs"].map(lambda f: "yes" if f else ""),
        }
    )


def factor_table(a: Analysis, factor: str) -> pd.DataFrame:
    """One ablation factor at a glance: the baseline and the factor's variants (rows) against every task's final
    return (``point [low, high]``, runs in brackets when fewer than the report's ``MIN_RUNS``), the IQM of the final
    normalised score and the probability of improvement over the baseline (both ``point [low, high]``).

    :param a: the analysis.
    :param factor: a key of ``a.factors``.
    :return: the table (empty when the factor has no variant with runs).
    """
    base = [a.baseline] if a.baseline and a.baseline not in a.factors[factor] else []
    shown = base + list(a.factors[factor])
    sm = a.summary[(a.summary["n_runs"] > 0) & a.summary["variant"].isin(shown)]
    tasks = list(dict.fromkeys(a.summary.loc[a.summary["n_runs"] > 0, "task"]))
    agg = a.aggregates[a.aggregates["metric"] == "IQM"].set_index("variant") if len(a.aggregates) else None
    poi = a.poi.set_index("variant") if len(a.poi) else None
    rows = []
    for v in shown:
        cells = sm[sm["variant"] == v].set_index("task")
        if cells.empty:
            continue
        row: dict[str, str] = {"variant": v}
        for t in tasks:
            if t not in cells.index:
                row[t] = ""
                continue
            c = cells.loc[t]
            few = f" ({int(c['n_runs'])})" if bool(c["few_runs"]) else ""
            row[t] = fmt_ci(c["final_mean"], c["final_ci_low"], c["final_ci_high"]) + few
        if agg is not None:
            row["IQM (normalised)"] = fmt_ci(*agg.loc[v, ["point", "low", "high"]]) if v in agg.index else ""
        if poi is not None:
            row[f"P(> {a.baseline})"] = fmt_ci(*poi.loc[v, ["point", "low", "high"]]) if v in poi.index else ""
        rows.append(row)
    return pd.DataFrame(rows)


def run_finals_table(a: Analysis) -> pd.DataFrame:
    """The final return of every included run: one row per task and variant (tasks in the summary's order, variants
    in the report's), one column per seed (``seed <k>``, empty where the cell has no included run of that seed), as
    numbers (the report's table formatting rounds them). The values behind every mean in the report.

    :param a: the analysis.
    :return: ``task, variant, seed 0, seed 1, ...``.
    """
    rs = a.run_scores
    if rs.empty:
        return pd.DataFrame(columns=["task", "variant"])
    seeds = sorted(int(x) for x in rs["seed"].dropna().unique())
    by_cell = rs.groupby(["task", "variant"])
    rows = []
    for task in dict.fromkeys(a.summary["task"]):
        for v in a.variants:
            if (task, v) not in by_cell.groups:
                continue
            cell = by_cell.get_group((task, v)).groupby("seed")["final"].mean()  # runs sharing a seed: their mean
            row: dict[str, object] = {"task": task, "variant": v}
            row.update({f"seed {k}": float(cell[k]) if k in cell.index else np.nan for k in seeds})
            rows.append(row)
    return pd.DataFrame(rows, columns=["task", "variant", *[f"seed {k}" for k in seeds]])


def solved_table(a: Analysis) -> pd.DataFrame:
    """Runs reaching their task's reward threshold: ``task, variant, threshold``, ``solved`` as ``"k / n"`` and ``p``,
    the Fisher's exact p-value against the baseline to 3 significant digits (empty for the baseline itself and where
    the baseline has no runs on the task).

    :param a: the analysis (``a.solved``).
    :return: the table (empty when ``a.solved`` is).
    """
    cols = ["task", "variant", "threshold", "solved", "p"]
    s = a.solved
    if s.empty:
        return pd.DataFrame(columns=cols)
    return pd.DataFrame(
        {
            "task": s["task"],
            "variant": s["variant"],
            "threshold": s["threshold"].astype(float),
            "solved": [f"{int(k)} / {int(n)}" for k, n in zip(s["n_solved"], s["n_runs"])],
            "p": ["" if pd.isna(p) else f"{p:.3g}" for p in s["p_vs_baseline"]],
        },
        columns=cols,
    ).reset_index(drop=True)


def latex_tables(a: Analysis) -> str:
    """``tables.tex``: the per-task final scores, aggregate metrics and probability of improvement (booktabs)."""
    conf = f"{a.settings.confidence:.0%}"
    k = a.settings.final_k
    parts = [
        "% Generated by python -m analysis report; needs \\usepackage{booktabs}\n",
        latex_table(
            final_scores_table(a),
            f"Final return (mean of the last {k} evaluations) per task, mean over runs with {conf} bootstrap CI, "
            "raw and normalised ((return - random) / (reference - random)).",
            "tab:final-scores",
        ),
    ]
    if len(a.aggregates):
        parts.append(
            latex_table(
                aggregates_table(a),
                f"Aggregate final normalised score with {conf} stratified-bootstrap CIs (as in rliable: median and mean "
                "over tasks of per-task means, IQM of all runs pooled; optimality gap: lower is better).",
                "tab:aggregates",
            )
        )
    if len(a.poi):
        parts.append(latex_table(poi_table(a), f"Probability of improvement over {a.baseline} with {conf} CIs.", "tab:poi"))
    return "\n".join(parts)


def write_tables(a: Analysis, out: Path) -> None:
    """Write the analysis' tables into ``out``: ``summary.csv``, ``inventory.csv``, ``aggregates.csv``, ``poi.csv``,
    ``solved.csv`` (runs reaching the reward threshold), ``resolution.csv`` (what the runs can resolve),
    ``run_scores.csv``, ``normalisation.csv``, the figures' data
    (``curves.csv``, ``profiles.csv``, ``sample_efficiency.csv``; the ablation figures show rows of
    ``aggregates.csv``), ``tables.tex`` and ``commands.csv``.

    :param a: the analysis.
    :param out: an existing folder.
    """
    a.summary.to_csv(out / "summary.csv", index=False)
    a.inventory.to_csv(out / "inventory.csv", index=False)
    a.aggregates.to_csv(out / "aggregates.csv", index=False)
    a.poi.to_csv(out / "poi.csv", index=False)
    a.solved.to_csv(out / "solved.csv", index=False)
    a.resolution.to_csv(out / "resolution.csv", index=False)
    a.run_scores.to_csv(out / "run_scores.csv", index=False)
    a.normalisation.to_csv(out / "normalisation.csv", index=False)
    a.curves.to_csv(out / "curves.csv", index=False)
    a.profiles.to_csv(out / "profiles.csv", index=False)
    a.sample_efficiency.rename(columns={"x": a.sample_efficiency_x}).to_csv(out / "sample_efficiency.csv", index=False)
    (out / "tables.tex").write_text(latex_tables(a), encoding="utf-8")
    run_commands(a.loaded.runs[a.loaded.runs["included"].astype(bool)]).to_csv(out / "commands.csv", index=False)
