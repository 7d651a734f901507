"""The Bradley–Terry maximum-likelihood fit on the Elo scale, for one table or a batch of bootstrap rounds.

The penalised log-likelihood is maximised by damped Newton in the subspace of zero-mean ratings per
connected component; bootstrap rounds, which lie close to the full-data problem, reuse its Hessian
(the chord method). See docs/ratings.md.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.special import expit, log_expit

from .options import DEFAULT_OPTIONS, RatingOptions

ELO_PER_NAT = 400.0 / math.log(10.0)  # rating points per unit of natural log-odds
# Bounds temporary memory when refitting bootstrap rounds (cells of float64 pair arrays).
_FIT_CHUNK_CELLS = 2_500_000


def _component_center(m: int, i0: np.ndarray, i1: np.ndarray) -> np.ndarray:
    """(m, m) matrix C with x @ C = each entry replaced by its connected component's mean.

    The components are those of the comparison graph (models linked by the pairs that met). Within a
    component, the likelihood is unchanged by adding a constant to every rating, so only the prior fixes
    it; the optimum always has a zero mean per component, and fitting in that subspace keeps the
    otherwise (1/prior) ill-conditioned directions out of every step.
    """
    graph = sparse.coo_matrix((np.ones(i0.size), (i0, i1)), shape=(m, m))
    _, labels = connected_components(graph, directed=False)
    same = (labels[:, None] == labels[None, :]).astype(np.float64)
    return same / same.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Pairs:
    """A batch of BT problems on m models as pair arrays over the pairs (i < j) that met.

    Counts are stored pairs x problems, so that the sparse incidence products map whole batches
    between per-model and per-pair quantities without copies. All problems share `center` (the
    components of the batch's pooled comparison graph); a problem whose own graph splits into finer
    components is flagged `irregular` and fitted on its own.
    """

    m: int
    i0: np.ndarray
    i1: np.ndarray
    upper: np.ndarray  # (P, B) split-tie wins of i0 over i1
    lower: np.ndarray  # (P, B) split-tie wins of i1 over i0
    to_pairs: sparse.csr_matrix  # (P, m): +1 at i0, -1 at i1, so to_pairs @ t = t_i0 - t_i1
    to_models: sparse.csr_matrix  # (m, P): its transpose, sums pair terms per model
    center: np.ndarray  # (m, m), see _component_center
    irregular: np.ndarray  # (B,) bool

    @classmethod
    def build(cls, m: int, i0: np.ndarray, i1: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> Pairs:
        met = (upper + lower) > 0
        used = met.any(axis=1)  # pairs that never met add nothing
        i0, i1, met = i0[used], i1[used], met[used]
        upper, lower = np.ascontiguousarray(upper[used]), np.ascontiguousarray(lower[used])
        k = np.arange(i0.size)
        to_pairs = sparse.csr_matrix(
            (np.r_[np.ones(k.size), -np.ones(k.size)], (np.r_[k, k], np.r_[i0, i1])), shape=(k.size, m)
        )
        center = _component_center(m, i0, i1)
        irregular = np.zeros(upper.shape[1], dtype=bool)
        for b in np.flatnonzero(~met.all(axis=0)):  # rare: a problem missing some pair
            own = _component_center(m, i0[met[:, b]], i1[met[:, b]])
            irregular[b] = not np.array_equal(own, center)
        return cls(m, i0, i1, upper, lower, to_pairs, to_pairs.T.tocsr(), center, irregular)

    @classmethod
    def from_wins(cls, wins: np.ndarray) -> Pairs:
        """From (B, m, m) split-tie win matrices."""
        m = wins.shape[-1]
        i0, i1 = np.triu_indices(m, k=1)
        return cls.build(m, i0, i1, wins[:, i0, i1].T, wins[:, i1, i0].T)

    def take(self, rows: np.ndarray) -> Pairs:
        """The given problems, with the batch's components (rows must be regular)."""
        return Pairs(self.m, self.i0, self.i1, self.upper[:, rows], self.lower[:, rows], self.to_pairs,
                      self.to_models, self.center, np.zeros(len(rows), dtype=bool))

    def alone(self, row: int) -> Pairs:
        """One problem with its own components."""
        k = slice(row, row + 1)
        return Pairs.build(self.m, self.i0, self.i1, self.upper[:, k], self.lower[:, k])

    def project(self, x: np.ndarray) -> np.ndarray:
        """Remove each component's mean from (B, m) model vectors."""
        if self.center[0, 0] * self.m == 1.0:  # one component (the usual case)
            return x - x.mean(axis=-1, keepdims=True)
        return x - x @ self.center

    def objective(self, theta: np.ndarray, prior: float) -> np.ndarray:
        """Penalised log-likelihood sum W_ij log sigmoid(t_i - t_j) - prior/2 |t|^2, per problem."""
        d = self.to_pairs @ theta.T
        ll = (self.upper * log_expit(d) + self.lower * log_expit(-d)).sum(axis=0)
        return ll - 0.5 * prior * (theta * theta).sum(axis=1)

    def gradient(self, theta: np.ndarray, prior: float) -> tuple[np.ndarray, np.ndarray]:
        """(B, m) gradient of the objective, and the (P, B) pair differences t_i0 - t_i1."""
        d = self.to_pairs @ theta.T
        # W_ij (1 - p) - W_ji p = (W_ij t - W_ji) / (1 + t) with t = exp(-d) = (1 - p) / p: one exp per
        # pair, and no cancellation when p is near 0 or 1 (unlike W_ij - n_ij p). The clip only guards
        # overflow; with the prior, fitted differences stay far inside it.
        t = np.clip(d, -500.0, 500.0)
        np.negative(t, out=t)
        np.exp(t, out=t)
        residual = self.upper * t
        residual -= self.lower
        t += 1.0
        residual /= t
        return (self.to_models @ residual).T - prior * theta, d

    def neg_hessian(self, d: np.ndarray, prior: float) -> np.ndarray:
        """(B, m, m) negative Hessian (graph Laplacian with weights n_ij p (1-p), plus prior * I),
        stiffened along the component-mean directions, which every step is projected out of anyway."""
        p = expit(d)
        curv = ((self.upper + self.lower) * p * (1.0 - p)).T
        hess = np.zeros((curv.shape[0], self.m, self.m))
        hess[:, self.i0, self.i1] = -curv
        hess[:, self.i1, self.i0] = -curv
        diag = np.arange(self.m)
        degree = (abs(self.to_models) @ curv.T).T
        hess[:, diag, diag] = degree + prior
        stiffness = np.maximum(1.0, degree.mean(axis=1))
        return hess + stiffness[:, None, None] * self.center


def newton_fit(pairs: Pairs, theta0: np.ndarray, options: RatingOptions) -> np.ndarray:
    """Maximise the penalised BT log-likelihood of each problem in the batch by damped Newton.

    The objective is strictly concave (prior > 0), so Newton with backtracking converges from any
    start. Each problem stops on its own, so a result never depends on its batch mates.
    """
    prior, tol, max_iter = options.prior, options.tol, options.max_iter
    theta = np.array(theta0, dtype=np.float64, copy=True)
    for k in np.flatnonzero(pairs.irregular):
        theta[k] = newton_fit(pairs.alone(int(k)), theta[k : k + 1], options)[0]
    active = np.flatnonzero(~pairs.irregular)
    theta[active] = pairs.project(theta[active])
    for _ in range(max_iter):
        if active.size == 0:
            return theta
        sub = pairs.take(active)
        th = theta[active]
        grad, d = sub.gradient(th, prior)
        grad = sub.project(grad)
        step = sub.project(np.linalg.solve(sub.neg_hessian(d, prior), grad[..., None])[..., 0])
        f0 = sub.objective(th, prior)
        scale = np.ones(active.size)
        for _ in range(60):  # backtracking: halve the step of any problem whose objective would drop
            worse = sub.objective(th + scale[:, None] * step, prior) < f0 - 1e-12 * (np.abs(f0) + 1.0)
            if not worse.any():
                break
            scale[worse] *= 0.5
        applied = scale[:, None] * step
        theta[active] = th + applied
        active = active[np.abs(applied).max(axis=1) >= tol]
    if active.size:
        warnings.warn(
            f"Bradley–Terry fit did not converge to {tol:g} in {max_iter} Newton steps "
            f"for {active.size} of {theta.shape[0]} problems",
            RuntimeWarning,
            stacklevel=3,
        )
    return theta


def _chord_fit(pairs: Pairs, theta_hat: np.ndarray, h0_inv: np.ndarray, options: RatingOptions) -> np.ndarray:
    """Fit many resampled problems that lie close to the full-data one, whose solution is theta_hat.

    Bootstrap problems differ from the full-data one by sampling noise, so the full-data negative
    Hessian H0 (at theta_hat) is an excellent stand-in for each of theirs: iterate t <- t + H0^-1 grad(t)
    (the chord method). That costs two matrix products per step instead of a linear solve per problem,
    and contracts by a factor of order 1/sqrt(items) per step. A problem that stops contracting (or
    whose comparison graph differs) is refitted from theta_hat by damped Newton. Each problem's result
    depends only on its own counts.
    """
    prior, tol = options.prior, options.tol
    batch = pairs.upper.shape[1]
    theta = np.repeat(theta_hat[None], batch, axis=0)
    moving = ~pairs.irregular
    stalled = pairs.irregular.copy()
    previous = np.full(batch, np.inf)
    for _ in range(options.max_iter):
        # The whole batch is recomputed each step (cheaper than gathering the rows still moving).
        grad, _ = pairs.gradient(theta, prior)
        step = pairs.project(pairs.project(grad) @ h0_inv)
        size = np.abs(step).max(axis=1)
        stalled |= moving & (size >= tol) & (size > 0.5 * previous)
        moving &= ~stalled
        theta[moving] += step[moving]
        previous = size
        moving &= size >= tol
        if not moving.any():
            break
    redo = np.flatnonzero(stalled | moving)
    if redo.size:
        start = np.repeat(theta_hat[None], redo.size, axis=0)
        sub = Pairs.build(pairs.m, pairs.i0, pairs.i1, pairs.upper[:, redo], pairs.lower[:, redo])
        theta[redo] = newton_fit(sub, start, options)
    return theta


def fit_bootstrap(wins: np.ndarray, point: np.ndarray, theta_hat: np.ndarray, options: RatingOptions) -> np.ndarray:
    """Refit (R, m, m) resampled counts near the full-data fit (`point` counts, solution theta_hat)."""
    rounds, m, _ = wins.shape
    full = Pairs.from_wins(point[None])
    _, d_hat = full.gradient(theta_hat[None], options.prior)
    h0_inv = np.linalg.inv(full.neg_hessian(d_hat, options.prior)[0])
    out = np.empty((rounds, m))
    chunk = max(1, _FIT_CHUNK_CELLS // max(m * (m - 1) // 2, 1))  # bounds memory
    for start in range(0, rounds, chunk):
        stop = min(rounds, start + chunk)
        pairs = Pairs.from_wins(wins[start:stop].astype(np.float64))
        if np.array_equal(pairs.center, full.center):
            out[start:stop] = _chord_fit(pairs, theta_hat, h0_inv, options)
        else:  # the resampled graph splits: H0 is no stand-in
            out[start:stop] = newton_fit(pairs, np.repeat(theta_hat[None], stop - start, axis=0), options)
    return out


def fit_point(wins: np.ndarray, options: RatingOptions) -> np.ndarray:
    """Natural-unit log-strengths of one (m, m) split-tie win matrix, zero mean per component."""
    m = wins.shape[0]
    return newton_fit(Pairs.from_wins(wins[None]), np.zeros((1, m)), options)[0]


def to_elo(theta: np.ndarray, anchor: int | None, base: float) -> np.ndarray:
    """Log-strengths -> Elo points, shifted so the mean (or the model at index `anchor`) is `base`."""
    ref = theta.mean(axis=-1, keepdims=True) if anchor is None else theta[..., anchor : anchor + 1]
    return base + ELO_PER_NAT * (theta - ref)


def _check_wins(wins: np.ndarray) -> np.ndarray:
    arr = np.array(wins, dtype=np.float64, copy=True)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"wins must be a square matrix, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError("wins must be finite and non-negative")
    np.fill_diagonal(arr, 0.0)
    return arr


def fit_bradley_terry(
    wins: np.ndarray, options: RatingOptions = DEFAULT_OPTIONS, *, models: Sequence[str] | None = None
) -> np.ndarray:
    """Maximum-likelihood Bradley–Terry ratings on the Elo scale.

    wins[i, j]: battles model i won against model j, ties already split half/half (the diagonal is
    ignored). P(i beats j) = 1 / (1 + 10^((r_j - r_i) / 400)). Ratings average `options.base`, or the
    model named `options.anchor` gets it (then `models` names the rows of `wins`). `options.prior` is the
    L2 precision on natural-unit log-strengths: with the default 1e-6 it shifts ordinary ratings by far
    less than 0.01 points, while a model that wins every battle gets a finite (very high) rating instead
    of infinity, and groups of models that never met each other are each centred on the same mean
    (their relative level is not identified). The bootstrap settings (rounds, seed, level) play no part.
    """
    arr = _check_wins(wins)
    anchor = None
    if options.anchor is not None:
        if models is None or len(models) != arr.shape[0]:
            raise ValueError(f"an anchor needs `models`, the names of the {arr.shape[0]} rows of wins")
        if options.anchor not in models:
            raise ValueError(f"anchor {options.anchor!r} is not one of the models")
        anchor = list(models).index(options.anchor)
    return to_elo(fit_point(arr, options), anchor, options.base)
