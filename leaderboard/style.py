"""Style-controlled arena ratings (FastChat's method): Bradley–Terry with the answers' style as covariates,
so a model does not climb by writing longer or by dressing its answer in markdown.

Per battle and feature f (answer length, markdown headers, list items, bold spans), the covariate is
the normalised difference (f_a - f_b) / (f_a + f_b) (0 when both are 0), scaled over the battles.
The logistic model is P(a beats b) = sigmoid(theta_a - theta_b + beta . x); the fitted theta are the
style-controlled ratings (400 / ln 10 points per unit, mean 1000), beta says how much each feature sways
the judge. Ties count half a win for each side, as in the raw ratings. FastChat counts length in
tiktoken tokens; here length is words (whitespace-separated), as the leaderboard never loads a
tokenizer. Point estimates, plus a bootstrap over battles for the intervals.

Own code rather than sklearn's LogisticRegression (which FastChat uses): the fit is a dozen lines of
scipy L-BFGS on the exact objective, and sklearn is not otherwise a dependency.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
from evalboard.records.arena_record import Judgment
from scipy.optimize import minimize
from scipy.special import expit, log_expit

STYLE_FEATURES = ("length", "headers", "lists", "bold")
_HEADER = re.compile(r"^#{1,6}\s", re.MULTILINE)
_LIST = re.compile(r"^\s*(?:\d+\.|[-*+])\s", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")
_PER_NAT = 400.0 / math.log(10.0)


def style_features(text: str) -> np.ndarray:
    return np.array([len(text.split()), len(_HEADER.findall(text)), len(_LIST.findall(text)),
                     len(_BOLD.findall(text))], dtype=np.float64)


def battle_rows(judgments: list[Judgment], judge: str) -> pd.DataFrame:
    """One row per pair judged in both orders with a battle: model_a, model_b, score_a, weight, features."""
    by_key: dict[tuple[str, str, str], dict[str, Judgment]] = {}
    for j in judgments:
        if j.judge == judge:
            by_key.setdefault((j.model_a, j.model_b, j.prompt_id), {})[j.order] = j
    rows = []
    for (a, b, _), both in by_key.items():
        if set(both) != {"ab", "ba"}:
            continue
        s1, s2 = both["ab"].score_a, both["ba"].score_a
        if s1 is None or s2 is None:
            continue
        score = s1 if s1 == s2 else 0.5
        weight = 3 if s1 == s2 and both["ab"].strong and both["ba"].strong else 1
        fa, fb = style_features(both["ab"].answer_a[-1]), style_features(both["ab"].answer_b[-1])
        total = fa + fb
        diff = np.divide(fa - fb, total, out=np.zeros_like(total), where=total > 0)
        rows.append({"model_a": a, "model_b": b, "score_a": score, "weight": weight,
                     **dict(zip(STYLE_FEATURES, diff))})
    return pd.DataFrame(rows, columns=["model_a", "model_b", "score_a", "weight", *STYLE_FEATURES])


def _fit(design: np.ndarray, score: np.ndarray, weight: np.ndarray, m: int) -> np.ndarray:
    """argmax of the weighted BT-with-covariates log-likelihood (a tiny ridge keeps it finite)."""

    def loss(x: np.ndarray) -> tuple[float, np.ndarray]:
        z = design @ x
        value = -(weight * (score * log_expit(z) + (1 - score) * log_expit(-z))).sum() + 0.5e-6 * (x @ x)
        grad = -design.T @ (weight * (score - expit(z))) + 1e-6 * x
        return float(value), grad

    x = minimize(loss, np.zeros(design.shape[1]), jac=True, method="L-BFGS-B",
                 options={"gtol": 1e-10, "maxiter": 5000}).x
    theta = x[:m]
    return np.concatenate([theta - theta.mean(), x[m:]])


def style_controlled_ratings(judgments: list[Judgment], judge: str, rounds: int = 200,
                             seed: int = 0) -> tuple[pd.DataFrame, dict[str, float]]:
    """(DataFrame[model, rating, ci_low, ci_high] best first, {feature: coefficient}); empty without battles."""
    rows = battle_rows(judgments, judge)
    if rows.empty or len(set(rows.model_a) | set(rows.model_b)) < 2:
        return pd.DataFrame(columns=["model", "rating", "ci_low", "ci_high"]), {}
    models = sorted(set(rows.model_a) | set(rows.model_b))
    index = {name: k for k, name in enumerate(models)}
    m, n = len(models), len(rows)
    features = rows[list(STYLE_FEATURES)].to_numpy()
    # Scaled to unit root-mean-square but not centred (FastChat centres): here model_a is the first name
    # alphabetically, not a random side, so a centred covariate would lend the ratings a side effect.
    spread = np.sqrt((features**2).mean(axis=0))
    features = np.divide(features, spread, out=np.zeros_like(features), where=spread > 0)
    design = np.zeros((n, m + features.shape[1]))
    design[np.arange(n), rows.model_a.map(index).to_numpy()] = 1.0
    design[np.arange(n), rows.model_b.map(index).to_numpy()] -= 1.0
    design[:, m:] = features
    score, weight = rows.score_a.to_numpy(), rows.weight.to_numpy(dtype=np.float64)
    point = _fit(design, score, weight, m)
    rng = np.random.default_rng(seed)
    boot = np.array([_fit(design, score, weight * rng.multinomial(n, np.full(n, 1 / n)), m)[:m] for _ in range(rounds)])
    low, high = (np.quantile(boot, [0.025, 0.975], axis=0) if rounds else (np.full(m, np.nan), np.full(m, np.nan)))
    table = pd.DataFrame({"model": models, "rating": 1000 + _PER_NAT * point[:m],
                          "ci_low": 1000 + _PER_NAT * low, "ci_high": 1000 + _PER_NAT * high})
    table = table.sort_values(["rating", "model"], ascending=[False, True]).reset_index(drop=True)
    return table, dict(zip(STYLE_FEATURES, point[m:].tolist()))
