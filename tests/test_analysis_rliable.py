"""The report's cross-task statistics against rliable's definitions, on the TD3 paper's real curves.

rliable (Agarwal et al. 2021, google-research/rliable) is not a dependency (it breaks with pandas 3): its formulas
are written out here from ``rliable/metrics.py`` and ``rliable/library.py`` for a full ``(n_runs, n_tasks)`` matrix.
Two variants are built from the 7 tasks x 10 seeds of the paper: ``TD3`` (the curves as published) and
``TD3late`` (the same curves delayed by 10 evaluations = 50k steps, i.e. a slower learner). For unequal run
counts (rliable needs a full matrix), the reference is rliable's own reading, task by task: mean / median over
tasks of the per-task means, run-score distribution averaged over tasks.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from scipy import stats

from analysis.report import ReportSettings, analyse
from analysis.scores import lookup_scores

FINAL_K = 5
DELAY = 10  # evaluations (5,000 steps each)


def _rly_aggregates(x: np.ndarray) -> dict[str, float]:
    """rliable.metrics on a (n_runs, n_tasks) matrix: aggregate_median, _iqm, _mean, _optimality_gap (gamma=1)."""
    return {
        "Median": float(np.median(np.mean(x, axis=0))),
        "IQM": float(stats.trim_mean(x, proportiontocut=0.25, axis=None)),
        "Mean": float(np.mean(np.mean(x, axis=0))),
        "Optimality gap": float(1.0 - np.mean(np.minimum(x, 1.0))),
    }


def _rly_poi(x: np.ndarray, y: np.ndarray) -> float:
    """rliable.metrics.probability_of_improvement: per task Mann-Whitney U / (n_x n_y), averaged over tasks."""
    return float(np.mean([stats.mannwhitneyu(x[:, t], y[:, t]).statistic / (len(x) * len(y)) for t in range(x.shape[1])]))


def _rly_profile(x: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """rliable.library.create_performance_profile (score distribution): mean over all runs and tasks of score > tau."""
    return np.array([np.mean(x > tau) for tau in taus])


def _write_variants(src, dst) -> dict[tuple[str, str, int], np.ndarray]:
    """Copy the paper's curves as variant TD3 and write the delayed variant TD3late; return every curve."""
    curves = {}
    for f in sorted(src.rglob("TD3_*.npy")):
        _, rest = f.stem.split("_", 1)
        task, seed = rest.rsplit("_", 1)
        c = np.load(f)
        late = np.r_[np.full(DELAY, c[0]), c[:-DELAY]]
        (dst / task).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dst / task / f.name)
        np.save(dst / task / f"TD3late_{task}_{seed}.npy", late)
        curves[("TD3", task, int(seed))] = c
        curves[("TD3late", task, int(seed))] = late
    return curves


def _norm_finals(curves, variant: str, tasks: list[str], seeds: dict[str, list[int]]) -> list[np.ndarray]:
    cols = []
    for t in tasks:
        s = lookup_scores(t)
        assert s is not None
        finals = np.array([curves[(variant, t, i)][-FINAL_K:].mean() for i in seeds[t]])
        cols.append((finals - s.random) / (s.reference - s.random))
    return cols


@pytest.fixture(scope="module")
def td3(shared_datasets, tmp_path_factory):
    root = tmp_path_factory.mktemp("td3")
    curves = _write_variants(shared_datasets / "td3-paper-curves", root)
    settings = ReportSettings(reps=1000, seed=0, final_k=FINAL_K, baseline="TD3late", figures=False)
    return curves, root, analyse(root, settings)


def test_full_matrix_matches_rliable(td3):
    curves, _, a = td3
    tasks = sorted({t for _, t, _ in curves})
    assert len(tasks) == 7
    seeds = {t: list(range(10)) for t in tasks}
    agg = a.aggregates.set_index(["variant", "metric"])
    for v in ("TD3", "TD3late"):
        x = np.stack(_norm_finals(curves, v, tasks, seeds), axis=1)  # (10, 7)
        for metric, ref in _rly_aggregates(x).items():
            assert agg.loc[(v, metric), "point"] == pytest.approx(ref, rel=1e-12, abs=1e-12), (v, metric)
        assert agg.loc[(v, "Median"), "point"] != pytest.approx(np.median(x), abs=1e-6)  # the pooled median differs
        prof = a.profiles[a.profiles["variant"] == v]
        np.testing.assert_allclose(prof["point"], _rly_profile(x, prof["tau"].to_numpy()), atol=1e-12)
    x = np.stack(_norm_finals(curves, "TD3", tasks, seeds), axis=1)
    y = np.stack(_norm_finals(curves, "TD3late", tasks, seeds), axis=1)
    poi = a.poi.set_index("variant").loc["TD3"]
    assert poi["point"] == pytest.approx(_rly_poi(x, y), abs=1e-12)
    assert poi["point"] > 0.5  # learning 50k steps earlier helps on average


def test_sample_efficiency_at_recorded_steps_matches_rliable(td3):
    curves, _, a = td3
    tasks = sorted({t for _, t, _ in curves})
    se = a.sample_efficiency[a.sample_efficiency["variant"] == "TD3"]
    assert a.sample_efficiency_x == "timesteps"
    steps = se["x"].to_numpy()
    # recorded evaluation steps (every 5,000), first and last included: no interpolation
    assert steps[0] == 0 and steps[-1] == 1_000_000 and np.all(steps % 5000 == 0)
    idx = (steps // 5000).astype(int)
    for j, i in enumerate(idx):
        cols = []
        for t in tasks:
            s = lookup_scores(t)
            assert s is not None
            cols.append([(curves[("TD3", t, k)][i] - s.random) / (s.reference - s.random) for k in range(10)])
        x = np.array(cols).T  # (runs, tasks) at frame i, as rliable's IQM sample-efficiency curve
        assert se["point"].iloc[j] == pytest.approx(stats.trim_mean(x, 0.25, axis=None), abs=1e-12)


def _quantile_tol(samples: np.ndarray, q: float, n_reps: int, n_sigma: float = 5.0) -> float:
    """Monte-Carlo tolerance between two independent bootstrap estimates of a q-quantile (see test_analysis_metrics)."""
    lo, hi = np.quantile(samples, [q - 0.02, q + 0.02])
    se = np.sqrt(q * (1 - q) / n_reps) * max(hi - lo, 1e-12) / 0.04
    return n_sigma * np.sqrt(2.0) * se


def test_task_with_fewer_runs(td3, tmp_path):
    """Hopper-v1 keeps 4 of its 10 seeds for TD3: mean / median / profiles weight tasks equally."""
    curves, root, _ = td3
    sub = tmp_path / "fewer"
    shutil.copytree(root, sub)
    for seed in range(4, 10):
        (sub / "Hopper-v1" / f"TD3_Hopper-v1_{seed}.npy").unlink()
    a = analyse(sub, ReportSettings(reps=2000, seed=1, final_k=FINAL_K, baseline="TD3late", figures=False))
    tasks = sorted({t for _, t, _ in curves})
    seeds = {t: list(range(4)) if t == "Hopper-v1" else list(range(10)) for t in tasks}
    cols = _norm_finals(curves, "TD3", tasks, seeds)
    means = np.array([c.mean() for c in cols])
    agg = a.aggregates.set_index(["variant", "metric"])
    assert agg.loc[("TD3", "Mean"), "point"] == pytest.approx(means.mean(), abs=1e-12)
    assert agg.loc[("TD3", "Median"), "point"] == pytest.approx(np.median(means), abs=1e-12)
    assert agg.loc[("TD3", "Optimality gap"), "point"] == pytest.approx(
        1 - np.mean([np.minimum(c, 1).mean() for c in cols]), abs=1e-12
    )
    assert agg.loc[("TD3", "IQM"), "point"] == pytest.approx(stats.trim_mean(np.concatenate(cols), 0.25), abs=1e-12)
    # pooling runs would weigh Hopper 4/64 instead of 1/7: a different number here
    assert abs(agg.loc[("TD3", "Mean"), "point"] - np.concatenate(cols).mean()) > 1e-3
    prof = a.profiles[a.profiles["variant"] == "TD3"]
    ref = [np.mean([np.mean(c > tau) for c in cols]) for tau in prof["tau"]]
    np.testing.assert_allclose(prof["point"], ref, atol=1e-12)
    # the CI of the task-weighted mean: a loop over replicates, each task's runs resampled with replacement
    rng = np.random.default_rng(123)
    boot = np.array([np.mean([c[rng.integers(0, len(c), len(c))].mean() for c in cols]) for _ in range(2000)])
    for col, q in (("low", 0.025), ("high", 0.975)):
        assert abs(agg.loc[("TD3", "Mean"), col] - np.quantile(boot, q)) < _quantile_tol(boot, q, 2000)
    # the aggregate table flags the task with fewer than 5 runs
    assert agg.loc[("TD3", "Mean"), "min_runs_per_task"] == 4 and agg.loc[("TD3", "Mean"), "few_runs"]
    assert not agg.loc[("TD3late", "Mean"), "few_runs"]
