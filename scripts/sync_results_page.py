"""Copy tables of a report (``report.md``) into a results page between markers, so that the page quotes the
committed report instead of numbers typed by hand.

In the page, a block::

    <!-- report: Ablation: noise -->
    ...anything (replaced)...
    <!-- /report -->

gets the first table of the report's section ``## Ablation: noise`` (with its caption line); a section name with
``| <task>`` after it (``<!-- report: Runs reaching the reward threshold | MountainCarContinuous-v0 -->``) keeps only
the table rows whose first cell is that task. Usage, from the repository root::

    python scripts/sync_results_page.py results/study_v1/report/report.md docs/results.md
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

BLOCK = re.compile(r"(<!-- report: (?P<spec>[^\n]+?) -->\n)(?P<body>.*?)(<!-- /report -->)", re.DOTALL)


def report_sections(report_md: str) -> dict[str, list[str]]:
    """``## <name>`` -> the lines of that section (up to the next ``#``/``##`` heading)."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in report_md.splitlines():
        if line.startswith("## ") or line.startswith("# "):
            current = line.lstrip("#").strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return sections


def section_table(lines: list[str], task: str = "") -> str:
    """The caption (an ``_italic_`` line right before the table, if any) and the first table of a section; with
    ``task``, only the rows whose first cell is ``task`` (and the header)."""
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if start is None:
        raise ValueError("section has no table")
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    rows = lines[start:end]
    if task:
        body = [r for r in rows[2:] if r.split("|")[1].strip() == task]
        if not body:
            raise ValueError(f"no row for task {task!r}")
        rows = rows[:2] + body
    caption = [lines[start - 2]] if start >= 2 and lines[start - 2].startswith("_") else []
    return "\n".join(caption + ([""] if caption else []) + rows) + "\n"


def sync(report_md: str, page: str) -> tuple[str, int]:
    """The page with every marked block replaced; and the number of blocks.

    :raises ValueError: naming the block whose section or task is not in the report.
    """
    sections = report_sections(report_md)
    count = 0

    def replace(m: re.Match[str]) -> str:
        nonlocal count
        name, _, task = (part.strip() for part in m.group("spec").partition("|"))
        if name not in sections:
            raise ValueError(f"report has no section {name!r} (block {m.group(1).strip()})")
        try:
            table = section_table(sections[name], task)
        except ValueError as exc:
            raise ValueError(f"{m.group(1).strip()}: {exc}") from None
        count += 1
        return m.group(1) + table + m.group(4)

    return BLOCK.sub(replace, page), count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="the report.md to quote")
    parser.add_argument("page", type=Path, help="the page to update in place")
    args = parser.parse_args(argv)
    try:
        text, n = sync(args.report.read_text(), args.page.read_text())
    except ValueError as exc:
        print(f"sync_results_page: {args.page}: {exc}", file=sys.stderr)
        return 1
    args.page.write_text(text)
    print(f"sync_results_page: {n} tables of {args.report} copied into {args.page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
