"""Style-controlled arena ratings (FastChat's method): Bradley–Terry with the answers' style as covariates,
so a model does not climb by writing longer or by dressing its answer in markdown.

As FastChat's `construct_style_matrices` and `add_markdown_info.py`: per battle, each side's answers over
the whole conversation (all turns judged so far, joined by newlines) give four counts (length, markdown
headers, list items, bold spans; markdown counted after removing ``` code blocks). Each covariate is the
normalised difference (f_a - f_b) / (f_a + f_b + 1), then standardised over the battles taken from both
sides (see below; a covariate that is 0 throughout stays 0). The logistic model is
P(a beats b) = sigmoid(theta_a - theta_b + beta . x); the fitted theta are the style-controlled ratings
(400 / ln 10 points per unit, mean 1000), beta says how much one standard deviation of each feature sways
the judge. Ties count half a win for each side, as in the raw ratings. FastChat counts length in tiktoken
tokens; here length is words (whitespace-separated), as the leaderboard never loads a tokenizer.

The fit is the maximum-likelihood optimum (a 1e-6 ridge keeps it finite) by scipy L-BFGS on the exact
objective. FastChat fits with sklearn's LogisticRegression at its default C=1, an L2 penalty that pulls
the ratings in slightly; sklearn is not a dependency here. Point estimates, plus a bootstrap over battles.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
from evalboard.records.arena_record import Judgment
from evalboard.records.battle_outcome import combine
from scipy.optimize import minimize
from scipy.special import expit, log_expit

STYLE_FEATURES = ("length", "headers", "lists", "bold")
_HEADER = re.compile(r"^#{1,6}\s", re.MULTILINE)
_LIST = re.compile(r"^\s*(?:\d+\.|[-*+])\s", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")
_CODE_BLOCK = re.compile(r"```[^`]*```")
_PER_NAT = 400.0 / math.log(10.0)


def style_features(answers: list[str]) -> np.ndarray:
    """One side's counts over its answers to every turn: words, then markdown outside code blocks."""
    text = "\n".join(answers)
    prose = _CODE_BLOCK.sub("", text)
    return np.array([len(text.split()), len(_HEADER.findall(prose)), len(_LIST.findall(prose)),
                     len(_BOLD.findall(prose))], dtype=np.float64)


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
        outcome = combine((both["ab"].score_a, both["ab"].strong), (both["ba"].score_a, both["ba"].strong))
        if outcome.winner is None:
            continue
        score, weight = {"a": 1.0, "b": 0.0, "tie": 0.5}[outcome.winner], outcome.weight
        fa, fb = style_features(both["ab"].answer_a), style_features(both["ab"].answer_b)
        diff = (fa - fb) / (fa + fb + 1)
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
                 options={"gtol": 1e-10, "ftol": 1e-15, "maxiter": 5000}).x
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
    # FastChat's standardisation, over the battles seen from both sides (x and -x): the mean is 0 and the
    # standard deviation is the root mean square. Chatbot Arena's sides are random, so there the two agree;
    # ours are not (select_pairs puts the candidate first under `baseline`), and centring one-sided
    # covariates would fold the mean style gap back into the ratings.
    spread = np.sqrt((features**2).mean(axis=0))
    features = np.divide(features, spread, out=np.zeros_like(features), where=spread > 1e-12)
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
