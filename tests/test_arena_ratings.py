"""Arena ratings beyond the raw fit: style control (FastChat's covariates), win rate against a
baseline with its interval, and the leaderboard's Arena section."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from evalboard.arena.tally import judge_quality
from evalboard.leaderboard.arena import arena_ratings, win_rate_vs
from evalboard.leaderboard.build import build_leaderboard
from evalboard.leaderboard.style import battle_rows, style_controlled_ratings
from evalboard.records.arena_record import ArenaRecord, Judgment, PairCounts, save_arena


def _judgments(seed: int = 0) -> list[Judgment]:
    """A judge that mostly prefers the longer answer; `padder` writes long answers of the same content."""
    rng = np.random.default_rng(seed)
    words = {"padder": (30, 120), "plain": (20, 90), "terse": (10, 70)}  # overlapping: length varies within pairs
    out = []
    models = sorted(words)
    for k in range(120):
        for i, a in enumerate(models):
            for b in models[i + 1:]:
                la, lb = (int(rng.integers(*words[a])), int(rng.integers(*words[b])))
                answer_a, answer_b = "word " * la, "word " * lb
                longer_first = la > lb
                noisy = rng.random() < 0.15
                a_wins = longer_first != noisy
                for order in ("ab", "ba"):
                    first_wins = a_wins if order == "ab" else not a_wins
                    out.append(Judgment(
                        prompt_id=str(k), judge="j", order=order, model_a=a, model_b=b, turns=["q"],
                        answer_a=[answer_a], answer_b=[answer_b], reply="[[A]]" if first_wins else "[[B]]",
                        verdict="A" if first_wins else "B", score_a=1.0 if a_wins else 0.0))
    return out


def test_style_control_takes_length_out_of_the_ratings() -> None:
    judgments = _judgments()
    rows = battle_rows(judgments, "j")
    assert len(rows) == 360
    counts = []
    for (a, b), part in rows.groupby(["model_a", "model_b"]):
        counts.append(PairCounts(model_a=a, model_b=b, a_wins=float((part.score_a == 1).sum()),
                                 b_wins=float((part.score_a == 0).sum()), ties=float((part.score_a == 0.5).sum())))
    raw = arena_ratings(ArenaRecord(name="x", source="judged", counts=counts), rounds=0).set_index("model")["rating"]
    styled, coefficients = style_controlled_ratings(judgments, "j", rounds=20)
    styled = styled.set_index("model")["rating"]
    assert raw["padder"] - raw["terse"] > 150  # the raw ratings reward length
    assert abs(styled["padder"] - styled["terse"]) < 0.5 * (raw["padder"] - raw["terse"])
    assert coefficients["length"] > 1.0  # the judge's taste for length, found as such
    assert abs(coefficients["bold"]) < 1e-9  # no answer has bold text: that covariate is all zeros


def test_win_rate_against_a_baseline_has_an_interval() -> None:
    record = ArenaRecord(name="x", source="judged", baseline="base", counts=[
        PairCounts(model_a="base", model_b="m", a_wins=20, b_wins=70, ties=10),
    ])
    rate = win_rate_vs(record, "base", rounds=500)
    assert rate.loc["m", "win_rate"] == 0.75 and rate.loc["m", "battles"] == 100
    assert rate.loc["m", "ci_low"] < 0.75 < rate.loc["m", "ci_high"]
    assert 0.05 < rate.loc["m", "ci_high"] - rate.loc["m", "ci_low"] < 0.25  # about ±1.96·sqrt(.19/100)


def test_the_page_has_an_arena_section(tmp_path: Path) -> None:
    judgments = _judgments()[:40]
    rows = battle_rows(judgments, "j")
    counts = [PairCounts(model_a=a, model_b=b, a_wins=float((p.score_a == 1).sum()), b_wins=float((p.score_a == 0).sum()),
                         ties=0.0) for (a, b), p in rows.groupby(["model_a", "model_b"])]
    save_arena(tmp_path, ArenaRecord(name="judged-demo", source="judged", prompt_set="mt-bench", judges=["j"],
                                     counts=counts, judge_quality=judge_quality(judgments, ["j"])), judgments)
    save_arena(tmp_path, ArenaRecord(name="humans", source="fastchat", counts=[
        PairCounts(model_a="<b>x</b>", model_b="y", a_wins=3, b_wins=1, ties=1)]))
    report = build_leaderboard(tmp_path, tmp_path / "site" / "index.html", rounds=20)
    html = report.page.read_text()
    assert 'id="arena"' in html and 'href="#arena"' in html
    assert "judged-demo" in html and "Style-controlled" in html and "Position-consistent" in html
    assert html.count('<details class="battle">') == 4  # the drill-down: battles shown in full
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html  # model names are escaped
    assert 'class="heatmap"' in html
