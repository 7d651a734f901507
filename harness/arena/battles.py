"""An arena run: candidates answer a prompt set (multi-turn prompts turn by turn, each later turn
conditioned on the model's own earlier answers), the judge judges each selected pair in both orders,
and the arena record (pair counts, judge quality, cost and time) and every judgment are written.

Judgments already in the arena are kept: a run adds or replaces only the judgments of the pairs it
judges, and the counts are recomputed from all of them, so placing a new model re-judges nothing old.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from evalboard.errors import UserError
from evalboard.models.adapters.base import AdapterSettings, ModelAdapter, load_adapter
from evalboard.records.arena_record import ArenaRecord, Judgment, arena_dir, load_arena, load_judgments, save_arena
from evalboard.records.cache import ResponseCache
from evalboard.records.run_record import RunUsage
from evalboard.records.usage import summarise_usage
from evalboard.requests import Message, Response

from .answering import Asker, as_prompt, generate_request
from .judging import Battle, JudgeMode, Order, judge_messages, judge_name, judgment, likelihood_reply, likelihood_requests
from .pairing import Pairing, select_pairs
from .prompt_sets import ArenaPrompt, PromptSet, load_prompt_set
from .tally import judge_quality, outcomes, pair_counts
from .verdicts import VERDICT_CHOICES

Answers = dict[str, tuple[str, ...]]  # prompt id -> the answer to every turn


@dataclass
class ArenaConfig:
    prompt_set: str
    name: str
    models: list[str]  # model specs of the candidates
    judges: list[str]  # judge specs; the first decides the battles
    results: Path = Path("results")
    baseline: str | None = None  # a prompt set's baseline answers, or a model spec
    pairs: Pairing = "all"
    opponents: int = 4
    limit: int | None = None
    max_new_tokens: int | None = None
    judge_tokens: int | None = None  # the judge's reply length (default: the prompt set's)
    cache_path: Path | None = None
    settings: AdapterSettings = field(default_factory=AdapterSettings)
    labels: dict[str, str] = field(default_factory=dict)  # a candidate's name in the arena (default: its spec)
    judge_mode: JudgeMode = "generate"  # or "likelihood": the most probable of the prompt's verdicts


@dataclass
class ArenaOutcome:
    record: ArenaRecord
    judged_pairs: int
    fresh_judge_calls: int
    judge_seconds: float
    judge_cost_usd: float


def _answer(adapter: ModelAdapter, cache: ResponseCache, prompts: list[ArenaPrompt],
            max_new_tokens: int) -> tuple[Answers, RunUsage]:
    """Every turn of every prompt, and their usage (cached answers included, as a run counts them);
    turn k's request holds the model's own answers to turns < k."""
    asker = Asker(adapter, cache)
    answers: dict[str, list[str]] = {p.id: [] for p in prompts}
    used: list[Response] = []
    for turn in range(max(len(p.turns) for p in prompts)):
        todo = [p for p in prompts if turn < len(p.turns)]
        requests = []
        for p in todo:
            messages: list[Message] = []
            for k in range(turn):
                messages += [("user", p.turns[k]), ("assistant", answers[p.id][k])]
            messages.append(("user", p.turns[turn]))
            requests.append(generate_request(adapter, messages, max_new_tokens))
        for p, response in zip(todo, asker.ask(requests)):
            if response.error is not None:
                raise UserError(f"{adapter.spec.raw} failed to answer prompt {p.id}: {response.error}")
            answers[p.id].append(response.text or "")
            used.append(response)
    usage = summarise_usage(used, priced=adapter.usage_summary().get("cost_usd", 0.0) is not None)
    return {key: tuple(value) for key, value in answers.items()}, RunUsage(**usage)


def _candidate_answers(config: ArenaConfig, prompt_set: PromptSet, prompts: list[ArenaPrompt], cache: ResponseCache,
                       specs: dict[str, str]) -> tuple[dict[str, Answers], dict[str, RunUsage]]:
    out: dict[str, Answers] = {}
    usage: dict[str, RunUsage] = {}
    tokens = config.max_new_tokens or prompt_set.max_new_tokens
    for name, spec in specs.items():
        if spec in prompt_set.baselines:
            out[name] = {p.id: prompt_set.baselines[spec][p.id] for p in prompts if p.id in prompt_set.baselines[spec]}
            missing = len(prompts) - len(out[name])
            if missing:
                print(f"evalboard: baseline {spec} has no answer to {missing} of the {len(prompts)} prompts; "
                      f"those prompts are left out of its battles", file=sys.stderr)
            continue
        adapter = load_adapter(spec, config.settings)
        try:
            out[name], usage[name] = _answer(adapter, cache, prompts, tokens)
        finally:
            adapter.close()
    return out, usage


def _battles(pairs: list[tuple[str, str]], prompts: list[ArenaPrompt], answers: dict[str, Answers]) -> list[Battle]:
    battles = []
    for a, b in pairs:
        for p in prompts:
            if p.id not in answers[a] or p.id not in answers[b]:
                continue
            for turn in range(len(p.turns)):
                battles.append(Battle(p, turn, a, b, answers[a][p.id], answers[b][p.id]))
    return battles


def _judge(spec: str, config: ArenaConfig, prompt_set: PromptSet, battles: list[Battle],
           cache: ResponseCache) -> tuple[list[Judgment], int]:
    adapter = load_adapter(spec, config.settings)
    try:
        asker = Asker(adapter, cache)
        jobs: list[tuple[Battle, Order]] = [(b, o) for b in battles for o in ("ab", "ba")]
        name = judge_name(spec, config.judge_mode)
        if config.judge_mode == "likelihood":
            if not adapter.capabilities.loglikelihood:
                raise UserError(f"judge {spec} cannot score likelihoods (a hosted chat API, or a server without "
                                "a tokenizer); use the judge mode generate")
            style = prompt_set.judge.verdicts
            asked = [likelihood_requests(as_prompt(judge_messages(prompt_set, b, o), adapter.capabilities.chat), style)
                     for b, o in jobs]
            answers = asker.ask([r for requests in asked for r in requests])
            per_job = len(VERDICT_CHOICES[style])  # likelihood_requests: one request per verdict
            responses = [likelihood_reply(style, answers[i * per_job:(i + 1) * per_job]) for i in range(len(jobs))]
        else:
            tokens = config.judge_tokens or prompt_set.judge_tokens
            responses = asker.ask([generate_request(adapter, judge_messages(prompt_set, b, o), tokens) for b, o in jobs])
        return [judgment(prompt_set, b, o, name, r) for (b, o), r in zip(jobs, responses)], asker.fresh
    finally:
        adapter.close()


def _existing(folder: Path, prompt_set: PromptSet) -> tuple[ArenaRecord | None, list[Judgment]]:
    if not (folder / "arena.json").exists():
        return None, []
    record = load_arena(folder)
    if record.source != "judged" or record.prompt_set != prompt_set.name:
        raise UserError(f"arena {record.name!r} holds {record.prompt_set or record.source} battles, not "
                        f"{prompt_set.name}; choose another --name")
    return record, load_judgments(folder)


def run_arena(config: ArenaConfig) -> ArenaOutcome:
    if not config.judges:
        raise UserError("an arena needs a judge: --judge SPEC (any model spec)")
    prompt_set = load_prompt_set(config.prompt_set)
    prompts = prompt_set.prompts[: config.limit] if config.limit else prompt_set.prompts
    if not prompts:
        raise UserError(f"prompt set {prompt_set.name} has no prompts to battle on")
    folder = arena_dir(config.results, config.name)
    existing, old_judgments = _existing(folder, prompt_set)
    specs = {config.labels.get(spec, spec): spec for spec in config.models}
    candidates = list(specs)
    baseline = config.baseline or (prompt_set.default_baseline if config.pairs == "baseline" else None)
    if baseline is not None:
        specs[baseline] = baseline
    ranked: list[str] = []
    if config.pairs == "place":
        if existing is None:
            raise UserError(f"--pairs place needs an existing arena {config.name!r}; build it first with --pairs all")
        from evalboard.leaderboard.arena import arena_ratings

        ranked = list(arena_ratings(existing, rounds=0)["model"])
        specs.update({m: existing.specs.get(m, m) for m in ranked})
    pairs = select_pairs(config.pairs, candidates + ([baseline] if baseline and config.pairs == "all" else []),
                         baseline=baseline, ranked_existing=ranked, opponents=config.opponents)
    playing = {m for pair in pairs for m in pair}
    cache = ResponseCache(config.cache_path)
    try:
        answers, answer_usage = _candidate_answers(config, prompt_set, prompts, cache,
                                                   {m: specs[m] for m in sorted(playing)})
        battles = _battles(pairs, prompts, answers)
        if not battles:
            raise UserError("no prompt has answers from both sides of any pair")
        clock = time.perf_counter()
        new: list[Judgment] = []
        fresh = 0
        for spec in config.judges:
            judged, calls = _judge(spec, config, prompt_set, battles, cache)
            new += judged
            fresh += calls
        wall = time.perf_counter() - clock
    finally:
        cache.close()
    replaced = {(j.judge, j.model_a, j.model_b, j.prompt_id, j.order) for j in new}
    kept = [j for j in old_judgments if (j.judge, j.model_a, j.model_b, j.prompt_id, j.order) not in replaced]
    every = kept + new
    judges = list(dict.fromkeys((existing.judges if existing else [])
                                + [judge_name(spec, config.judge_mode) for spec in config.judges]))
    primary = judges[0]
    results, _, _ = outcomes(every, primary)
    counts = pair_counts(results)
    if not counts:  # kept all the same: the replies are worth reading, and cached for a rerun
        print(f"evalboard: warning: the judge {primary} gave no usable verdict on any pair (every pair had an "
              f"unparseable reply), so the arena has no battles yet; try a stronger judge or more --judge-tokens",
              file=sys.stderr)
    primary_new = [j for j in new if j.judge == primary]
    judged_pairs = len(primary_new) // 2
    seconds = sum(j.seconds for j in primary_new)
    cost = sum(j.cost_usd or 0.0 for j in primary_new)
    record = ArenaRecord(
        name=config.name, source="judged", prompt_set=prompt_set.name, judges=judges, baseline=baseline,
        specs={**(existing.specs if existing else {}),
               **{m: s for m, s in specs.items() if m in playing and s not in prompt_set.baselines}},
        counts=counts, judge_quality=judge_quality(every, judges),
        judge_seconds_per_battle=seconds / judged_pairs if judged_pairs else None,
        judge_cost_per_battle_usd=cost / judged_pairs if judged_pairs else None,
        answer_usage={**(existing.answer_usage if existing else {}), **answer_usage},
    )
    save_arena(config.results, record, every)
    return ArenaOutcome(record, judged_pairs, fresh, wall, cost)
