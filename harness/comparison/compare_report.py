"""Renderers for a run comparison: a terminal table, Markdown, a self-contained HTML page (jinja2,
autoescaped: prompts and model answers are untrusted text), and JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from evalboard.atomic import write_text_atomic
from evalboard.comparison.arena_result import ArenaHeadToHead
from evalboard.comparison.compare import Comparison, ItemChange, TaskComparison
from evalboard.errors import UserError

TEST_NAMES = {"mcnemar_exact": "McNemar (exact)", "paired_bootstrap": "paired bootstrap"}
VERDICT_MARKS = {"improved": "▲ improved", "regressed": "▼ regressed", "no significant change": "· no sig. change"}
TEMPLATE = "compare_report.html.jinja"


# --- number formatting (shared by every renderer) -----------------------------------------


def score(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.3f}"


def signed(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:+.3f}"


def interval(task: TaskComparison) -> str:
    if not (math.isfinite(task.ci_low) and math.isfinite(task.ci_high)):
        return "n/a"
    return f"[{task.ci_low:+.3f}, {task.ci_high:+.3f}]"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def p_value(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"


def ci_label(comparison: Comparison) -> str:
    """The interval's column name at the comparison's level (alpha 0.05: "95% CI")."""
    return f"{100 * (1 - comparison.alpha):g}% CI"


def explanations(comparison: Comparison) -> list[str]:
    """One sentence on what p means and one on what the interval (and MDD) mean, for every report."""
    level = f"{100 * (1 - comparison.alpha):g}%"
    several = len(comparison.tasks) > 1
    holm = f" after Holm's correction over the {len(comparison.tasks)} tasks compared" if several else ""
    per_task = (f" Each task's interval is its own, unadjusted for the {len(comparison.tasks)} tasks (it agrees "
                f"with that task's p, not p(Holm)), so an interval that excludes 0 can sit beside 'no "
                f"significant change'." if several else "")
    return [
        f"p is the probability of a difference at least this large if the two models were in truth equally "
        f"good on these items (McNemar: from the changed items alone; bootstrap: resampling items); the "
        f"verdict uses p{holm}, at alpha {comparison.alpha}.",
        f"The {level} interval is the range of true differences consistent with these items, built to agree "
        f"with the test (it excludes 0 exactly when p <= {comparison.alpha}: McNemar's exact interval, or the "
        f"interval the bootstrap's test inverts); MDD is the smallest true difference this many items "
        f"would detect 80% of the time, so a smaller real change can hide in 'no significant change'.{per_task}",
    ]


def role(task: TaskComparison) -> str:
    return task.role or "-"


def changes(task: TaskComparison) -> str:
    return f"+{len(task.better)} / -{len(task.worse)}"


def _clip(text: Any, limit: int, keep_lines: bool = False) -> str:
    """At most `limit` characters; whitespace collapsed to single spaces unless `keep_lines`."""
    value = "" if text is None else str(text)
    value = value.strip() if keep_lines else " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _title(comparison: Comparison) -> str:
    return f"{comparison.candidate.label} vs {comparison.base.label}"


def _forgetting_lines(comparison: Comparison) -> list[str]:
    """The forgetting summary, as plain sentences (shared by the terminal and Markdown)."""
    regressed = comparison.forgetting
    scope = "held-out tasks" if comparison.trained_on else "tasks (no --trained-on given: all counted)"
    if not regressed:
        return [f"No significant regression on {scope}."]
    return [
        f"{t.task} regressed: {score(t.base_score)} -> {score(t.candidate_score)} ({signed(t.diff)}, "
        f"Holm p {p_value(t.p_adjusted)}, {len(t.worse)} items got worse)"
        for t in regressed
    ]


# --- terminal ------------------------------------------------------------------------------


def format_table(comparison: Comparison, max_items: int = 5) -> str:
    """The table printed by `evalboard compare`."""
    base, candidate = comparison.base, comparison.candidate
    header = ("task", "role", "metric", "n", "base", "cand.", "diff", ci_label(comparison), "MDD", "test", "p",
              "p(Holm)", "changed", "verdict")
    rows = [
        (t.task, role(t), t.metric, str(t.n), score(t.base_score), score(t.candidate_score), signed(t.diff),
         interval(t), score(t.mdd), "McNemar" if t.binary else "bootstrap", p_value(t.p_value), p_value(t.p_adjusted),
         changes(t), VERDICT_MARKS[t.verdict])
        for t in comparison.tasks
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    numeric = {3, 4, 5, 6, 8, 10, 11}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [
        f"base:      {base.label}  (run {base.run_id})",
        f"candidate: {candidate.label}  (run {candidate.run_id})",
        "",
        line(header),
        line(tuple("-" * w for w in widths)),
        *(line(r) for r in rows),
        "",
        f"diff = candidate - base; verdicts at alpha {comparison.alpha} after Holm's correction over "
        f"{len(comparison.tasks)} task(s); 'changed' = items better / worse in the candidate",
        *explanations(comparison),
    ]
    for t in comparison.tasks:
        for label, items in (("better", t.better), ("worse", t.worse)):
            if items:
                shown = ", ".join(i.doc_id for i in items[:max_items])
                more = f", … {len(items) - max_items} more" if len(items) > max_items else ""
                out.append(f"  {t.task}: {label} on {len(items)}: {shown}{more}")
    out += ["", "Forgetting: " + _forgetting_lines(comparison)[0], *_forgetting_lines(comparison)[1:]]
    out += [f"Skipped {task}: {why}" for task, why in comparison.skipped.items()]
    out += [f"Note: {note}" for note in comparison.notes]
    if comparison.arena is not None:
        out += ["", comparison.arena.summary()]
    return "\n".join(out)


# --- Markdown ------------------------------------------------------------------------------


def _md(text: Any) -> str:
    """A table cell: no line breaks, pipes escaped."""
    return _clip(text, 120).replace("|", "\\|")


def _md_items(items: list[ItemChange], limit: int) -> list[str]:
    lines = ["| item | target | base answer | candidate answer | base | candidate |", "|---|---|---|---|---:|---:|"]
    lines += [
        f"| `{_md(i.doc_id)}` | {_md(i.target)} | {_md(i.base_answer)} | {_md(i.candidate_answer)} "
        f"| {score(i.base_score)} | {score(i.candidate_score)} |"
        for i in items[:limit]
    ]
    if len(items) > limit:
        lines.append(f"\n…and {len(items) - limit} more (all of them are in the JSON report).")
    return lines


def _md_arena(arena: ArenaHeadToHead | None) -> list[str]:
    if arena is None:
        return []
    return ["", "## Arena", "", arena.summary().replace("|", "\\|") + ".", "",
            "| prompt set | judge | battles | candidate's win rate | 95% CI | position-consistent | unparseable |",
            "|---|---|---:|---:|---|---:|---:|",
            f"| {_md(arena.prompt_set)} | `{_md(arena.judge)}` | {arena.battles:g} | {percent(arena.win_rate)} "
            f"| [{percent(arena.ci_low)}, {percent(arena.ci_high)}] | {percent(arena.consistent)} "
            f"| {percent(arena.unparseable)} |"]


def to_markdown(comparison: Comparison, max_items: int = 50) -> str:
    base, candidate = comparison.base, comparison.candidate
    counts = comparison.counts()
    out = [
        f"# Comparison: {_title(comparison)}",
        "",
        "| | model | run |",
        "|---|---|---|",
        f"| base | `{_md(base.spec)}` | `{base.run_id}` |",
        f"| candidate | `{_md(candidate.spec)}` | `{candidate.run_id}` |",
        "",
        f"**{counts['improved']} improved, {counts['regressed']} regressed, "
        f"{counts['no significant change']} without significant change** "
        f"(alpha {comparison.alpha}, Holm-corrected over {len(comparison.tasks)} task(s)).",
        "",
        f"| task | role | metric | n | base | candidate | diff | {ci_label(comparison)} | MDD | test | p | p (Holm) "
        f"| better / worse | verdict |",
        "|---|---|---|---:|---:|---:|---:|---|---:|---|---:|---:|---|---|",
    ]
    out += [
        f"| {t.task} | {role(t)} | {t.metric} | {t.n} | {score(t.base_score)} | {score(t.candidate_score)} "
        f"| {signed(t.diff)} | {interval(t)} | {score(t.mdd)} | {TEST_NAMES[t.test]} | {p_value(t.p_value)} "
        f"| {p_value(t.p_adjusted)} | {changes(t)} | {VERDICT_MARKS[t.verdict]} |"
        for t in comparison.tasks
    ]
    out += ["", "## Forgetting", "", *(f"- {line}" for line in _forgetting_lines(comparison))]
    out += _md_arena(comparison.arena)
    for t in comparison.tasks:
        out += ["", f"## {t.task}", ""]
        if not (t.better or t.worse):
            out.append("No item changed.")
        for title, items in (("Better in the candidate", t.better), ("Worse in the candidate", t.worse)):
            if items:
                out += [f"### {title} ({len(items)})", "", *_md_items(items, max_items), ""]
    if comparison.skipped or comparison.notes:
        out += ["", "## Notes", ""]
        out += [f"- {task} not compared: {why}" for task, why in comparison.skipped.items()]
        out += [f"- {note}" for note in comparison.notes]
    out += ["", "diff = candidate - base. Items are paired by id; pass/fail metrics use the exact McNemar test, "
            "other metrics a paired bootstrap.", "", *explanations(comparison)]
    return "\n".join(out).rstrip() + "\n"


# --- HTML ----------------------------------------------------------------------------------


def to_html(comparison: Comparison, max_items: int = 500) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).resolve().parent)),
        autoescape=True,  # prompts and answers are model/user text: never raw HTML
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(score=score, signed=signed, p_value=p_value, clip=_clip, percent=percent)
    return env.get_template(TEMPLATE).render(
        c=comparison, title=_title(comparison), counts=comparison.counts(),
        forgetting=comparison.forgetting, interval=interval, role=role, test_names=TEST_NAMES,
        ci_label=ci_label(comparison), explanations=explanations(comparison),
        verdict_marks=VERDICT_MARKS, max_items=max_items,
    )


# --- JSON and files ------------------------------------------------------------------------


def to_json_text(comparison: Comparison) -> str:
    return json.dumps(comparison.to_json(), indent=2, ensure_ascii=False, default=str) + "\n"


def write_text(path: Path, text: str) -> None:
    """Write a report atomically (temp file + rename), creating its folder."""
    try:
        write_text_atomic(Path(path), text)
    except OSError as exc:
        raise UserError(f"could not write the report {path}: {exc.strerror or exc}; choose another path") from exc
