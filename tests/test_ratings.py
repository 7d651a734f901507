"""evalboard.leaderboard.ratings: Bradley–Terry on the Elo scale, pairwise counts, item bootstrap."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from evalboard.errors import UserError
from evalboard.leaderboard import ratings as R
from evalboard.leaderboard.ratings import bootstrap, fitting, inputs
from simulated_scores import per_item, simulated

K = 400 / math.log(10)
TIGHT = R.RatingOptions(tol=1e-12)  # the internal fits below converge further than the default


def _bt_counts(ratings: np.ndarray, games: float) -> np.ndarray:
    """Expected split-tie wins when every pair plays `games` battles under BT with these ratings."""
    p = 1 / (1 + 10 ** ((ratings[None, :] - ratings[:, None]) / 400))
    wins = games * p
    np.fill_diagonal(wins, 0.0)
    return wins


# --- fit_bradley_terry: analytic cases --------------------------------------------------------------


@pytest.mark.parametrize(("p", "n"), [(70, 100), (1, 2), (3, 4), (999, 1000), (50, 100)])
def test_two_models_rating_difference_is_the_log_odds(p: int, n: int) -> None:
    wins = np.array([[0.0, p], [n - p, 0.0]])
    ratings = R.fit_bradley_terry(wins, R.RatingOptions(prior=1e-12))
    assert ratings[0] - ratings[1] == pytest.approx(400 * math.log10(p / (n - p)), abs=1e-6)
    assert ratings.mean() == pytest.approx(1000.0, abs=1e-9)
    # The default prior is negligible next to the data.
    assert R.fit_bradley_terry(wins)[0] - R.fit_bradley_terry(wins)[1] == pytest.approx(
        400 * math.log10(p / (n - p)), abs=0.01
    )


def test_three_models_recover_known_ratings() -> None:
    truth = np.array([1000.0, 1100.0, 1250.0])
    ratings = R.fit_bradley_terry(_bt_counts(truth, 1e6), R.RatingOptions(prior=1e-12))
    assert ratings - ratings.mean() == pytest.approx(truth - truth.mean(), abs=1e-6)


def test_sampled_counts_recover_known_ratings_within_sampling_error() -> None:
    rng = np.random.default_rng(0)
    truth = np.array([800.0, 950.0, 1000.0, 1050.0, 1200.0])
    p = 1 / (1 + 10 ** ((truth[None, :] - truth[:, None]) / 400))
    wins = np.zeros((5, 5))
    for i in range(5):
        for j in range(i + 1, 5):
            wins[i, j] = rng.binomial(20000, p[i, j])
            wins[j, i] = 20000 - wins[i, j]
    ratings = R.fit_bradley_terry(wins)
    assert ratings - ratings.mean() == pytest.approx(truth - truth.mean(), abs=6.0)


def test_many_models_recover_known_ratings() -> None:
    truth = np.linspace(700, 1300, 40)
    ratings = R.fit_bradley_terry(_bt_counts(truth, 1e5), R.RatingOptions(prior=1e-12))
    assert ratings - ratings.mean() == pytest.approx(truth - truth.mean(), abs=1e-6)


def test_anchor_model_gets_the_base_rating() -> None:
    truth = np.array([1000.0, 1100.0, 1250.0])
    options = R.RatingOptions(anchor="b", base=1500.0, prior=1e-12)
    ratings = R.fit_bradley_terry(_bt_counts(truth, 1e6), options, models=["a", "b", "c"])
    assert ratings == pytest.approx(truth + 400.0, abs=1e-6)


def test_all_ties_give_equal_ratings() -> None:
    wins = np.full((4, 4), 7.5)  # every battle tied: half a win each way
    assert R.fit_bradley_terry(wins) == pytest.approx(np.full(4, 1000.0), abs=1e-9)


def test_undefeated_and_winless_models_stay_finite() -> None:
    wins = _bt_counts(np.array([1000.0, 1100.0, 1200.0]), 300.0)
    wins = np.pad(wins, ((1, 1), (1, 1)))
    wins[0, 1:4] = 50.0  # model 0 wins every battle it plays
    wins[1:4, 4] = 50.0  # model 4 loses every battle it plays
    with np.errstate(all="raise"):
        ratings = R.fit_bradley_terry(wins)
    assert np.all(np.isfinite(ratings))
    assert ratings.argmax() == 0 and ratings.argmin() == 4
    # The middle models keep their relative ratings (undefeated models only pull the common level).
    middle = ratings[1:4] - ratings[1:4].mean()
    assert middle == pytest.approx(np.array([-100.0, 0.0, 100.0]), abs=0.01)


def test_disconnected_groups_are_each_centred() -> None:
    wins = np.zeros((4, 4))
    wins[0, 1], wins[1, 0] = 30, 10
    wins[2, 3], wins[3, 2] = 5, 15
    ratings = R.fit_bradley_terry(wins)
    assert ratings[0] - ratings[1] == pytest.approx(400 * math.log10(3), abs=0.01)
    assert ratings[2] - ratings[3] == pytest.approx(-400 * math.log10(3), abs=0.01)
    assert ratings[0] + ratings[1] == pytest.approx(2000.0, abs=1e-6)


def test_fit_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        R.fit_bradley_terry(np.ones((2, 3)))
    with pytest.raises(ValueError):
        R.fit_bradley_terry(-np.ones((2, 2)))
    with pytest.raises(ValueError):
        R.fit_bradley_terry(np.ones((2, 2)), R.RatingOptions(prior=0.0))


def test_fit_anchor_is_a_model_name() -> None:
    wins = _bt_counts(np.array([1000.0, 1100.0]), 100.0)
    with pytest.raises(ValueError, match="needs `models`"):
        R.fit_bradley_terry(wins, R.RatingOptions(anchor="b"))
    with pytest.raises(ValueError, match="needs `models`"):
        R.fit_bradley_terry(wins, R.RatingOptions(anchor="b"), models=["a", "b", "c"])
    with pytest.raises(ValueError, match="not one of"):
        R.fit_bradley_terry(wins, R.RatingOptions(anchor="z"), models=["a", "b"])
    assert R.fit_bradley_terry(wins, R.RatingOptions(anchor="a"), models=["a", "b"])[0] == 1000.0


@pytest.mark.parametrize("bad", [{"rounds": -1}, {"level": 0.0}, {"level": 1.0}, {"prior": 0.0}, {"prior": math.nan}])
def test_options_are_checked_where_they_are_made(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        R.RatingOptions(**bad)


def test_options_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        R.DEFAULT_OPTIONS.rounds = 5


# --- counts ----------------------------------------------------------------------------------------------


def test_pairwise_counts_small_example() -> None:
    scores = np.array(
        [
            [1.0, 0.0, 0.5],
            [0.0, 0.0, 1.0],
            [1.0, np.nan, 1.0],  # model b did not answer
        ]
    )
    models, wins, ties = R.pairwise_counts(per_item(scores, ["a", "b", "c"]))
    assert models == ["a", "b", "c"]
    assert wins.tolist() == [[0, 1, 1], [0, 0, 0], [1, 2, 0]]
    assert ties.tolist() == [[0, 1, 1], [1, 0, 0], [1, 0, 0]]


def _brute_force_counts(scores: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    n, m = scores.shape
    weights = np.ones(n) if weights is None else weights
    out = np.zeros((m, m))
    for k in range(n):
        for i in range(m):
            for j in range(m):
                si, sj = scores[k, i], scores[k, j]
                if i == j or np.isnan(si) or np.isnan(sj):
                    continue
                out[i, j] += weights[k] * (1.0 if si > sj else 0.5 if si == sj else 0.0)
    return out


@pytest.mark.parametrize("kind", ["binary", "binary-missing", "levels", "continuous"])
def test_counts_and_weighted_counts_match_brute_force(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    n, m = 40, 6
    scores = {
        "binary": lambda: rng.integers(0, 2, (n, m)).astype(float),
        "binary-missing": lambda: np.where(rng.random((n, m)) < 0.2, np.nan, rng.integers(0, 2, (n, m))),
        "levels": lambda: rng.integers(0, 5, (n, m)) / 4,
        "continuous": lambda: np.where(rng.random((n, m)) < 0.1, np.nan, rng.random((n, m))),
    }[kind]()
    wins, ties = inputs.item_point_counts(scores)
    assert wins + ties / 2 == pytest.approx(_brute_force_counts(scores), abs=0)
    monkeypatch.setattr(inputs, "_MAX_LEVELS_FOR_MATMUL", 0)  # the per-model loop gives the same counts
    wins_loop, ties_loop = inputs.item_point_counts(scores)
    assert np.array_equal(wins, wins_loop) and np.array_equal(ties, ties_loop)
    weights = bootstrap.item_weights(n, 5, np.random.default_rng(2))
    assert np.all(weights.sum(axis=1) == n)
    rounds = bootstrap.weighted_item_counts(scores, weights)
    for r in range(5):
        assert rounds[r] == pytest.approx(_brute_force_counts(scores, weights[r]), abs=0)


def test_bootstrap_round_equals_refitting_a_resampled_table() -> None:
    # A round's counts are exactly the pairwise counts of the items drawn with replacement.
    rng = np.random.default_rng(3)
    scores = np.where(rng.random((30, 4)) < 0.15, np.nan, rng.integers(0, 3, (30, 4)) / 2)
    weights = bootstrap.item_weights(30, 3, np.random.default_rng(4))
    rounds = bootstrap.weighted_item_counts(scores, weights)
    for r in range(3):
        drawn = np.repeat(scores, weights[r].astype(int), axis=0)
        models, wins, ties = R.pairwise_counts(per_item(drawn, ["a", "b", "c", "d"]))
        assert np.array_equal(rounds[r], wins + ties / 2)


def test_battles_round_trip() -> None:
    frame = simulated(5, 30, tasks=2, seed=5, binary=False)
    battles = R.battles_from_scores(frame)
    assert list(battles.columns) == ["task", "item_key", "model_a", "model_b", "winner"]
    assert len(battles) == 2 * 30 * 10
    assert set(battles["winner"]) <= {"a", "b", "tie"}
    from_battles = R.counts_from_battles(battles)
    direct = R.pairwise_counts(frame)
    assert from_battles.models == direct.models
    assert np.array_equal(from_battles.wins, direct.wins) and np.array_equal(from_battles.ties, direct.ties)


# --- bootstrap tables -------------------------------------------------------------------------------------


def test_row_order_does_not_matter() -> None:
    frame = simulated(6, 80, tasks=2, seed=6)
    shuffled = frame.sample(frac=1.0, random_state=1).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        R.leaderboard_ratings(frame, R.RatingOptions(rounds=200, seed=3)),
        R.leaderboard_ratings(shuffled, R.RatingOptions(rounds=200, seed=3)),
        check_exact=True,
    )


def test_seeded_and_deterministic() -> None:
    frame = simulated(5, 60, tasks=1, seed=7)
    first = R.bootstrap_ratings(frame, R.RatingOptions(rounds=300, seed=11))
    pd.testing.assert_frame_equal(first, R.bootstrap_ratings(frame, R.RatingOptions(rounds=300, seed=11)), check_exact=True)
    other = R.bootstrap_ratings(frame, R.RatingOptions(rounds=300, seed=12))
    assert np.array_equal(first["rating"], other["rating"])  # the point estimate uses no randomness
    assert not np.array_equal(first["ci_low"], other["ci_low"])


def test_bootstrap_table_shape_and_consistency() -> None:
    frame = simulated(8, 300, tasks=1, seed=8)
    table = R.bootstrap_ratings(frame, R.RatingOptions(rounds=400, seed=0))
    assert list(table.columns) == R.RATING_COLUMNS
    assert len(table) == 8 and table["rating"].is_monotonic_decreasing
    assert table["rating"].mean() == pytest.approx(1000.0, abs=1e-9)
    assert np.all(table["ci_low"] <= table["rating"]) and np.all(table["rating"] <= table["ci_high"])
    assert np.array_equal(table["rank"], R.ci_rank(table["ci_low"], table["ci_high"]))
    point = R.fit_bradley_terry(R.pairwise_counts(frame).split_ties())
    by_model = table.set_index("model")["rating"]
    assert by_model[sorted(by_model.index)].to_numpy() == pytest.approx(point, abs=1e-9)


def test_bootstrap_ci_width_tracks_the_sampling_error() -> None:
    # Two models, binary scores, every item answered: the split-tie share is (1 + acc_a - acc_b) / 2,
    # so the CI of the rating difference follows from the paired stderr of acc_a - acc_b.
    rng = np.random.default_rng(9)
    n = 3000
    a = (rng.random(n) < 0.7).astype(float)
    b = (rng.random(n) < 0.6).astype(float)
    frame = per_item(np.column_stack([a, b]), ["a", "b"])
    table = R.bootstrap_ratings(frame, R.RatingOptions(rounds=2000, seed=0, anchor="b")).set_index("model")
    share = (1 + a.mean() - b.mean()) / 2
    se_share = np.std(a - b, ddof=0) / 2 / math.sqrt(n)
    # delta method: d(rating)/d(share) = 400 / ln(10) / (share (1 - share))
    se_rating = K * se_share / (share * (1 - share))
    assert table.loc["a", "rating"] == pytest.approx(1000 + 400 * math.log10(share / (1 - share)), abs=1e-6)
    assert table.loc["a", "ci_high"] - table.loc["a", "ci_low"] == pytest.approx(2 * 1.96 * se_rating, rel=0.08)
    assert table.loc["b", "ci_low"] == table.loc["b", "ci_high"] == 1000.0  # the anchor


def test_chord_refits_match_full_newton() -> None:
    frame = simulated(12, 400, tasks=1, seed=10, binary=False)
    counts = R.pairwise_counts(frame).split_ties()
    rounds = bootstrap.weighted_item_counts(
        inputs.item_strata(frame)[1][0].scores, bootstrap.item_weights(400, 50, np.random.default_rng(0))
    ).astype(np.float64)
    theta_hat = fitting.fit_point(counts, TIGHT)
    chord = fitting.fit_bootstrap(rounds, counts, theta_hat, TIGHT)
    newton = fitting.newton_fit(fitting.Pairs.from_wins(rounds), np.zeros((50, 12)), TIGHT)
    assert chord == pytest.approx(newton, abs=1e-9)


def test_bootstrap_survives_rounds_whose_comparison_graph_splits() -> None:
    # Model c answered only item 10, which a skipped: rounds that miss item 10 leave c without battles.
    scores = np.full((11, 3), np.nan)
    scores[:10, 0] = np.r_[np.ones(6), np.zeros(4)]
    scores[:, 1] = np.r_[np.ones(3), np.zeros(7), 0.0]
    scores[10, 2] = 1.0
    frame = per_item(scores, ["a", "b", "c"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = R.bootstrap_ratings(frame, R.RatingOptions(rounds=200, seed=0))
    assert np.all(np.isfinite(table[["rating", "ci_low", "ci_high"]].to_numpy()))
    weights = bootstrap.item_weights(11, 200, np.random.default_rng(1))
    rounds = bootstrap.weighted_item_counts(inputs.item_strata(frame)[1][0].scores, weights).astype(np.float64)
    assert (weights[:, 10] == 0).any()  # some rounds do split
    point = R.pairwise_counts(frame).split_ties()
    theta_hat = fitting.fit_point(point, TIGHT)
    chord = fitting.fit_bootstrap(rounds, point, theta_hat, TIGHT)
    newton = np.stack([fitting.fit_point(w, TIGHT) for w in rounds])
    assert chord == pytest.approx(newton, abs=1e-8)


def test_bootstrap_with_an_undefeated_model() -> None:
    rng = np.random.default_rng(16)
    scores = rng.random((300, 5)) * 0.9
    scores[:, 0] = 1.0  # model a beats everyone on every item
    frame = per_item(scores, list("abcde"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = R.bootstrap_ratings(frame, R.RatingOptions(rounds=200, seed=0)).set_index("model")
    assert table.index[0] == "a" and np.all(np.isfinite(table.to_numpy(dtype=float)))
    assert table.loc["a", "ci_low"] > table.drop(index="a")["ci_high"].max()
    assert table["rank"].tolist()[0] == 1 and table["rank"].tolist()[1] == 2


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        ([10, 8, 5, 1], [12, 11, 9, 4], [1, 1, 2, 4]),  # model 4's CI lies below the other three
        ([0, 0, 0], [1, 1, 1], [1, 1, 1]),  # all overlap
        ([20, 10, 0], [25, 15, 5], [1, 2, 3]),  # all separated
        ([5, 9.5], [10, 12], [1, 1]),  # touching/overlapping intervals do not separate
        ([10, 10], [12, 12], [1, 1]),
    ],
)
def test_ci_rank_rule(low: list[float], high: list[float], expected: list[int]) -> None:
    assert R.ci_rank(np.array(low), np.array(high)).tolist() == expected


def test_leaderboard_per_task_and_overall() -> None:
    frame = simulated(5, 120, tasks=3, seed=11)
    # model-004 only took task0; model-003 skipped some items of task1.
    frame = frame[(frame["model"] != "model-004") | (frame["task"] == "task0")]
    frame = frame[~((frame["model"] == "model-003") & (frame["task"] == "task1") & (frame["item_key"] < "q00040"))]
    table = R.leaderboard_ratings(frame, R.RatingOptions(rounds=300, seed=2))
    assert list(table.columns) == ["task", *R.RATING_COLUMNS]
    assert table["task"].unique().tolist() == ["task0", "task1", "task2", R.OVERALL]
    assert (table["task"] == "task0").sum() == 5 and (table["task"] == "task1").sum() == 4
    assert (table["task"] == R.OVERALL).sum() == 5
    # A task's block is bootstrap_ratings on that task's rows.
    for task in ("task0", "task1"):
        alone = R.bootstrap_ratings(frame[frame["task"] == task], R.RatingOptions(rounds=300, seed=2))
        block = table[table["task"] == task].drop(columns="task").reset_index(drop=True)
        pd.testing.assert_frame_equal(block, alone, check_exact=True)
    # Overall: the battles of every task pooled.
    overall = table[table["task"] == R.OVERALL].set_index("model")["rating"]
    pooled = R.pairwise_counts(frame)
    expected = R.fit_bradley_terry(pooled.split_ties())
    assert overall[pooled.models].to_numpy() == pytest.approx(expected, abs=1e-9)
    pd.testing.assert_frame_equal(
        table[table["task"] == R.OVERALL].drop(columns="task").reset_index(drop=True),
        R.bootstrap_ratings(frame, R.RatingOptions(rounds=300, seed=2)),
        check_exact=True,
    )


def test_battles_and_counts_inputs() -> None:
    frame = simulated(4, 200, tasks=1, seed=12).drop(columns="task")
    from_items = R.bootstrap_ratings(frame, R.RatingOptions(rounds=300, seed=0))
    from_battles = R.bootstrap_ratings(R.battles_from_scores(frame), R.RatingOptions(rounds=300, seed=0))
    from_counts = R.bootstrap_ratings(R.pairwise_counts(frame), R.RatingOptions(rounds=300, seed=0))
    for other in (from_battles, from_counts):
        assert other["model"].tolist() == from_items["model"].tolist()
        assert other["rating"].to_numpy() == pytest.approx(from_items["rating"].to_numpy(), abs=1e-9)
        assert np.all(other["ci_low"] < other["rating"]) and np.all(other["rating"] < other["ci_high"])
    # The same battles give the same bootstrap draws whichever form they come in, and in any order.
    pd.testing.assert_frame_equal(from_battles, from_counts, check_exact=True)
    swapped = R.battles_from_scores(frame).rename(columns={"model_a": "model_b", "model_b": "model_a"})
    swapped["winner"] = swapped["winner"].map({"a": "b", "b": "a", "tie": "tie"})
    swapped = swapped.sample(frac=1.0, random_state=0)
    pd.testing.assert_frame_equal(R.bootstrap_ratings(swapped, R.RatingOptions(rounds=300, seed=0)), from_counts, check_exact=True)


def test_every_option_reaches_the_tables() -> None:
    frame = simulated(5, 200, tasks=2, seed=17)
    plain = R.leaderboard_ratings(frame, R.RatingOptions(rounds=300))
    narrow = R.leaderboard_ratings(frame, R.RatingOptions(rounds=300, level=0.5))
    assert np.array_equal(narrow["rating"], plain["rating"])
    assert np.all(narrow["ci_high"] - narrow["ci_low"] < plain["ci_high"] - plain["ci_low"])
    shifted = R.leaderboard_ratings(frame, R.RatingOptions(rounds=300, base=1500.0))
    assert shifted["ci_low"].to_numpy() == pytest.approx(plain["ci_low"].to_numpy() + 500.0, abs=1e-9)
    reseeded = R.leaderboard_ratings(frame, R.RatingOptions(rounds=300, seed=1))
    assert not np.array_equal(reseeded["ci_low"], plain["ci_low"])
    anchored = R.leaderboard_ratings(frame, R.RatingOptions(rounds=300, anchor="model-002"))
    assert (anchored.loc[anchored["model"] == "model-002", ["rating", "ci_low", "ci_high"]] == 1000.0).all().all()
    point = R.leaderboard_ratings(frame, R.RatingOptions(rounds=0))
    strong_prior = R.leaderboard_ratings(frame, R.RatingOptions(rounds=0, prior=1.0))
    assert not np.allclose(strong_prior["rating"], point["rating"])
    with pytest.warns(RuntimeWarning, match="did not converge"):
        R.leaderboard_ratings(frame, R.RatingOptions(rounds=0, max_iter=1))
    coarse = R.leaderboard_ratings(frame, R.RatingOptions(rounds=0, tol=1.0))  # stops after one Newton step
    assert not np.array_equal(coarse["rating"], point["rating"])


def test_rounds_zero_gives_point_ratings_only() -> None:
    table = R.bootstrap_ratings(simulated(4, 50, tasks=1, seed=13), R.RatingOptions(rounds=0))
    assert table["ci_low"].isna().all()
    assert table["rank"].tolist() == [1, 2, 3, 4]


def test_user_errors() -> None:
    good = simulated(3, 5, tasks=1, seed=14)
    with pytest.raises(UserError, match="column"):
        R.bootstrap_ratings(good.drop(columns="score"))
    with pytest.raises(UserError, match="more than one score"):
        R.bootstrap_ratings(pd.concat([good, good.iloc[:1]]))
    with pytest.raises(UserError, match="winner"):
        R.bootstrap_ratings(pd.DataFrame({"model_a": ["x"], "model_b": ["y"], "winner": ["x"]}))
    with pytest.raises(UserError, match="anchor"):
        R.bootstrap_ratings(good, R.RatingOptions(rounds=10, anchor="nobody"))
    with pytest.raises(UserError, match="empty"):
        R.bootstrap_ratings(good.iloc[:0])
    with pytest.raises(UserError, match="rename"):
        R.leaderboard_ratings(good.assign(task=R.OVERALL), R.RatingOptions(rounds=10))
    with pytest.raises(UserError, match="numeric"):
        R.bootstrap_ratings(good.assign(score="high"))
