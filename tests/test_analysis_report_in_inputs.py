"""A report written inside the folder it reads (``results/<suite>/report``) is not read back as runs."""

from __future__ import annotations

import pandas as pd

from analysis.__main__ import main
from analysis.load import load_runs
from analysis.synthetic import synthetic_suite


def test_report_inside_its_inputs_is_skipped_on_rerun(tmp_path):
    synthetic_suite(
        tmp_path,
        ["Hopper-v5"],
        {"baseline": (None, 1.0), "ln_both": ("layer_norm", 0.8)},
        n_seeds=3,
        n_points=8,
        budget=8000,
        seed=2,
    )
    suite = tmp_path / "synthetic"
    out = suite / "report"
    assert main(["report", str(suite), "--out", str(out), "--no-figures", "--reps", "200"]) == 0
    first = (out / "summary.csv").read_bytes()
    assert (out / "zoo").is_dir()  # the zoo/ export copies every run's evaluations.npz into the inputs
    # run again on the same folder, now holding the report and its zoo/ copies
    assert main(["report", str(suite), "--out", str(out), "--no-figures", "--reps", "200"]) == 0
    assert (out / "summary.csv").read_bytes() == first
    assert set(pd.read_csv(out / "summary.csv")["n_runs"]) == {3}
    assert len(load_runs([suite]).runs["run"].unique()) == 6
