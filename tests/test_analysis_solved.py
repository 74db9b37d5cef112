"""Runs reaching the task's reward threshold: Fisher's exact test, the ``solved`` table, ``solved.csv`` and the
report's section."""

from __future__ import annotations

import itertools
import math

import pytest

from analysis.metrics import fisher_exact


def test_fisher_exact_by_hand():
    # 5/5 vs 0/5: margins 5 and 5 of 10; only the two extreme tables are as improbable: 2 / comb(10, 5)
    assert fisher_exact(5, 5, 0, 5) == pytest.approx(2 / 252, rel=1e-12)
    assert round(fisher_exact(5, 5, 0, 5), 5) == 0.00794
    # equal counts: the observed table is the most probable one
    assert fisher_exact(3, 5, 3, 5) == 1.0
    # 1/4 vs 3/4 (R's TeaTasting): table weights comb(4, x) comb(4, 4 - x) = 1, 16, 36, 16, 1 of 70
    assert fisher_exact(1, 4, 3, 4) == pytest.approx(34 / 70, rel=1e-12)
    # 4/5 vs 0/5: weights comb(5, x) comb(5, 4 - x) = 5, 50, 100, 50, 5 of 210; observed x = 0 (or 4): 5 + 5
    assert fisher_exact(0, 5, 4, 5) == pytest.approx(10 / 210, rel=1e-12)
    # unequal groups, 1/1 vs 0/3: weights comb(1, x) comb(3, 1 - x) = 3, 1 of 4
    assert fisher_exact(1, 1, 0, 3) == pytest.approx(1 / 4, rel=1e-12)


@pytest.mark.parametrize(
    "table",
    [
        (0, 0, 0, 0),  # no runs at all
        (0, 0, 3, 5),  # an empty group
        (2, 4, 0, 0),
        (0, 5, 0, 3),  # no run succeeds
        (5, 5, 3, 3),  # every run succeeds
    ],
)
def test_fisher_exact_empty_margins_give_one(table):
    assert fisher_exact(*table) == 1.0


def test_fisher_exact_symmetries():
    """Swapping the groups, or successes and failures, does not change the p-value."""
    for n1, n2 in itertools.product(range(7), repeat=2):
        for k1, k2 in itertools.product(range(n1 + 1), range(n2 + 1)):
            p = fisher_exact(k1, n1, k2, n2)
            assert 0 < p <= 1
            assert fisher_exact(k2, n2, k1, n1) == pytest.approx(p, rel=1e-12)
            assert fisher_exact(n1 - k1, n1, n2 - k2, n2) == pytest.approx(p, rel=1e-12)


def test_fisher_exact_large_counts_stay_exact():
    # 0/200 vs 200/200: the two extreme tables out of comb(400, 200) ~ 1e119, far below float's relative epsilon
    assert fisher_exact(0, 200, 200, 200) == pytest.approx(2 / math.comb(400, 200), rel=1e-12)
    assert fisher_exact(100, 200, 100, 200) == 1.0


@pytest.mark.parametrize(
    ("args", "name"),
    [((6, 5, 0, 5), "k1"), ((0, 5, 4, 3), "k2"), ((-1, 5, 0, 5), "k1"), ((0, -1, 0, 5), "n1"), ((0, 5, 0, -2), "n2")],
)
def test_fisher_exact_rejects_impossible_counts(args, name):
    with pytest.raises(ValueError, match=rf"fisher_exact: {name} "):
        fisher_exact(*args)


def test_fisher_exact_matches_scipy_on_every_small_table():
    stats = pytest.importorskip("scipy.stats")
    for n1, n2 in itertools.product(range(9), repeat=2):
        for k1, k2 in itertools.product(range(n1 + 1), range(n2 + 1)):
            expected = stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]]).pvalue
            assert fisher_exact(k1, n1, k2, n2) == pytest.approx(expected, rel=1e-12, abs=0), (k1, n1, k2, n2)
