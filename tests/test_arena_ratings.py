"""Arena ratings beyond the raw fit: style control (FastChat's covariates), win rate against a
baseline with its interval, and the leaderboard's Arena section."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
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


def _markdown_answer(rng: np.random.Generator, style: float) -> str:
    """Prose, headers, lists, bold, and a code block whose lines look like markdown (not to be counted)."""
    parts = ["word " * int(rng.integers(5, 40 + 60 * style))]
    parts += ["#" * int(rng.integers(1, 4)) + " Part\n" for _ in range(int(rng.poisson(2 * style)))]
    parts += [rng.choice(["- x\n", "1. x\n", "  * x\n"]) for _ in range(int(rng.poisson(3 * style)))]
    parts += [rng.choice(["**b** ", "__b__ "]) for _ in range(int(rng.poisson(2 * style)))]
    if rng.random() < 0.5:
        parts.append("```python\n# not a header\n- not a list\n**not bold**\n```\n")
    rng.shuffle(parts)
    return "".join(parts)


def _styled_judgments(seed: int = 1) -> list[Judgment]:
    """Two-turn conversations (turn 2 judged on both answers), ties, strong verdicts, position flips."""
    rng = np.random.default_rng(seed)
    styles = {"fancy": 1.0, "plain": 0.4, "bare": 0.1, "mid": 0.6}
    models, out = sorted(styles), []
    for k in range(60):
        for i, a in enumerate(models):
            for b in models[i + 1:]:
                answers = {m: [_markdown_answer(rng, styles[m]) for _ in range(2)] for m in (a, b)}
                for turn in (1, 2):
                    gap = len("".join(answers[a][:turn])) - len("".join(answers[b][:turn]))
                    for order in ("ab", "ba"):
                        u = rng.random()
                        verdict, score_a, strong = (("A>>B", 1.0, True) if u < 0.15 else ("A>B", 1.0, False) if u < 0.5
                                                    else ("A=B", 0.5, False) if u < 0.6 else ("B>A", 0.0, False))
                        if (gap < 0) == (rng.random() < 0.8):  # mostly, the longer one wins
                            verdict, score_a = verdict.replace("A", "_").replace("B", "A").replace("_", "B"), 1 - score_a
                        out.append(Judgment(
                            prompt_id=f"{k}/{turn}", judge="j", order=order, model_a=a, model_b=b,
                            turns=["q"] * turn, answer_a=answers[a][:turn], answer_b=answers[b][:turn],
                            reply=f"[[{verdict}]]", verdict=verdict, score_a=score_a, strong=strong))
    return out


def _fastchat_covariates(judgments: list[Judgment]) -> tuple[list[tuple[str, str, float, float]], np.ndarray]:
    """FastChat's recipe written out here: answers of all turns joined, markdown counted per kind after
    removing ``` blocks (add_markdown_info.py), (a - b) / (a + b + 1), standardised (elo_analysis.py's
    construct_style_matrices); Arena-Hard's game weights (>> counts 3) averaged over the two orders."""
    code = re.compile("```([^`]*)```")

    def counts(answers: list[str]) -> list[float]:
        text = "\n".join(answers)
        prose = text
        for block in code.findall(text):
            prose = prose.replace(block, "")
        headers = sum(len(re.findall(rf"^#{{{n}}}\s", prose, re.MULTILINE)) for n in range(1, 7))
        lists = len(re.findall(r"^\s*\d+\.\s", prose, re.MULTILINE)) + len(re.findall(r"^\s*[-*+]\s", prose, re.MULTILINE))
        bold = len(re.findall(r"\*\*[^*\n]+\*\*", prose)) + len(re.findall(r"__[^_\n]+__", prose))
        return [float(len(text.split())), float(headers), float(lists), float(bold)]

    pairs: dict[tuple[str, str, str], dict[str, Judgment]] = {}
    for j in judgments:
        pairs.setdefault((j.model_a, j.model_b, j.prompt_id), {})[j.order] = j
    battles, rows = [], []
    for (a, b, _), both in pairs.items():
        first, second = both["ab"], both["ba"]
        games = [(3.0 if x.strong else 1.0) for x in (first, second)]
        score = first.score_a if first.score_a == second.score_a else 0.5
        battles.append((a, b, float(score), sum(games) // 2))  # type: ignore[arg-type]
        fa, fb = np.array(counts(first.answer_a)), np.array(counts(first.answer_b))
        rows.append((fa - fb) / (fa + fb + 1))
    # Chatbot Arena's sides are random; ours are not, so standardise over every battle seen from both sides
    both_sides = np.concatenate([np.array(rows), -np.array(rows)])
    return battles, (np.array(rows) - both_sides.mean(axis=0)) / both_sides.std(axis=0)


def test_style_control_matches_an_independent_newton_fit_of_fastchats_design() -> None:
    judgments = _styled_judgments()
    battles, covariates = _fastchat_covariates(judgments)
    models = sorted({m for a, b, _, _ in battles for m in (a, b)})
    design = np.zeros((len(battles), len(models) + covariates.shape[1]))
    for row, (a, b, _, _) in enumerate(battles):
        design[row, models.index(a)], design[row, models.index(b)] = 1.0, -1.0
    design[:, len(models):] = covariates
    score = np.array([s for _, _, s, _ in battles])
    weight = np.array([w for _, _, _, w in battles])
    assert {1.0, 2.0, 3.0} <= set(weight) and 0.5 in score
    x = np.zeros(design.shape[1])
    for _ in range(50):  # Newton on the weighted BT log-likelihood with the module's documented 1e-6 ridge
        p = 1 / (1 + np.exp(-(design @ x)))
        grad = design.T @ (weight * (score - p)) - 1e-6 * x
        hessian = design.T @ (design * (weight * p * (1 - p))[:, None]) + 1e-6 * np.eye(len(x))
        step = np.linalg.solve(hessian, grad)
        x += step
        if np.abs(step).max() < 1e-13:
            break
    theta = x[: len(models)] - x[: len(models)].mean()
    expected = pd.Series(1000 + 400 / math.log(10) * theta, index=models)

    table, coefficients = style_controlled_ratings(judgments, "j", rounds=0)
    got = table.set_index("model")["rating"]
    assert np.abs(got[models].to_numpy() - expected[models].to_numpy()).max() < 1e-5  # points
    assert np.allclose(list(coefficients.values()), x[len(models):], rtol=0, atol=1e-7)
    assert coefficients["length"] > 0.1  # the judge's taste for length is found


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
