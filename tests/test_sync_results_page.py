"""scripts/sync_results_page.py: the results page quotes the report's tables between markers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("sync_results_page", REPO_ROOT / "scripts" / "sync_results_page.py")
assert spec is not None and spec.loader is not None
sync_results_page = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sync_results_page)

REPORT = """# DDPG benchmark report

## Ablation: noise

_Final return per task [95% CI]._

| variant | A-v1 |
|---|---|
| baseline | 1 [0, 2] |
| noise_ou | 3 [2, 4] |

## Runs reaching the reward threshold

_solved = ..._

| task | variant | solved |
|---|---|---|
| A-v1 | baseline | 1 / 2 |
| B-v0 | baseline | 2 / 2 |
| B-v0 | noise_ou | 0 / 2 |

## Figures
"""

PAGE = """# Results

text before

<!-- report: Ablation: noise -->
| old | table |
<!-- /report -->

middle

<!-- report: Runs reaching the reward threshold | B-v0 -->
<!-- /report -->
end
"""


def test_blocks_get_the_report_tables():
    text, n = sync_results_page.sync(REPORT, PAGE)
    assert n == 2
    assert "| old | table |" not in text
    noise = text.split("<!-- report: Ablation: noise -->\n")[1].split("<!-- /report -->")[0]
    table = "| variant | A-v1 |\n|---|---|\n| baseline | 1 [0, 2] |\n| noise_ou | 3 [2, 4] |\n"
    assert noise == "_Final return per task [95% CI]._\n\n" + table
    solved = text.split("| B-v0 -->\n")[1].split("<!-- /report -->")[0]
    assert "| B-v0 | baseline | 2 / 2 |" in solved and "| B-v0 | noise_ou | 0 / 2 |" in solved and "A-v1" not in solved
    assert text.startswith("# Results\n\ntext before\n") and text.endswith("<!-- /report -->\nend\n")
    again, _ = sync_results_page.sync(REPORT, text)
    assert again == text  # idempotent


@pytest.mark.parametrize(
    "block, culprit",
    [
        ("<!-- report: Ablation: layer_norm -->\n<!-- /report -->", "'Ablation: layer_norm'"),
        ("<!-- report: Runs reaching the reward threshold | C-v3 -->\n<!-- /report -->", "'C-v3'"),
    ],
)
def test_unknown_section_or_task_is_named_and_the_page_is_untouched(tmp_path, block, culprit, capsys):
    report, page = tmp_path / "report.md", tmp_path / "results.md"
    report.write_text(REPORT)
    page.write_text(PAGE + block + "\n")
    assert sync_results_page.main([str(report), str(page)]) == 1
    assert culprit in capsys.readouterr().err
    assert page.read_text() == PAGE + block + "\n"
