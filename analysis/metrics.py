"""Metrics as small pure numpy functions, and a vectorised stratified bootstrap.

Conventions (as in rliable, Agarwal et al. 2021, https://arxiv.org/abs/2108.13264, re-implemented here):

* a *curve matrix* has shape ``(n_runs, n_steps)``: one row per run (seed), one column per evaluation step;
* a *score matrix* has shape ``(n_runs, n_tasks)``: one (normalised) score per run and task. Tasks may have
  different numbers of runs: missing entries are NaN and every estimator ignores them;
* leading *batch* axes are allowed everywhere: ``(*batch, n_runs, n_tasks)`` is reduced to ``(*batch,)``. The
  bootstrap uses this to evaluate a statistic on many resamples (or at many steps) at once.

Aggregate estimators follow rliable's definitions (``rliable.metrics``): the *mean* and the *median* are the
mean and the median over tasks of the per-task mean scores (``np.median(np.mean(scores, axis=0))``), so every
task weighs the same whatever its number of runs; the interquartile mean (IQM, the 25 %-trimmed mean:
``int(0.25 n)`` values cut at each end, as ``scipy.stats.trim_mean``) pools all (run, task) scores; the
optimality gap is ``gamma - mean(min(score, gamma))`` with the mean taken like the aggregate mean (per task,
then over tasks: rliable's pooled mean when every task has the same number of runs). The median of all pooled
scores is kept as :func:`aggregate_pooled_median` (not rliable's median). The probability of improvement is the
Mann-Whitney statistic ``P(X > Y) + 0.5 P(X = Y)`` per task, averaged over tasks. Performance profiles are
run-score distributions: the fraction of runs scoring above ``tau``, computed per task and averaged over tasks.

Confidence intervals are stratified-bootstrap percentile intervals: each replicate resamples, with
replacement, the runs of every task separately (keeping each task's number of runs).

Counts of runs (e.g. runs reaching a task's reward threshold) are compared with Fisher's exact test
(:func:`fisher_exact`, exact integer arithmetic: no scipy needed). What a number of runs can resolve at all:
:func:`pooled_std` (the seed-to-seed spread of a task, pooled over its cells) and :func:`detectable_difference`.
"""

from __future__ import annotations

import math
import operator
import statistics
from typing import Callable, Optional, Sequence, Union

import numpy as np

Statistic = Callable[..., np.ndarray]
SeedLike = Union[int, np.random.Generator, None]

# Upper bound on the number of float elements a bootstrap chunk materialises (memory / cache friendliness).
_CHUNK_ELEMENTS = 4_000_000


# ----------------------------------------------------------------------------------------------------------
# Per-run metrics on curve matrices (n_runs, n_steps)
# ----------------------------------------------------------------------------------------------------------
def final_return(curves: np.ndarray, k: int = 1) -> np.ndarray:
    """Final return of each run: the mean of its last ``k`` evaluations.

    :param curves: ``(..., n_steps)`` returns.
    :param k: number of final evaluations averaged (``1 <= k <= n_steps``).
    :return: ``(...,)``.
    """
    curves = np.asarray(curves, dtype=float)
    if not 1 <= k <= curves.shape[-1]:
        raise ValueError(f"final_return: k must be in [1, {curves.shape[-1]}] (n_steps), got {k}")
    return curves[..., -k:].mean(axis=-1)


def max_of_mean(curves: np.ndarray) -> np.ndarray:
    """Maximum over steps of the seed-mean curve: the TD3 paper's Table 1 metric ("max average return").

    :param curves: ``(..., n_runs, n_steps)``.
    :return: ``(...,)``.
    """
    curves = np.asarray(curves, dtype=float)
    return curves.mean(axis=-2).max(axis=-1)


def area_under_curve(curves: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Normalised area under each learning curve: trapezoidal integral divided by the step span, i.e. the
    average return over training (same unit as the return, comparable across budgets).

    :param curves: ``(..., n_steps)``.
    :param steps: ``(n_steps,)`` increasing.
    :return: ``(...,)`` (the single value when ``n_steps == 1``).
    """
    curves = np.asarray(curves, dtype=float)
    steps = np.asarray(steps, dtype=float)
    if steps.ndim != 1 or steps.shape[0] != curves.shape[-1]:
        raise ValueError(f"area_under_curve: steps shape {steps.shape} does not match curves {curves.shape}")
    if steps.shape[0] == 1:
        return curves[..., 0]
    if np.any(np.diff(steps) <= 0):
        raise ValueError("area_under_curve: steps must be strictly increasing")
    width = np.diff(steps)
    area = ((curves[..., 1:] + curves[..., :-1]) * 0.5 * width).sum(axis=-1)
    return area / (steps[-1] - steps[0])


# ----------------------------------------------------------------------------------------------------------
# Order statistics with NaN = missing
# ----------------------------------------------------------------------------------------------------------
def _sorted_valid(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort along the last axis (NaN last) and count the non-NaN values."""
    s = np.sort(x, axis=-1)
    n = np.count_nonzero(~np.isnan(x), axis=-1)
    return s, n


def _trimmed_mean_sorted(s: np.ndarray, n: np.ndarray, proportion: float) -> np.ndarray:
    lo = np.floor(proportion * n).astype(np.int64)
    hi = n - lo
    cs = np.concatenate([np.zeros((*s.shape[:-1], 1)), np.cumsum(np.nan_to_num(s, nan=0.0), axis=-1)], axis=-1)
    top = np.take_along_axis(cs, hi[..., None], axis=-1)[..., 0]
    bottom = np.take_along_axis(cs, lo[..., None], axis=-1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(hi > lo, (top - bottom) / np.maximum(hi - lo, 1), np.nan)


def _median_sorted(s: np.ndarray, n: np.ndarray) -> np.ndarray:
    lo = np.maximum((n - 1) // 2, 0)
    hi = np.maximum(n // 2, 0)
    a = np.take_along_axis(s, lo[..., None], axis=-1)[..., 0]
    b = np.take_along_axis(s, hi[..., None], axis=-1)[..., 0]
    return np.where(n > 0, 0.5 * (a + b), np.nan)


def _order_stats(x: np.ndarray, trim: bool = True, median: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """25 %-trimmed mean and median along the last axis, NaN = missing.

    Fast path when every row has the same number ``n`` of valid values (the bootstrap's case: each replicate
    keeps each task's run count): one ``np.partition`` at the needed ranks (NaN sort last), then slicing.
    Otherwise a full sort with per-row ranks.
    """
    n = np.count_nonzero(~np.isnan(x), axis=-1)
    nan = np.full(x.shape[:-1], np.nan)
    if n.size == 0 or np.all(n == n.flat[0]):
        m = int(n.flat[0]) if n.size else 0
        if m == 0:
            return nan, nan
        lo = int(0.25 * m)
        hi = m - lo
        kth = sorted({lo, hi - 1, (m - 1) // 2, m // 2})
        part = np.partition(x, kth, axis=-1)
        t = part[..., lo:hi].mean(axis=-1) if trim else nan
        med = 0.5 * (part[..., (m - 1) // 2] + part[..., m // 2]) if median else nan
        return t, med
    s, n = _sorted_valid(x)
    return _trimmed_mean_sorted(s, n, 0.25), _median_sorted(s, n)


def iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean along ``axis`` (25 % trimmed mean, NaN ignored).

    :param x: array.
    :param axis: reduced axis.
    :return: ``x`` without ``axis``.
    """
    return _order_stats(np.moveaxis(np.asarray(x, dtype=float), axis, -1), median=False)[0]


def _flat(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=float)
    if scores.ndim < 2:
        raise ValueError(f"expected a score matrix (..., n_runs, n_tasks), got shape {scores.shape}")
    return scores.reshape(*scores.shape[:-2], -1)


def task_means(scores: np.ndarray) -> np.ndarray:
    """Mean score of each task over its runs (NaN = missing run). ``(..., n_runs, n_tasks) -> (..., n_tasks)``;
    a task without any run gets NaN."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim < 2:
        raise ValueError(f"expected a score matrix (..., n_runs, n_tasks), got shape {scores.shape}")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(scores, axis=-2) / np.count_nonzero(~np.isnan(scores), axis=-2)


def _mean_over_tasks(means: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(means, axis=-1) / np.count_nonzero(~np.isnan(means), axis=-1)


def aggregate_mean(scores: np.ndarray) -> np.ndarray:
    """rliable's aggregate mean: mean over tasks of the per-task mean scores (every task weighs the same).
    ``(..., n_runs, n_tasks) -> (...)``."""
    return _mean_over_tasks(task_means(scores))


def aggregate_median(scores: np.ndarray) -> np.ndarray:
    """rliable's aggregate median: median over tasks of the per-task mean scores.
    ``(..., n_runs, n_tasks) -> (...)``."""
    return _order_stats(task_means(scores), trim=False)[1]


def aggregate_pooled_median(scores: np.ndarray) -> np.ndarray:
    """Median of all (run, task) scores pooled (not rliable's median: see :func:`aggregate_median`).
    ``(..., n_runs, n_tasks) -> (...)``."""
    return _order_stats(_flat(scores), trim=False)[1]


def aggregate_iqm(scores: np.ndarray) -> np.ndarray:
    """Interquartile mean of all (run, task) scores pooled, as rliable. ``(..., n_runs, n_tasks) -> (...)``."""
    return _order_stats(_flat(scores), median=False)[0]


def aggregate_optimality_gap(scores: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """Optimality gap: how far scores fall short of ``gamma`` on average, ``gamma - mean(min(score, gamma))``,
    the mean taken per task then over tasks (rliable's pooled mean when all tasks have the same number of runs).

    :param scores: ``(..., n_runs, n_tasks)`` normalised scores.
    :param gamma: threshold (1 = reference score).
    :return: ``(...)``.
    """
    scores = np.asarray(scores, dtype=float)
    return gamma - aggregate_mean(np.minimum(scores, gamma))


AGGREGATES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Median": aggregate_median,
    "IQM": aggregate_iqm,
    "Mean": aggregate_mean,
    "Optimality gap": aggregate_optimality_gap,
}


def all_aggregates(scores: np.ndarray) -> np.ndarray:
    """The four aggregates of :data:`AGGREGATES` at once: ``(..., n_runs, n_tasks) -> (..., 4)``."""
    scores = np.asarray(scores, dtype=float)
    means = task_means(scores)
    median = _order_stats(means, trim=False)[1]
    trimmed = _order_stats(_flat(scores), median=False)[0]
    mean = _mean_over_tasks(means)
    og = 1.0 - aggregate_mean(np.minimum(scores, 1.0))
    return np.stack([median, trimmed, mean, og], axis=-1)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Probability that a run of X beats a run of Y on a random task: per task the Mann-Whitney statistic
    ``P(X > Y) + 0.5 P(X = Y)`` over all (x-run, y-run) pairs, averaged over tasks.

    :param x: ``(..., n_x, n_tasks)`` scores of algorithm X (NaN = missing run).
    :param y: ``(..., n_y, n_tasks)`` scores of algorithm Y on the same tasks.
    :return: ``(...)``.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(f"probability_of_improvement: x has {x.shape[-1]} tasks, y has {y.shape[-1]}")
    xe = x[..., :, None, :]
    ye = y[..., None, :, :]
    wins = np.count_nonzero(xe > ye, axis=(-3, -2)) + 0.5 * np.count_nonzero(xe == ye, axis=(-3, -2))
    pairs = np.count_nonzero(~np.isnan(x), axis=-2) * np.count_nonzero(~np.isnan(y), axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_task = np.where(pairs > 0, wins / np.maximum(pairs, 1), np.nan)
        return np.nanmean(per_task, axis=-1)


def run_score_distribution(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Performance profile: for each threshold ``tau``, the fraction of runs with score ``> tau``, computed per
    task and averaged over tasks.

    :param scores: ``(..., n_runs, n_tasks)``.
    :param taus: ``(n_taus,)`` thresholds.
    :return: ``(..., n_taus)``.
    """
    scores = np.asarray(scores, dtype=float)
    taus = np.asarray(taus, dtype=float)
    above = np.count_nonzero(scores[..., None] > taus, axis=-3)  # (..., n_tasks, n_taus)
    n = np.count_nonzero(~np.isnan(scores), axis=-2)[..., None]  # (..., n_tasks, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(n > 0, above / np.maximum(n, 1), np.nan)
        return np.nanmean(frac, axis=-2)


# ----------------------------------------------------------------------------------------------------------
# Counts
# ----------------------------------------------------------------------------------------------------------
#: Tables whose probability is at most the observed one's times ``1 + 1e-7`` count as "no more probable" in
#: :func:`fisher_exact` (R's ``fisher.test`` tolerance).
FISHER_RELATIVE_TOLERANCE = 1e-7


def _check_counts(k1: int, n1: int, k2: int, n2: int) -> tuple[int, int, int, int]:
    """The four counts as Python ints, checked: ``n >= 0`` and ``0 <= k <= n`` in each group."""
    out = []
    for name, value in (("k1", k1), ("n1", n1), ("k2", k2), ("n2", n2)):
        value = operator.index(value)
        if value < 0:
            raise ValueError(f"fisher_exact: {name} must be >= 0, got {value}")
        out.append(value)
    for k_name, k, n_name, n in (("k1", out[0], "n1", out[1]), ("k2", out[2], "n2", out[3])):
        if k > n:
            raise ValueError(f"fisher_exact: {k_name} ({k}) must be <= {n_name} ({n})")
    return out[0], out[1], out[2], out[3]


def fisher_exact(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value of Fisher's exact test for the 2x2 table ``[[k1, n1 - k1], [k2, n2 - k2]]`` (``k1`` of
    ``n1`` runs of one group and ``k2`` of ``n2`` of the other succeed).

    Given the margins, the number of successes of the first group is hypergeometric; the p-value is the sum of
    the probabilities of all tables with those margins that are no more probable than the observed one, up to a
    relative tolerance of :data:`FISHER_RELATIVE_TOLERANCE` (so that equally probable tables count exactly).
    Computed with exact integers (``math.comb``), so ties are exact; ``scipy.stats.fisher_exact`` (which compares
    its floating-point probabilities with a tolerance of 1e-14) agrees to rounding. A table with an empty row or
    column (a group without runs, no success or no failure at all) has p = 1.

    :param k1: successes of the first group (``0 <= k1 <= n1``).
    :param n1: runs of the first group.
    :param k2: successes of the second group (``0 <= k2 <= n2``).
    :param n2: runs of the second group.
    :return: the p-value in ``(0, 1]``; swapping the groups gives the same value.
    :raises ValueError: if a count is negative or a group has more successes than runs.
    """
    k1, n1, k2, n2 = _check_counts(k1, n1, k2, n2)
    k = k1 + k2
    # weight of the table with x successes in the first group: comb(n1, x) comb(n2, k - x) (/ comb(n1 + n2, k))
    weights = [math.comb(n1, x) * math.comb(n2, k - x) for x in range(max(0, k - n2), min(k, n1) + 1)]
    observed = math.comb(n1, k1) * math.comb(n2, k2)
    scale = round(1 / FISHER_RELATIVE_TOLERANCE)  # w <= observed * (1 + tol), in integers
    tail = sum(w for w in weights if w * scale <= observed * (scale + 1))
    return tail / math.comb(n1 + n2, k)  # int / int: correctly rounded


# ----------------------------------------------------------------------------------------------------------
# Resolution: the spread of runs and the difference it lets a number of runs detect
# ----------------------------------------------------------------------------------------------------------
def pooled_std(groups: Sequence[Sequence[float]]) -> tuple[float, int]:
    """Pooled within-group standard deviation and its degrees of freedom.

    ``sqrt(sum_g sum_i (x_gi - mean_g)^2 / sum_g (n_g - 1))``: the spread of runs around their own group's mean
    (e.g. the seeds of each variant of a task), whatever the groups' means; NaNs are dropped and groups of one value
    add nothing.

    :param groups: the values of each group.
    :return: ``(sd, df)``; ``(nan, 0)`` when no group has two values.
    """
    ss, df = 0.0, 0
    for g in groups:
        x = np.asarray(g, dtype=float)
        x = x[~np.isnan(x)]
        if len(x) > 1:
            ss += float(np.sum((x - x.mean()) ** 2))
            df += len(x) - 1
    return (math.sqrt(ss / df), df) if df else (float("nan"), 0)


def detectable_difference(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest difference between the means of two groups of ``n`` runs each that a two-sided test at level
    ``alpha`` detects with probability ``power``, runs spread with standard deviation ``sd`` (normal
    approximation: ``(z_{1 - alpha/2} + z_power) sd sqrt(2 / n)``; with 5 % and 80 %, 2.80 sd sqrt(2 / n)).

    A planning number: differences well below it are not resolved by ``n`` runs per group, whatever the test.

    :param sd: within-group standard deviation (e.g. :func:`pooled_std`).
    :param n: runs per group (>= 1).
    :param alpha: two-sided level, in (0, 1).
    :param power: detection probability, in (0, 1).
    """
    if n < 1:
        raise ValueError(f"detectable_difference: n must be >= 1, got {n}")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"detectable_difference: alpha and power must be in (0, 1), got {alpha} and {power}")
    z = statistics.NormalDist()
    return (z.inv_cdf(1 - alpha / 2) + z.inv_cdf(power)) * sd * math.sqrt(2 / n)


# ----------------------------------------------------------------------------------------------------------
# Stratified bootstrap
# ----------------------------------------------------------------------------------------------------------
def make_rng(seed: SeedLike) -> np.random.Generator:
    """``numpy.random.Generator`` from a seed (or pass a Generator through)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _valid_slots(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per task, the indices of runs present (not NaN at every batch position), packed first.

    :return: ``(table (n_runs, n_tasks) of run indices, padded with n_runs; counts (n_tasks,))``.
    """
    n_runs, n_tasks = scores.shape[-2:]
    present = ~np.isnan(scores).reshape(-1, n_runs, n_tasks).all(axis=0)
    counts = present.sum(axis=0)
    table = np.full((n_runs, n_tasks), n_runs, dtype=np.int64)
    for t in range(n_tasks):
        idx = np.flatnonzero(present[:, t])
        table[: len(idx), t] = idx
    return table, counts


def stratified_indices(counts: np.ndarray, n_slots: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``size`` stratified resamples: for task ``t``, ``counts[t]`` positions drawn uniformly with
    replacement from ``range(counts[t])``; positions ``>= counts[t]`` are set to ``-1`` (missing).

    The draws are ``rng.random((size, n_slots, n_tasks))``, so drawing in chunks gives the same numbers as
    drawing at once.

    :return: ``(size, n_slots, n_tasks)`` int64.
    """
    u = rng.random((size, n_slots, len(counts)))
    idx = np.floor(u * counts).astype(np.int64)
    idx[:, np.arange(n_slots)[:, None] >= counts[None, :]] = -1
    return idx


def _gather(scores: np.ndarray, table: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Resampled scores ``(size, *batch, n_slots, n_tasks)`` for position indices ``idx`` (-1 = missing)."""
    n_runs, n_tasks = scores.shape[-2:]
    batch = scores.shape[:-2]
    padded = np.concatenate([scores, np.full((*batch, 1, n_tasks), np.nan)], axis=-2).reshape(-1, n_runs + 1, n_tasks)
    run_idx = np.where(idx >= 0, np.take_along_axis(table[None], np.maximum(idx, 0), axis=1), n_runs)
    out = padded[:, run_idx, np.arange(n_tasks)]  # (B, size, n_slots, n_tasks)
    out = np.moveaxis(out, 0, 1)
    return out.reshape(idx.shape[0], *batch, idx.shape[1], n_tasks)


def stratified_bootstrap_ci(
    scores: Union[np.ndarray, Sequence[np.ndarray]],
    statistic: Statistic,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: SeedLike = None,
    chunk_size: Optional[int] = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point estimate and stratified-bootstrap percentile interval of ``statistic``.

    :param scores: one array ``(*batch, n_runs, n_tasks)`` or a sequence of them (e.g. ``(x, y)`` for the
        probability of improvement), each resampled independently, runs within each task. NaN entries are
        missing runs (tasks may have different numbers of runs).
    :param statistic: function of the array(s) with the same leading axes, reducing the last two:
        ``(*lead, n_runs, n_tasks) -> (*lead[, k])``.
    :param reps: number of bootstrap replicates.
    :param confidence: coverage of the interval (percentile method).
    :param seed: seed or ``numpy.random.Generator``: same seed, same interval.
    :param chunk_size: replicates evaluated per vectorised chunk (default: bounded memory); the result does
        not depend on it.
    :return: ``(point, low, high)`` each of the statistic's output shape.
    """
    arrays = [np.asarray(scores, dtype=float)] if isinstance(scores, np.ndarray) else [np.asarray(s, float) for s in scores]
    if reps < 1:
        raise ValueError(f"stratified_bootstrap_ci: reps must be >= 1, got {reps}")
    if not 0 < confidence < 1:
        raise ValueError(f"stratified_bootstrap_ci: confidence must be in (0, 1), got {confidence}")
    for a in arrays:
        if a.ndim < 2:
            raise ValueError(f"stratified_bootstrap_ci: scores must be (*batch, n_runs, n_tasks), got shape {a.shape}")
    rng = make_rng(seed)
    # Each resampled array gets its own stream so the replicates do not depend on chunk_size.
    rngs = [rng] if len(arrays) == 1 else list(rng.spawn(len(arrays)))
    point = np.asarray(statistic(*arrays))
    tables = [_valid_slots(a) for a in arrays]
    if chunk_size is None:
        per_rep = max(sum(a.size for a in arrays), 1)
        chunk_size = int(max(1, min(reps, _CHUNK_ELEMENTS // per_rep)))
    values = []
    for start in range(0, reps, chunk_size):
        size = min(chunk_size, reps - start)
        resampled = []
        for a, (table, counts), r in zip(arrays, tables, rngs):
            idx = stratified_indices(counts, a.shape[-2], size, r)
            resampled.append(_gather(a, table, idx))
        values.append(np.asarray(statistic(*resampled)))
    reps_values = np.concatenate(values, axis=0)
    low, high = _percentile_interval(reps_values, confidence)
    return point, low, high


def _percentile_interval(reps_values: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    alpha = 100 * (1 - confidence) / 2
    if np.isnan(reps_values).any():
        with np.errstate(invalid="ignore"):
            low, high = np.nanpercentile(reps_values, [alpha, 100 - alpha], axis=0)
    else:
        low, high = np.percentile(reps_values, [alpha, 100 - alpha], axis=0)
    return low, high


def bootstrap_mean_curve_ci(
    curves: np.ndarray,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: SeedLike = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bootstrap percentile band of the seed-mean curve (runs resampled with replacement).

    Same draws and result as ``stratified_bootstrap_ci(curves.T[..., None], aggregate_mean, ...)`` but computed
    as a matrix product of resampling counts with the curves (fast for long curves).

    :param curves: ``(n_runs, n_steps)`` without NaN.
    :return: ``(mean, low, high)`` each ``(n_steps,)``.
    """
    curves = np.asarray(curves, dtype=float)
    if curves.ndim != 2:
        raise ValueError(f"bootstrap_mean_curve_ci: curves must be (n_runs, n_steps), got {curves.shape}")
    n_runs = curves.shape[0]
    rng = make_rng(seed)
    idx = stratified_indices(np.array([n_runs]), n_runs, reps, rng)[..., 0]  # (reps, n_runs)
    flat = (np.arange(reps)[:, None] * n_runs + idx).ravel()
    weights = np.bincount(flat, minlength=reps * n_runs).reshape(reps, n_runs) / n_runs
    reps_values = weights @ curves
    low, high = _percentile_interval(reps_values, confidence)
    return curves.mean(axis=0), low, high
