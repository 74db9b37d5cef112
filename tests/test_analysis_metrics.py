"""Metric definitions and the stratified bootstrap against slow reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from analysis.metrics import (
    aggregate_iqm,
    aggregate_mean,
    aggregate_median,
    aggregate_optimality_gap,
    aggregate_pooled_median,
    all_aggregates,
    area_under_curve,
    bootstrap_mean_curve_ci,
    detectable_difference,
    final_return,
    iqm,
    max_of_mean,
    pooled_std,
    probability_of_improvement,
    run_score_distribution,
    stratified_bootstrap_ci,
    stratified_indices,
)


def test_curve_metrics_by_hand():
    curves = np.array([[0.0, 1.0, 3.0, 5.0], [2.0, 3.0, 3.0, 1.0]])
    steps = np.array([0, 10, 20, 40])
    np.testing.assert_allclose(final_return(curves, 1), [5.0, 1.0])
    np.testing.assert_allclose(final_return(curves, 2), [4.0, 2.0])
    assert max_of_mean(curves) == 3.0  # mean curve [1, 2, 3, 3]
    # trapezoids / span: run 0: (0.5*10 + 2*10 + 4*20) / 40
    np.testing.assert_allclose(area_under_curve(curves, steps), [(5 + 20 + 80) / 40, (25 + 30 + 40) / 40])
    with pytest.raises(ValueError, match="k must be"):
        final_return(curves, 5)
    with pytest.raises(ValueError, match="steps shape"):
        area_under_curve(curves, steps[:3])


# rliable's definitions (rliable/metrics.py), written out for a full (n_runs, n_tasks) matrix
def _rly_mean(x):
    return np.mean(np.mean(x, axis=0))


def _rly_median(x):
    return np.median(np.mean(x, axis=0))


def _rly_iqm(x):
    return stats.trim_mean(x, proportiontocut=0.25, axis=None)


def _rly_og(x, gamma=1.0):
    return gamma - np.mean(np.minimum(x, gamma))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 8, 13, 40])
def test_aggregates_match_rliable_definitions(n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 3)) * np.array([1.0, 3.0, 0.3]) + np.array([0.0, 1.0, -2.0])
    assert aggregate_iqm(x) == pytest.approx(_rly_iqm(x))
    assert aggregate_median(x) == pytest.approx(_rly_median(x))
    assert aggregate_mean(x) == pytest.approx(_rly_mean(x))
    assert aggregate_optimality_gap(x, 0.5) == pytest.approx(_rly_og(x, 0.5))
    assert aggregate_pooled_median(x) == pytest.approx(np.median(x))
    np.testing.assert_allclose(all_aggregates(x), [_rly_median(x), _rly_iqm(x), _rly_mean(x), _rly_og(x)])
    assert iqm(x.ravel()) == pytest.approx(stats.trim_mean(x.ravel(), 0.25))


def test_median_is_over_task_means_not_pooled():
    # task 0 has runs {0, 0, 10}, task 1 {1, 1, 1}, task 2 {2, 2, 2}: task means 10/3, 1, 2 -> median 2;
    # the pooled median of the nine scores is 1
    x = np.array([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0], [10.0, 1.0, 2.0]])
    assert aggregate_median(x) == 2.0
    assert aggregate_pooled_median(x) == 1.0


def test_aggregates_weight_tasks_equally_with_unequal_run_counts():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4)) + np.array([0.0, 5.0, 1.0, -1.0])
    x[4:, 1] = np.nan  # 4 runs
    x[3:, 3] = np.nan  # 3 runs
    cols = [c[~np.isnan(c)] for c in x.T]
    means = np.array([c.mean() for c in cols])
    assert aggregate_mean(x) == pytest.approx(means.mean())
    assert aggregate_median(x) == pytest.approx(np.median(means))
    assert aggregate_optimality_gap(x) == pytest.approx(1 - np.mean([np.minimum(c, 1).mean() for c in cols]))
    valid = np.concatenate(cols)
    assert aggregate_iqm(x) == pytest.approx(stats.trim_mean(valid, 0.25))  # IQM pools, as rliable
    # the pooled mean weighs task 0 and 2 (6 runs) more than task 1 (4 runs): it differs here
    assert abs(aggregate_mean(x) - valid.mean()) > 0.1
    # batch axes are reduced independently
    batch = np.stack([x, x + 1.0])
    np.testing.assert_allclose(aggregate_iqm(batch), [aggregate_iqm(x), aggregate_iqm(x) + 1.0])
    np.testing.assert_allclose(all_aggregates(batch)[1][:3], all_aggregates(x)[:3] + 1.0)
    np.testing.assert_allclose(all_aggregates(batch)[0], all_aggregates(x))


def _poi_loop(x, y):
    per_task = []
    for t in range(x.shape[1]):
        xs, ys = x[~np.isnan(x[:, t]), t], y[~np.isnan(y[:, t]), t]
        wins = np.sum(xs[:, None] > ys[None, :]) + 0.5 * np.sum(xs[:, None] == ys[None, :])  # all (x, y) pairs
        per_task.append(wins / (len(xs) * len(ys)))
    return np.mean(per_task)


def _trimmed_mean_loop(v):
    s = np.sort(v)
    k = int(0.25 * len(s))
    return s[k : len(s) - k].mean()


def test_probability_of_improvement_definition():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 4, size=(5, 3)).astype(float)  # ties on purpose
    y = rng.integers(0, 4, size=(4, 3)).astype(float)
    y[3, 2] = np.nan
    assert probability_of_improvement(x, y) == pytest.approx(_poi_loop(x, y))
    assert probability_of_improvement(x, x) == pytest.approx(0.5)
    assert probability_of_improvement(x + 10, y) == 1.0
    # Mann-Whitney U / (n_x n_y) per task (scipy counts ties as 0.5 too)
    u = [stats.mannwhitneyu(x[:, t], y[~np.isnan(y[:, t]), t]).statistic / (5 * (4 - (t == 2))) for t in range(3)]
    assert probability_of_improvement(x, y) == pytest.approx(np.mean(u))


def test_run_score_distribution_definition():
    x = np.array([[0.1, 0.5], [0.6, 0.7], [0.9, np.nan]])
    taus = np.array([0.0, 0.55, 0.65, 1.0])
    # task 0: fractions > tau = [3/3, 2/3, 1/3, 0]; task 1 (2 runs): [1, 1/2, 1/2, 0]
    np.testing.assert_allclose(run_score_distribution(x, taus), [1.0, (2 / 3 + 0.5) / 2, (1 / 3 + 0.5) / 2, 0.0])


def test_stratified_indices_stay_within_each_task():
    rng = np.random.default_rng(0)
    counts = np.array([3, 1, 5])
    idx = stratified_indices(counts, 5, 1000, rng)
    assert idx.shape == (1000, 5, 3)
    for t, c in enumerate(counts):
        assert np.all(idx[:, :c, t] >= 0) and np.all(idx[:, :c, t] < c) and np.all(idx[:, c:, t] == -1)
        assert set(np.unique(idx[:, :c, t])) == set(range(c))


def _bootstrap_loop(x, fn, reps, seed):
    """Straightforward reference: one replicate at a time, each task's runs resampled with replacement."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(reps):
        cols = []
        for t in range(x.shape[1]):
            col = x[~np.isnan(x[:, t]), t]
            cols.append(col[rng.integers(0, len(col), size=len(col))])
        out.append(fn(cols))
    return np.array(out)


def _quantile_mc_tolerance(samples, q, n_reps, n_sigma=5.0):
    """Tolerance for comparing two independent bootstrap estimates of the q-quantile from ``n_reps`` replicates.

    The sample q-quantile of n i.i.d. draws has standard error sqrt(q (1 - q) / n) / f(x_q) (asymptotic normality of
    sample quantiles); the density f(x_q) is estimated from the reference replicates by the spread between the
    (q - 0.02) and (q + 0.02) quantiles. The difference of two independent estimates has sqrt(2) times that error;
    we allow n_sigma standard errors.
    """
    lo, hi = np.quantile(samples, [max(q - 0.02, 0.0), min(q + 0.02, 1.0)])
    density = (min(q + 0.02, 1.0) - max(q - 0.02, 0.0)) / max(hi - lo, 1e-12)
    se = np.sqrt(q * (1 - q) / n_reps) / density
    return n_sigma * np.sqrt(2.0) * se


@pytest.mark.parametrize(
    ("name", "vec_fn", "loop_fn"),
    [
        ("iqm", aggregate_iqm, lambda cols: _trimmed_mean_loop(np.concatenate(cols))),
        ("mean", aggregate_mean, lambda cols: np.mean([c.mean() for c in cols])),
        ("median", aggregate_median, lambda cols: np.median([c.mean() for c in cols])),
    ],
)
def test_bootstrap_ci_agrees_with_loop_reference(name, vec_fn, loop_fn):
    rng = np.random.default_rng(42)
    # 5 tasks with 12, 12, 12, 9 and 6 runs (ragged on purpose), different scales per task
    x = rng.normal(size=(12, 5)) * np.array([1.0, 2.0, 0.5, 1.0, 3.0]) + np.arange(5)
    x[9:, 3] = np.nan
    x[6:, 4] = np.nan
    reps = 2000
    point, low, high = stratified_bootstrap_ci(x, vec_fn, reps=reps, confidence=0.95, seed=1)
    ref = _bootstrap_loop(x, loop_fn, reps, seed=2)  # independent draws: agreement only up to Monte-Carlo error
    assert point == pytest.approx(loop_fn([c[~np.isnan(c)] for c in x.T]))
    for est, q in ((low, 0.025), (high, 0.975)):
        tol = _quantile_mc_tolerance(ref, q, reps)
        assert abs(est - np.quantile(ref, q)) < tol, (name, q, est, np.quantile(ref, q), tol)
    # the interval is not degenerate and brackets the point estimate
    assert low < point < high


def test_bootstrap_detects_a_wrong_estimator():
    """The agreement test above can fail: resampling all runs jointly (not per task) gives different CIs."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(10, 4)) + np.array([0.0, 10.0, 20.0, 30.0])  # tasks on very different levels
    reps = 2000
    _, low, _ = stratified_bootstrap_ci(x, aggregate_mean, reps=reps, seed=0)
    flat = x.ravel()
    boot = np.random.default_rng(1)
    joint = np.array([flat[boot.integers(0, flat.size, flat.size)].mean() for _ in range(reps)])
    tol = _quantile_mc_tolerance(joint, 0.025, reps)
    assert abs(low - np.quantile(joint, 0.025)) > tol  # stratification narrows the interval a lot here


def test_bootstrap_reproducible_and_chunk_independent():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3))
    a = stratified_bootstrap_ci(x, aggregate_iqm, reps=500, seed=7)
    b = stratified_bootstrap_ci(x, aggregate_iqm, reps=500, seed=7, chunk_size=13)
    c = stratified_bootstrap_ci(x, aggregate_iqm, reps=500, seed=8)
    assert a == b
    assert a[1] != c[1] or a[2] != c[2]
    y = rng.normal(size=(6, 3))
    p1 = stratified_bootstrap_ci((x, y), probability_of_improvement, reps=300, seed=3)
    p2 = stratified_bootstrap_ci((x, y), probability_of_improvement, reps=300, seed=3, chunk_size=7)
    assert p1 == p2


def test_bootstrap_batch_axes_match_per_step_calls():
    rng = np.random.default_rng(5)
    data = rng.normal(size=(4, 7, 3))  # (steps, runs, tasks): one resampling of runs shared by all steps
    point, low, high = stratified_bootstrap_ci(data, aggregate_iqm, reps=400, seed=11)
    assert point.shape == low.shape == high.shape == (4,)
    for s in range(4):
        p, lo, hi = stratified_bootstrap_ci(data[s], aggregate_iqm, reps=400, seed=11)
        # same resamples; only the summation order inside the partitioned slice may differ (last-bit rounding)
        np.testing.assert_allclose([p, lo, hi], [point[s], low[s], high[s]], rtol=1e-12)


def test_poi_bootstrap_agrees_with_loop_reference():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(10, 4)) + 0.3
    y = rng.normal(size=(10, 4))
    reps = 2000
    point, low, high = stratified_bootstrap_ci((x, y), probability_of_improvement, reps=reps, seed=0)
    assert point == pytest.approx(_poi_loop(x, y))
    loop_rng = np.random.default_rng(1)
    ref = []
    for _ in range(reps):
        xi = x[loop_rng.integers(0, 10, size=(10, 4)), np.arange(4)]
        yi = y[loop_rng.integers(0, 10, size=(10, 4)), np.arange(4)]
        ref.append(_poi_loop(xi, yi))
    ref = np.array(ref)
    for est, q in ((low, 0.025), (high, 0.975)):
        assert abs(est - np.quantile(ref, q)) < _quantile_mc_tolerance(ref, q, reps)


def test_mean_curve_fast_path_equals_generic_path():
    rng = np.random.default_rng(2)
    curves = rng.normal(size=(6, 50)).cumsum(axis=1)
    fast = bootstrap_mean_curve_ci(curves, reps=300, seed=4)
    generic = stratified_bootstrap_ci(curves.T[..., None], aggregate_mean, reps=300, seed=4)
    for f, g in zip(fast, generic):
        np.testing.assert_allclose(f, g, rtol=1e-12, atol=1e-9)


def test_single_run_gives_degenerate_interval():
    x = np.array([[3.0, 5.0]])
    point, low, high = stratified_bootstrap_ci(x, aggregate_mean, reps=100, seed=0)
    assert point == low == high == 4.0


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="reps"):
        stratified_bootstrap_ci(np.zeros((2, 2)), aggregate_mean, reps=0)
    with pytest.raises(ValueError, match="confidence"):
        stratified_bootstrap_ci(np.zeros((2, 2)), aggregate_mean, confidence=1.5)
    with pytest.raises(ValueError, match="n_runs, n_tasks"):
        stratified_bootstrap_ci(np.zeros(3), aggregate_mean)


def test_pooled_std_is_the_spread_around_each_groups_own_mean():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 2, 4), rng.normal(100, 2, 6)  # far apart means: pooling must not see the gap
    sd, df = pooled_std([a, b, [7.0], [np.nan, 3.0, np.nan]])  # single values (after NaNs) add nothing
    expected = np.sqrt((3 * np.var(a, ddof=1) + 5 * np.var(b, ddof=1)) / 8)
    assert df == 8 and sd == pytest.approx(expected, rel=1e-12)
    # equal group sizes: the root of the mean of the groups' variances
    g = rng.normal(size=(5, 3))
    assert pooled_std(list(g))[0] == pytest.approx(np.sqrt(np.var(g, axis=1, ddof=1).mean()), rel=1e-12)
    sd0, df0 = pooled_std([[1.0], []])
    assert np.isnan(sd0) and df0 == 0


def test_detectable_difference_has_the_stated_power():
    """A true difference of detectable_difference(sd, n) between two groups of n normal runs is detected by a
    two-sided 5% z-test in 80% of experiments: 20,000 simulated experiments, binomial SE 0.0028, tolerance 4 SE."""
    n, sd = 5, 3.0
    d = detectable_difference(sd, n)
    assert d == pytest.approx(2.8016 * sd * np.sqrt(2 / n), rel=1e-4)  # (1.95996 + 0.84162) sd sqrt(2/n)
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, sd, (20_000, n)).mean(1)
    y = rng.normal(d, sd, (20_000, n)).mean(1)
    z = (y - x) / (sd * np.sqrt(2 / n))
    power = np.mean(np.abs(z) > 1.959964)
    assert abs(power - 0.8) < 4 * np.sqrt(0.8 * 0.2 / 20_000)
    assert detectable_difference(sd, 4 * n) == pytest.approx(d / 2)  # 4x the runs: half the difference
    for bad in ({"n": 0}, {"n": 5, "alpha": 0.0}, {"n": 5, "power": 1.0}):
        with pytest.raises(ValueError, match="detectable_difference"):
            detectable_difference(1.0, **bad)
