"""Statistics for metric uncertainty and run-vs-run comparison.

Pure numpy/scipy functions with exact definitions (see docs/ratings.md for the leaderboard side):

- `mean_stderr`: standard error of a mean, exactly as lm-eval computes it.
- `pooled_stderr`, `unweighted_mean_stderr`: a group's standard error from its subtasks' (lm-eval's
  group aggregation, weighted by size or not).
- `bootstrap_stderr`: standard error of any statistic by resampling items (lm-eval's definition).
- `normal_ci`: a normal-approximation confidence interval from a value and its stderr.
- `mcnemar_exact`: exact two-sided McNemar test for paired binary outcomes.
- `paired_bootstrap`: paired difference of means with a percentile CI and a bootstrap p-value.
- `paired_difference_ci`: paired difference of means with the analytic paired stderr.
- `holm_bonferroni`: Holm step-down adjusted p-values (statsmodels' "holm").
- `clopper_pearson`: the exact binomial interval of a proportion.
- `mcnemar_exact_ci`: the interval of a paired difference of proportions that inverts exact McNemar.
- `minimum_detectable_difference`: the smallest true difference a paired test would find at this n.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "ExactPairedInterval",
    "MetricValue",
    "PairedBootstrap",
    "PairedDifference",
    "bootstrap_stderr",
    "clopper_pearson",
    "holm_bonferroni",
    "mcnemar_exact",
    "mcnemar_exact_ci",
    "mean_stderr",
    "metric_value",
    "minimum_detectable_difference",
    "normal_ci",
    "paired_bootstrap",
    "paired_difference_ci",
    "pooled_stderr",
    "unweighted_mean_stderr",
]

# Above this many distinct per-item differences, the paired bootstrap resamples item indices;
# at or below it, it draws multinomial counts over the distinct values (same distribution, far cheaper).
_MAX_CATEGORIES_FOR_MULTINOMIAL = 64
# Bound on the number of (round, item) index draws held in memory at once.
_BOOTSTRAP_CHUNK_CELLS = 4_000_000


def _as_float_vector(values: Any, name: str = "values") -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def mean_stderr(values: Sequence[float] | np.ndarray) -> float:
    """Standard error of the mean: sample stddev (n-1 denominator) / sqrt(n).

    Identical to lm-eval's `mean_stderr` (lm_eval/api/metrics.py). For n < 2 the sample stddev
    is undefined; lm-eval reports "N/A" there (and would divide by zero), we return nan.
    """
    arr = _as_float_vector(values)
    n = arr.size
    if n < 2:
        return math.nan
    return float(np.std(arr, ddof=1) / math.sqrt(n))


def pooled_stderr(stderrs: Sequence[float], sizes: Sequence[int]) -> float:
    """Standard error of a size-weighted mean of subtask means, from the subtasks' standard errors
    and sizes: lm-eval's `pooled_sample_stderr` (what it reports for a group such as MMLU), the
    same arithmetic in the same order. It pools the within-subtask variances,
    sum((n_i - 1) * s_i^2) / (N - k), and divides by N. A subtask of one item has no variance of
    its own and adds nothing to the sum (lm-eval reports "N/A" there); nan when N = k."""
    if len(stderrs) != len(sizes):
        raise ValueError(f"{len(stderrs)} stderrs for {len(sizes)} sizes")
    degrees = sum(sizes) - len(sizes)
    if degrees <= 0:
        return math.nan
    pooled_sample_var = sum([(size - 1) * stderr**2 * size for size, stderr in zip(sizes, stderrs)]) / degrees
    return float(np.sqrt(pooled_sample_var / sum(sizes)))


def unweighted_mean_stderr(stderrs: Sequence[float]) -> float:
    """Standard error of the plain mean of k independent subtask means, sqrt(sum se_i^2) / k:
    lm-eval's `unweighted_mean_stderr` (a group with weight_by_size false)."""
    if not len(stderrs):
        return math.nan
    return float(np.sqrt(sum(stderr**2 for stderr in stderrs)) / len(stderrs))


def _sample_stddev(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if values.size >= 2 else math.nan


def bootstrap_stderr(
    values: Sequence[Any] | np.ndarray,
    metric_fn: Callable[[Any], float],
    rounds: int = 1000,
    seed: int = 0,
) -> float:
    """Bootstrap standard error of `metric_fn(values)` for metrics that are not plain means.

    Each round resamples the items with replacement (same size as `values`) and evaluates
    `metric_fn` on the resample; the result is the sample stddev (n-1) of the round values,
    as in lm-eval's `bootstrap_stderr`. A numpy array is indexed directly (so `metric_fn` gets
    an array); any other sequence is resampled as a list (so `metric_fn` gets a list, e.g. of
    (reference, prediction) pairs). Deterministic for a given seed. nan for fewer than 2 items.
    """
    if rounds < 2:
        raise ValueError(f"rounds must be >= 2, got {rounds}")
    n = len(values)
    if n < 2:
        return math.nan
    rng = np.random.default_rng(seed)
    is_array = isinstance(values, np.ndarray)
    seq: Any = values if is_array else list(values)
    results = np.empty(rounds, dtype=np.float64)
    for r in range(rounds):
        idx = rng.integers(0, n, size=n)
        sample = seq[idx] if is_array else [seq[i] for i in idx]
        results[r] = metric_fn(sample)
    return _sample_stddev(results)


def normal_ci(value: float, stderr: float, level: float = 0.95) -> tuple[float, float]:
    """Two-sided normal-approximation interval `value ± z * stderr` (z = 1.96 for 95%).

    A nan stderr (e.g. n < 2) gives (nan, nan).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    half = z * stderr
    return (value - half, value + half)


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts.

    `b` = items only the first system got right, `c` = items only the second got right.
    Under H0 each discordant item is a fair coin, so min(b, c) ~ Binomial(b + c, 1/2) and
    p = min(1, 2 * P[X <= min(b, c)]). No discordant items (b = c = 0) gives p = 1.
    """
    if isinstance(b, bool) or isinstance(c, bool) or int(b) != b or int(c) != c or b < 0 or c < 0:
        raise ValueError(f"b and c must be non-negative integers, got b={b!r}, c={c!r}")
    b, c = int(b), int(c)
    n = b + c
    if n == 0:
        return 1.0
    from scipy.special import bdtr  # binomial CDF; imported here: scipy costs ~0.5 s to import

    return float(min(1.0, 2.0 * bdtr(min(b, c), n, 0.5)))


def clopper_pearson(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a binomial proportion: the proportions that two
    one-sided exact binomial tests at (1 - level) / 2 each do not reject. (0, 1) when trials = 0."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    from scipy.special import betaincinv  # imported here: scipy costs ~0.5 s to import

    tail = (1.0 - level) / 2.0
    low = 0.0 if successes == 0 else float(betaincinv(successes, trials - successes + 1, tail))
    high = 1.0 if successes == trials else float(betaincinv(successes + 1, trials - successes, 1.0 - tail))
    return low, high


class ExactPairedInterval(NamedTuple):
    diff: float  # (up - down) / n
    ci_low: float
    ci_high: float


def mcnemar_exact_ci(down: int, up: int, n: int, level: float = 0.95) -> ExactPairedInterval:
    """Interval of the difference of two paired proportions, (up - down) / n, that agrees with
    `mcnemar_exact(down, up)` by construction: it excludes 0 exactly when p < 1 - level.

    Exact McNemar conditions on the m = up + down discordant items: `up` ~ Binomial(m, theta), and
    the difference is (m / n) * (2 * theta - 1). The Clopper-Pearson interval of theta inverts the
    same equal-tailed binomial tests as the doubled two-sided p-value, so mapping it through that
    line gives the conditional exact interval (Breslow & Day's conditional approach; the
    normal-approximation interval does not match the exact test: +4 / -0 of 20 has p = 0.125 yet a
    normal interval that excludes 0). No discordant item gives [0, 0] with p = 1.
    """
    if n < 1 or up < 0 or down < 0 or up + down > n:
        raise ValueError(f"need 0 <= up + down <= n, n >= 1; got up={up}, down={down}, n={n}")
    m = up + down
    diff = (up - down) / n
    if m == 0:
        return ExactPairedInterval(0.0, 0.0, 0.0)
    low, high = clopper_pearson(up, m, level)
    scale = m / n
    return ExactPairedInterval(diff, scale * (2.0 * low - 1.0), scale * (2.0 * high - 1.0))


def minimum_detectable_difference(differences: Sequence[float] | np.ndarray, *, binary: bool,
                                  alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean difference a two-sided paired test at `alpha` would detect with
    probability `power` on this many items: (z_{1-alpha/2} + z_{power}) * sd(d) / sqrt(n), with
    sd(d) the observed spread of the per-item differences (the usual paired-design formula).

    For 0/1 scores (exact McNemar) it is never below the floor of the exact test: with n items,
    at least k changed items all in one direction are needed for 2 * 0.5^k <= alpha, so no
    difference under k / n can be significant, whatever the spread. With no item changed the
    spread is 0 and that floor is what remains. nan for fewer than 2 items.
    """
    d = _as_float_vector(differences, "differences")
    n = d.size
    if n < 2:
        return math.nan
    normal = NormalDist()
    z = normal.inv_cdf(1.0 - alpha / 2.0) + normal.inv_cdf(power)
    spread = z * _sample_stddev(d) / math.sqrt(n)
    if not binary:
        return float(spread)
    needed = next((k for k in range(1, n + 1) if mcnemar_exact(0, k) <= alpha), None)
    floor = math.inf if needed is None else needed / n
    return float(max(spread, floor))


def _paired_differences(a: Any, b: Any) -> np.ndarray:
    a_arr = _as_float_vector(a, "a")
    b_arr = _as_float_vector(b, "b")
    if a_arr.shape != b_arr.shape:
        raise ValueError(
            f"paired scores need one score per item on both sides, got {a_arr.size} and {b_arr.size}"
        )
    if a_arr.size == 0:
        raise ValueError("paired scores are empty")
    if not (np.all(np.isfinite(a_arr)) and np.all(np.isfinite(b_arr))):
        raise ValueError("paired scores contain nan or inf")
    return a_arr - b_arr


class PairedBootstrap(NamedTuple):
    diff: float  # mean(a) - mean(b) on the observed items
    ci_low: float  # the interval the p-value inverts (see paired_bootstrap)
    ci_high: float
    p_value: float  # two-sided, shifted-null (see paired_bootstrap)


def _bootstrap_means(d: np.ndarray, rounds: int, rng: np.random.Generator) -> np.ndarray:
    """Means of `rounds` resamples (with replacement, size n) of the items `d`."""
    n = d.size
    values, counts = np.unique(d, return_counts=True)
    if values.size <= _MAX_CATEGORIES_FOR_MULTINOMIAL:
        # The resample mean depends only on how many times each distinct value is drawn, and those
        # counts are multinomial(n, frequencies): the exact bootstrap distribution in O(rounds * k).
        draws = rng.multinomial(n, counts / n, size=rounds)
        return draws @ values / n
    means = np.empty(rounds, dtype=np.float64)
    chunk = max(1, _BOOTSTRAP_CHUNK_CELLS // n)
    for start in range(0, rounds, chunk):
        stop = min(rounds, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = d[idx].mean(axis=1)
    return means


def paired_bootstrap(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    rounds: int = 10_000,
    seed: int = 0,
    level: float = 0.95,
) -> PairedBootstrap:
    """Paired bootstrap comparison of per-item scores `a` and `b` (same items, same order).

    Items are resampled with replacement (keeping each item's pair together); each round gives a
    mean difference d*.

    The p-value tests H0: mean difference = 0 with the shifted-null method: the bootstrap
    distribution, shifted to centre on 0, stands in for the null distribution, so
    p = (1 + #{rounds with |d* - d| >= |d|}) / (rounds + 1)
    (the +1s count the observed sample as one draw from the null, Davison & Hinkley 1997, so p > 0).
    The interval is the one this test inverts, d -/+ h with h the (K+1)-th largest |d* - d| and K
    the most such rounds that still give p <= 1 - level: it excludes 0 exactly when p <= 1 - level
    (the percentile interval of d* need not, when d* is skewed). Identical inputs give diff = 0,
    the interval [0, 0] and p = 1.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    d = _paired_differences(a, b)
    diff = float(d.mean())
    boot = _bootstrap_means(d, rounds, np.random.default_rng(seed))
    deviation = np.abs(boot - diff)
    # A resample as far from d as d is from 0, up to float rounding, counts as that far.
    tol = 1e-12 * max(1.0, abs(diff))
    deviation = np.where(np.abs(deviation - abs(diff)) <= tol, abs(diff), deviation)
    extreme = int(np.count_nonzero(deviation >= abs(diff)))
    p_value = (1 + extreme) / (rounds + 1)
    allowed = _most_extreme_rounds(rounds, 1.0 - level)
    half = math.inf if allowed < 0 else float(np.sort(deviation)[rounds - 1 - allowed])
    return PairedBootstrap(diff, diff - half, diff + half, float(min(1.0, p_value)))


def _most_extreme_rounds(rounds: int, alpha: float) -> int:
    """The largest count k of extreme rounds with (1 + k) / (rounds + 1) <= alpha (-1: none)."""
    k = min(rounds - 1, max(-1, math.floor(alpha * (rounds + 1)) - 1))
    while k >= 0 and (1 + k) / (rounds + 1) > alpha:
        k -= 1
    while k + 1 < rounds and (2 + k) / (rounds + 1) <= alpha:
        k += 1
    return k


class PairedDifference(NamedTuple):
    diff: float  # mean(a) - mean(b)
    stderr: float  # stderr of the mean of the per-item differences
    ci_low: float  # normal interval diff ± z * stderr
    ci_high: float


def paired_difference_ci(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    level: float = 0.95,
) -> PairedDifference:
    """Difference of means of paired per-item scores with the paired standard error.

    stderr = mean_stderr(a - b): the sample stddev of the per-item differences / sqrt(n). For binary
    scores this accounts for the correlation between the two runs (items both get right or wrong
    don't add variance), which the unpaired sqrt(se_a^2 + se_b^2) would ignore. nan stderr for n < 2.
    """
    d = _paired_differences(a, b)
    diff = float(d.mean())
    se = mean_stderr(d)
    low, high = normal_ci(diff, se, level)
    return PairedDifference(diff, se, low, high)


def holm_bonferroni(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values, in the input order (statsmodels `multipletests(method="holm")`).

    With the m p-values sorted ascending p_(1) <= ... <= p_(m):
    adj_(k) = min(1, max_{j <= k} (m - j + 1) * p_(j)).
    Reject H_(k) at family-wise level alpha iff adj_(k) <= alpha. Ties keep their input order.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values must be one-dimensional, got shape {p.shape}")
    if p.size == 0:
        return []
    if np.any(np.isnan(p)) or np.any(p < 0) or np.any(p > 1):
        raise ValueError("p_values must all lie in [0, 1] (no nan)")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = (m - np.arange(m)) * p[order]
    adjusted_sorted = np.minimum(1.0, np.maximum.accumulate(scaled))
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = adjusted_sorted
    return adjusted.tolist()


@dataclass
class MetricValue:
    """A task's figure for one metric: the value, its standard error (None where undefined) and
    the number of values behind it."""

    value: float
    stderr: float | None
    n: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def metric_value(values: Sequence[float]) -> MetricValue:
    """The mean of per-item values with lm-eval's standard error of the mean."""
    array = np.asarray(values, dtype=float)
    stderr = mean_stderr(array) if len(array) > 1 else None
    if stderr is not None and not np.isfinite(stderr):
        stderr = None
    return MetricValue(float(array.mean()) if len(array) else float("nan"), stderr, len(array))
