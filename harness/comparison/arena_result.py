"""The arena part of a comparison (`evalboard compare --arena`): the candidate against its base on an arena
prompt set, judged pairwise, as a win rate with its bootstrap interval and the judge's quality figures.
The CLI runs the battles (evalboard.arena); this is what the report keeps of them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArenaHeadToHead:
    prompt_set: str
    judge: str
    arena: str  # the arena's name: its battles are in results/arena/<arena>/
    battles: float  # weighted battles (Arena-Hard's strong-verdict weight); 0 without a usable verdict
    win_rate: float | None  # the candidate's share of the battles, ties as half; None without battles
    ci_low: float | None  # 95% bootstrap interval over battles
    ci_high: float | None
    consistent: float | None  # the judge's position consistency (share of pairs whose two orders agree)
    unparseable: float | None  # share of single judgments with no verdict

    def summary(self) -> str:
        judge = "" if self.consistent is None else (
            f", judge position-consistent {self.consistent:.0%}, unparseable {self.unparseable or 0:.0%}")
        if self.win_rate is None or self.ci_low is None or self.ci_high is None:
            return f"arena {self.prompt_set}: no usable verdicts from {self.judge}{judge}"
        return (f"arena {self.prompt_set} (judge {self.judge}): candidate wins {self.win_rate:.1%} against the base "
                f"[95% CI {self.ci_low:.1%}, {self.ci_high:.1%}] over {self.battles:g} battles (ties half){judge}; "
                f"battles in results/arena/{self.arena}")
