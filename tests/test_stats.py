"""evalboard.stats: exact definitions checked against references, closed forms and hand examples."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from evalboard import stats
from scipy import stats as sps


def _exact_mcnemar(b: int, c: int) -> float:
    """2 * P[Binomial(b + c, 1/2) <= min(b, c)], capped at 1, in exact rational arithmetic."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(Fraction(math.comb(n, k), 2**n) for k in range(min(b, c) + 1))
    return float(min(Fraction(1), 2 * tail))


# --- mean_stderr ------------------------------------------------------------------------------


def test_mean_stderr_matches_lm_eval() -> None:
    from lm_eval.api.metrics import mean_stderr as lm_eval_mean_stderr

    rng = np.random.default_rng(1)
    for values in (rng.random(7), rng.integers(0, 2, 1000).astype(float), rng.normal(3, 2, 50)):
        assert stats.mean_stderr(values) == pytest.approx(lm_eval_mean_stderr(list(values)), rel=1e-12)


def test_mean_stderr_closed_form_and_small_n() -> None:
    # [1, 2, 3, 4]: sample variance 5/3, stderr sqrt(5/3) / 2.
    assert stats.mean_stderr([1, 2, 3, 4]) == pytest.approx(math.sqrt(5 / 3) / 2, rel=1e-15)
    assert stats.mean_stderr([1.0, 1.0, 1.0]) == 0.0
    assert math.isnan(stats.mean_stderr([0.5]))
    assert math.isnan(stats.mean_stderr([]))


# --- group standard errors ------------------------------------------------------------------------


def _subtasks(sizes: list[int], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 2, n).astype(float) for n in sizes]


@pytest.mark.parametrize("sizes", [[100, 135, 65], [5, 5, 5, 5], [2, 300], [40]])
def test_group_stderrs_match_lm_eval(sizes: list[int]) -> None:
    from lm_eval.api.metrics import pooled_sample_stderr, unweighted_mean_stderr

    parts = _subtasks(sizes, seed=len(sizes))
    stderrs = [stats.mean_stderr(p) for p in parts]
    assert stats.pooled_stderr(stderrs, sizes) == pytest.approx(pooled_sample_stderr(stderrs, sizes), rel=1e-14)
    assert stats.unweighted_mean_stderr(stderrs) == pytest.approx(unweighted_mean_stderr(stderrs), rel=1e-14)


def test_pooled_stderr_is_the_within_subtask_variance_over_all_items() -> None:
    """sqrt(sum_i sum_j (x_ij - mean_i)^2 / (N - k) / N): the item-level stderr with each subtask
    centred on its own mean, so it is the plain stderr when the subtasks' means agree."""
    parts = _subtasks([30, 50, 20], seed=5)
    within = sum(float(((p - p.mean()) ** 2).sum()) for p in parts)
    expected = math.sqrt(within / (100 - 3) / 100)
    pooled = stats.pooled_stderr([stats.mean_stderr(p) for p in parts], [30, 50, 20])
    assert pooled == pytest.approx(expected, rel=1e-12)
    same_mean = [np.array([0.0, 1.0] * 10), np.array([1.0, 0.0] * 15)]
    plain = stats.mean_stderr(np.concatenate(same_mean))
    pooled = stats.pooled_stderr([stats.mean_stderr(p) for p in same_mean], [20, 30])
    assert pooled == pytest.approx(plain * math.sqrt(49 / 48), rel=1e-12)  # N - 1 vs N - k degrees of freedom
    assert math.isnan(stats.pooled_stderr([0.0, 0.0], [1, 1]))
    with pytest.raises(ValueError):
        stats.pooled_stderr([0.1], [3, 4])


# --- bootstrap_stderr ---------------------------------------------------------------------------


def test_bootstrap_stderr_of_mean_approaches_analytic_value() -> None:
    values = np.random.default_rng(2).integers(0, 2, 400).astype(float)
    se = stats.bootstrap_stderr(values, np.mean, rounds=4000, seed=0)
    # The bootstrap of a mean estimates the stddev without Bessel's correction.
    expected = stats.mean_stderr(values) * math.sqrt((values.size - 1) / values.size)
    assert se == pytest.approx(expected, rel=0.05)


def test_bootstrap_stderr_is_deterministic_and_takes_lists_of_pairs() -> None:
    rng = np.random.default_rng(3)
    pairs = list(zip(rng.integers(0, 2, 60).tolist(), rng.integers(0, 2, 60).tolist()))

    def agreement(items: list[tuple[int, int]]) -> float:
        assert isinstance(items, list) and isinstance(items[0], tuple)
        return sum(a == b for a, b in items) / len(items)

    first = stats.bootstrap_stderr(pairs, agreement, rounds=200, seed=5)
    assert first == stats.bootstrap_stderr(pairs, agreement, rounds=200, seed=5)
    assert first != stats.bootstrap_stderr(pairs, agreement, rounds=200, seed=6)
    assert 0.0 < first < 0.2
    assert math.isnan(stats.bootstrap_stderr([1.0], np.mean))


def test_bootstrap_stderr_median() -> None:
    values = np.random.default_rng(4).normal(size=2001)
    # Asymptotic stderr of a normal sample's median: sqrt(pi / 2) * sigma / sqrt(n).
    se = stats.bootstrap_stderr(values, np.median, rounds=1000, seed=1)
    assert se == pytest.approx(math.sqrt(math.pi / 2) / math.sqrt(values.size), rel=0.2)


# --- normal_ci ------------------------------------------------------------------------------------


def test_normal_ci() -> None:
    low, high = stats.normal_ci(0.5, 0.1)
    assert low == pytest.approx(0.5 - 0.195996398454, abs=1e-10)
    assert high == pytest.approx(0.5 + 0.195996398454, abs=1e-10)
    low90, high90 = stats.normal_ci(0.5, 0.1, level=0.90)
    assert high90 - 0.5 == pytest.approx(0.164485362695, abs=1e-10)
    assert all(math.isnan(x) for x in stats.normal_ci(0.5, math.nan))
    with pytest.raises(ValueError):
        stats.normal_ci(0.5, 0.1, level=1.0)


# --- mcnemar_exact ----------------------------------------------------------------------------------


def test_mcnemar_exact_matches_scipy_binomtest() -> None:
    for b in range(0, 31):
        for c in range(0, 31):
            expected = 1.0 if b + c == 0 else sps.binomtest(b, b + c, 0.5).pvalue
            assert stats.mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-10, abs=1e-300), (b, c)
    for b, c in ((4000, 4200), (4100, 4000), (10, 10000), (500, 600)):
        assert stats.mcnemar_exact(b, c) == pytest.approx(sps.binomtest(b, b + c, 0.5).pvalue, rel=1e-8)


@pytest.mark.parametrize(
    ("b", "c", "expected"),
    [
        (0, 0, 1.0),
        (3, 3, 1.0),
        (0, 5, 2 / 32),  # 2 * (1/2)^5
        (1, 9, 22 / 1024),  # 2 * (1 + 10) / 2^10
        (2, 8, 112 / 1024),  # 2 * (1 + 10 + 45) / 2^10
        (6, 1, 16 / 128),  # 2 * (1 + 7) / 2^7: symmetric in b and c
    ],
)
def test_mcnemar_exact_hand_values(b: int, c: int, expected: float) -> None:
    assert stats.mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)
    assert stats.mcnemar_exact(c, b) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_exact_textbook_table() -> None:
    # The 2x2 example of Wikipedia's "McNemar's test" page (b = 121, c = 59; chi^2 = 21.35, p < 0.001):
    # the exact p-value, computed in rational arithmetic.
    p = stats.mcnemar_exact(121, 59)
    assert p == pytest.approx(_exact_mcnemar(121, 59), rel=1e-9)
    assert p == pytest.approx(4.4344e-06, rel=1e-4)
    # Same table as the page's asymptotic test: chi^2 = (b - c)^2 / (b + c) = 21.36, p ~ 4e-6 as well.
    assert (121 - 59) ** 2 / (121 + 59) == pytest.approx(21.36, abs=0.01)
    assert sps.chi2.sf(21.36, 1) == pytest.approx(p, rel=0.2)


def test_mcnemar_exact_rejects_bad_counts() -> None:
    for bad in ((-1, 2), (1.5, 2), (True, 2)):
        with pytest.raises(ValueError):
            stats.mcnemar_exact(*bad)


# --- paired_bootstrap -----------------------------------------------------------------------------


def test_paired_bootstrap_identical_runs() -> None:
    a = np.random.default_rng(5).random(300)
    result = stats.paired_bootstrap(a, a.copy(), rounds=500, seed=0)
    assert result == (0.0, 0.0, 0.0, 1.0)


def test_paired_bootstrap_constant_shift_is_certain() -> None:
    b = np.random.default_rng(6).random(200)
    diff, low, high, p = stats.paired_bootstrap(b + 0.25, b, rounds=999, seed=0)
    assert diff == pytest.approx(0.25) and low == pytest.approx(0.25) and high == pytest.approx(0.25)
    assert p == pytest.approx(1 / 1000)  # no resample as extreme as the null: the smallest possible p


@pytest.mark.parametrize("binary", [False, True])
def test_paired_bootstrap_matches_normal_theory(binary: bool) -> None:
    # For large n the bootstrap mean difference is ~ normal with sd = se * sqrt((n-1)/n), so the
    # percentile CI and the shifted-null p-value have known values.
    rng = np.random.default_rng(7)
    n = 4000
    if binary:  # few distinct differences: exercises the multinomial path
        b = (rng.random(n) < 0.60).astype(float)
        a = np.where(rng.random(n) < 0.1, 1.0 - b, b)
    else:  # continuous: exercises the index-resampling path
        b = rng.random(n)
        a = b + rng.normal(0.02, 0.5, n)
    d = a - b
    diff, low, high, p = stats.paired_bootstrap(a, b, rounds=20000, seed=1)
    sd = stats.mean_stderr(d) * math.sqrt((n - 1) / n)
    assert diff == pytest.approx(d.mean(), abs=1e-15)
    assert low == pytest.approx(d.mean() - 1.959964 * sd, abs=0.06 * sd)
    assert high == pytest.approx(d.mean() + 1.959964 * sd, abs=0.06 * sd)
    expected_p = 2 * sps.norm.sf(abs(d.mean()) / sd)
    assert p == pytest.approx(expected_p, abs=0.01 + 0.1 * expected_p)


def test_paired_bootstrap_paths_agree_in_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(8)
    a = (rng.random(500) < 0.7).astype(float)
    b = (rng.random(500) < 0.6).astype(float)
    multinomial = stats.paired_bootstrap(a, b, rounds=20000, seed=2)
    monkeypatch.setattr(stats, "_MAX_CATEGORIES_FOR_MULTINOMIAL", 0)
    indices = stats.paired_bootstrap(a, b, rounds=20000, seed=2)
    assert multinomial.diff == indices.diff
    assert multinomial.ci_low == pytest.approx(indices.ci_low, abs=0.004)
    assert multinomial.ci_high == pytest.approx(indices.ci_high, abs=0.004)
    assert multinomial.p_value == pytest.approx(indices.p_value, abs=0.01)


def test_paired_bootstrap_is_deterministic_and_checks_input() -> None:
    rng = np.random.default_rng(9)
    a, b = rng.random(100), rng.random(100)
    assert stats.paired_bootstrap(a, b, rounds=300, seed=4) == stats.paired_bootstrap(a, b, rounds=300, seed=4)
    assert stats.paired_bootstrap(a, b, rounds=300, seed=4) != stats.paired_bootstrap(a, b, rounds=300, seed=5)
    with pytest.raises(ValueError):
        stats.paired_bootstrap(a, b[:-1])
    with pytest.raises(ValueError):
        stats.paired_bootstrap([], [])
    with pytest.raises(ValueError):
        stats.paired_bootstrap([1.0, math.nan], [0.0, 0.0])


# --- paired_difference_ci ---------------------------------------------------------------------------


def test_paired_difference_ci_hand_example() -> None:
    result = stats.paired_difference_ci([1, 1, 0, 0], [0, 1, 0, 1])
    # d = [1, 0, 0, -1]: mean 0, sample variance 2/3, stderr sqrt(2/3) / 2.
    assert result.diff == 0.0
    assert result.stderr == pytest.approx(math.sqrt(2 / 3) / 2, rel=1e-15)
    assert result.ci_high == pytest.approx(1.959964 * math.sqrt(2 / 3) / 2, rel=1e-6)


def test_paired_difference_ci_binary_closed_form() -> None:
    # For binary scores the paired variance depends only on the discordant counts b and c.
    rng = np.random.default_rng(10)
    n = 1000
    a = (rng.random(n) < 0.7).astype(float)
    b_scores = np.where(rng.random(n) < 0.2, 1.0 - a, a)
    b = int(((a == 1) & (b_scores == 0)).sum())
    c = int(((a == 0) & (b_scores == 1)).sum())
    result = stats.paired_difference_ci(a, b_scores)
    assert result.diff == pytest.approx((b - c) / n, abs=1e-15)
    variance = ((b + c) - (b - c) ** 2 / n) / (n * (n - 1))
    assert result.stderr == pytest.approx(math.sqrt(variance), rel=1e-12)
    # Pairing matters: the unpaired stderr is larger when the runs agree on most items.
    unpaired = math.hypot(stats.mean_stderr(a), stats.mean_stderr(b_scores))
    assert result.stderr < unpaired


# --- holm_bonferroni -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max
        ([0.01, 0.04, 0.03, 0.005], [0.03, 0.06, 0.06, 0.02]),
        # capped at 1, and monotone: 0.5*2 = 1.0 carries over 0.6*1
        ([0.5, 0.6], [1.0, 1.0]),
        ([0.2], [0.2]),
        # ties: equal p-values get the same adjusted value
        ([0.01, 0.01, 0.5], [0.03, 0.03, 0.5]),
        ([0.0, 1.0, 0.02], [0.0, 1.0, 0.04]),
        ([], []),
    ],
)
def test_holm_bonferroni_hand_examples(p: list[float], expected: list[float]) -> None:
    assert stats.holm_bonferroni(p) == pytest.approx(expected, abs=1e-15)


def test_holm_bonferroni_is_monotone_in_the_sorted_order() -> None:
    p = np.random.default_rng(11).random(50) ** 3
    adjusted = np.array(stats.holm_bonferroni(p))
    order = np.argsort(p)
    assert np.all(np.diff(adjusted[order]) >= 0)
    assert np.all(adjusted >= p) and np.all(adjusted <= 1.0)


def test_holm_bonferroni_rejects_invalid() -> None:
    for bad in ([0.1, math.nan], [1.2], [-0.1]):
        with pytest.raises(ValueError):
            stats.holm_bonferroni(bad)
