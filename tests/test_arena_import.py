"""`evalboard import battles`: Chatbot Arena's real per-pair counts (leaderbot) and FastChat's battle
log, rated with FastChat's settings, must land on the maximum-likelihood optimum of that data.

The optimum is found here independently of the harness's Newton fit: scipy's L-BFGS-B on the plain
Bradley–Terry log-likelihood (no prior), with mixtral anchored at 1114, driven to a tight gradient
tolerance."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, run_cli
from evalboard.arena.imports import read_battles
from evalboard.leaderboard.arena import arena_ratings, win_rates
from evalboard.paths import package_root
from evalboard.records.arena_record import arena_dir, load_arena
from scipy.optimize import minimize
from scipy.special import log_expit

ANCHOR, ANCHOR_RATING = "mixtral-8x7b-instruct-v0.1", 1114.0


def _leaderbot_file() -> Path:
    root = package_root("leaderbot")
    assert root is not None, "leaderbot==0.4.3 is a data package (requirements/data-packages.txt)"
    return root / "data" / "chatbotarena_20240814.json"


def _scipy_optimum(models: list[str], pairs: np.ndarray, wins: np.ndarray) -> dict[str, float]:
    """argmax of sum_k w_k log sigma(r_a - r_b) (ties split half/half), r_anchor fixed, via L-BFGS-B."""
    m = len(models)
    anchor = models.index(ANCHOR)
    free = np.array([k for k in range(m) if k != anchor])
    a, b = pairs[:, 0], pairs[:, 1]
    total = wins.sum()

    def full(x: np.ndarray) -> np.ndarray:
        theta = np.zeros(m)
        theta[free] = x
        return theta

    def negative_ll(x: np.ndarray) -> tuple[float, np.ndarray]:
        theta = full(x)
        d = theta[a] - theta[b]
        value = -(wins[:, 0] * log_expit(d) + wins[:, 1] * log_expit(-d)).sum() / total
        p = 1.0 / (1.0 + np.exp(-d))
        residual = (wins[:, 0] * (1 - p) - wins[:, 1] * p) / total
        grad = np.zeros(m)
        np.add.at(grad, a, -residual)
        np.add.at(grad, b, residual)
        return float(value), grad[free]

    result = minimize(negative_ll, np.zeros(free.size), jac=True, method="L-BFGS-B",
                      options={"gtol": 1e-13, "ftol": 1e-16, "maxiter": 20000, "maxcor": 50})
    assert np.abs(result.jac).max() < 1e-9, result.message
    theta = full(result.x)
    return {name: ANCHOR_RATING + 400.0 / math.log(10.0) * theta[k] for k, name in enumerate(models)}


def test_chatbot_arena_counts_match_the_maximum_likelihood_optimum(tmp_path: Path) -> None:
    source = _leaderbot_file()
    result = run_cli("import", "battles", str(source), "--name", "cba", "--results", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "imported 1,670,250 battles between 129 models (leaderbot format)" in result.stdout
    record = load_arena(arena_dir(tmp_path, "cba"))
    assert record.battles == 1_670_250 and len(record.models) == 129

    table = arena_ratings(record, rounds=0)  # FastChat's anchor is the default when mixtral is present
    ours = dict(zip(table["model"], table["rating"]))
    assert ours[ANCHOR] == pytest.approx(ANCHOR_RATING, abs=1e-9)

    raw = json.loads(source.read_text())
    y = np.asarray(raw["Y"], dtype=np.float64)
    split = np.column_stack([y[:, 0] + (y[:, 2] + y[:, 3]) / 2, y[:, 1] + (y[:, 2] + y[:, 3]) / 2])
    optimum = _scipy_optimum(raw["models"], np.asarray(raw["X"]), split)
    gaps = np.array([ours[name] - optimum[name] for name in raw["models"]])
    assert np.abs(gaps).max() < 0.01, (np.abs(gaps).max(), raw["models"][int(np.abs(gaps).argmax())])
    # a sanity look at the top of the table (not a hard-coded result: it follows from the fit above)
    assert table["model"].iloc[0] == max(optimum, key=optimum.__getitem__)


def test_fastchat_battle_log_gives_the_same_counts_as_the_pair_counts(tmp_path: Path) -> None:
    models = ["alpha", "beta", "gamma"]
    counts = {("alpha", "beta"): (7, 3, 2, 1), ("beta", "gamma"): (4, 5, 0, 2), ("alpha", "gamma"): (6, 1, 1, 0)}
    log, leaderbot = [], {"models": models, "X": [], "Y": []}
    for (a, b), (wa, wb, tie, bothbad) in counts.items():
        leaderbot["X"].append([models.index(a), models.index(b)])
        leaderbot["Y"].append([wa, wb, tie, bothbad])
        # written with sides swapped half the time: the importer must flip the winner with them
        log += [{"model_a": b, "model_b": a, "winner": "model_b", "anony": True}] * wa
        log += [{"model_a": a, "model_b": b, "winner": "model_b"}] * wb
        log += [{"model_a": a, "model_b": b, "winner": "tie"}] * tie
        log += [{"model_a": b, "model_b": a, "winner": "tie (bothbad)"}] * bothbad
    (tmp_path / "counts.json").write_text(json.dumps(leaderbot))
    (tmp_path / "battles.json").write_text(json.dumps(log))
    (tmp_path / "battles.jsonl").write_text("".join(json.dumps(row) + "\n" for row in log))
    from_counts = read_battles(tmp_path / "counts.json", "x")
    assert from_counts.source == "leaderbot"
    for name in ("battles.json", "battles.jsonl"):
        from_log = read_battles(tmp_path / name, "x")
        assert from_log.source == "fastchat"
        assert from_log.counts == from_counts.counts
    rates = win_rates(from_counts)
    assert rates.loc["alpha", "beta"] == pytest.approx((7 + 1.5) / 13)
    assert rates.loc["alpha", "beta"] + rates.loc["beta", "alpha"] == pytest.approx(1.0)
    table = arena_ratings(from_counts, rounds=50)
    assert table["rating"].mean() == pytest.approx(1000.0)  # no mixtral: the mean is 1000
    assert (table["ci_low"] <= table["rating"]).all() and (table["rating"] <= table["ci_high"]).all()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('[{"model_a": "x", "model_b": "y", "winner": "model_c"}]', "not a FastChat battle log"),
        ('{"models": ["x"], "X": [[0, 1]], "Y": [[1, 2, 3]]}', "not a leaderbot counts file"),
        ("[", "not a FastChat battle log"),
        ("[]", "holds no battles"),
    ],
)
def test_bad_battle_files_are_one_line_errors(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = run_cli("import", "battles", str(path), "--results", str(tmp_path))
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "arena").exists()


def test_ratings_of_a_missing_arena_and_a_bad_anchor_are_one_line_errors(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("arena", "ratings", "nope", "--results", str(tmp_path)), "no arena at")
    (tmp_path / "b.jsonl").write_text('{"model_a": "x", "model_b": "y", "winner": "model_a"}\n')
    assert run_cli("import", "battles", str(tmp_path / "b.jsonl"), "--results", str(tmp_path)).returncode == 0
    assert_one_line_error(run_cli("arena", "ratings", "b", "--results", str(tmp_path), "--anchor", "x"), "MODEL=RATING")
    assert_one_line_error(run_cli("arena", "ratings", "b", "--results", str(tmp_path), "--anchor", "z=1"), "no battles")
